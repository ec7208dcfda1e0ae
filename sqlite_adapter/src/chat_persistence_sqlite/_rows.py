"""Times as integer microseconds, and rows as ``Message`` and ``Session``.

Reading never fails on what another program stored: parts that do not decode
become ``UnknownPart`` with a warning (``stored_message``); a time that is not an
integer inside Python's range, or JSON text that does not parse, is logged and
returned as near to what is stored as Python allows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from chat_persistence import InvalidMessageError, Message, Session, stored_message
from chat_persistence.storage import load_json

logger = logging.getLogger("chat_persistence.sqlite")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """An aware datetime as integer microseconds since 1970-01-01 UTC."""
    return (value - _EPOCH) // _ONE_US


MIN_MICROS = to_micros(datetime.min.replace(tzinfo=UTC))
MAX_MICROS = to_micros(datetime.max.replace(tzinfo=UTC))


def from_micros(value: object, *, what: str = "a stored time") -> datetime:
    """Stored microseconds as a UTC datetime; another program's value that is not
    one is logged and read as the nearest time Python has."""
    if type(value) is int and MIN_MICROS <= value <= MAX_MICROS:
        return _EPOCH + timedelta(0, 0, value)
    return _foreign_time(value, what)


def _foreign_time(value: object, what: str) -> datetime:
    micros: int | None = None
    if isinstance(value, (int, float)) and math.isfinite(value):
        micros = int(max(min(value, MAX_MICROS), MIN_MICROS))
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
            micros = max(min(to_micros(parsed), MAX_MICROS), MIN_MICROS)
        except (ValueError, OverflowError):
            micros = None
    logger.warning("%s is not integer microseconds since the epoch: %r", what, value)
    return _EPOCH + timedelta(microseconds=0 if micros is None else micros)


def loads_parts(text: object) -> object:
    """A parts column as JSON; what does not parse is passed on as it is (and read
    as an ``UnknownPart`` with a warning)."""
    if isinstance(text, str):
        try:
            return load_json(text)
        except ValueError:
            return text
    return text


def messages_from_rows(thread_id: str, rows: Sequence[Sequence[Any]]) -> list[Message]:
    """``message_from_row`` for each row."""
    messages: list[Message] = []
    for row in rows:
        parts = row[4]
        if type(parts) is str:  # loads_parts, inlined: one call fewer for each row
            try:
                parts = load_json(parts)
            except ValueError:
                parts = row[4]  # passed on as it is, as loads_parts does
        micros = row[3]
        if type(micros) is int and MIN_MICROS <= micros <= MAX_MICROS:
            created_at = _EPOCH + timedelta(0, 0, micros)
        else:
            created_at = _foreign_time(micros, f"created_at of message {row[0]!r}")
        messages.append(
            stored_message(
                thread_id=thread_id,
                message_id=row[0],
                role=row[1],
                session_id=row[2],
                created_at=created_at,
                parts_json=parts,
            )
        )
    return messages


def message_from_row(thread_id: str, row: Sequence[Any]) -> Message:
    """A message from ``message_id, role, session_id, created_at, parts_json``."""
    micros = row[3]
    if type(micros) is int and MIN_MICROS <= micros <= MAX_MICROS:
        created_at = _EPOCH + timedelta(0, 0, micros)
    else:
        created_at = _foreign_time(micros, f"created_at of message {row[0]!r}")
    return stored_message(
        thread_id=thread_id,
        message_id=row[0],
        role=row[1],
        session_id=row[2],
        created_at=created_at,
        parts_json=loads_parts(row[4]),
    )


def _loads_json(value: object, what: str) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return load_json(value)
        except ValueError:
            pass
    logger.warning("%s is not JSON text; returned as stored", what)
    return value


def session_from_row(row: Sequence[Any]) -> Session:
    """A session from the session columns, in table order."""
    sid = row[0]
    fields: dict[str, Any] = {
        "id": sid,
        "thread_id": row[1],
        "sdk_version": row[2],
        "state": _loads_json(row[3], f"state_json of session {sid!r}"),
        "metadata": _loads_json(row[4], f"metadata_json of session {sid!r}"),
        "created_at": from_micros(row[5], what=f"created_at of session {sid!r}"),
        "updated_at": from_micros(row[6], what=f"updated_at of session {sid!r}"),
        "archived_at": (
            None if row[7] is None else from_micros(row[7], what=f"archived_at of session {sid!r}")
        ),
    }
    try:
        return Session(**fields)
    except InvalidMessageError as err:
        logger.warning(
            "session %r: the stored row breaks a rule (%s); returned as stored", sid, err
        )
        # Without the validators, for this call only.
        session = object.__new__(Session)
        for name, value in fields.items():
            object.__setattr__(session, name, value)
        return session
