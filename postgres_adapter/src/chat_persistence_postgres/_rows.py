"""Rows of the two tables as ``Message`` and ``Session``: reading never fails.

Messages are made from psycopg's plain tuples, in the column order of our own
statements; every other reader is a psycopg row factory set on our own cursors
(whatever row factory the host's connections have), and finds its columns by name
once per result.

Other programs write these tables too. A message row comes back as stored
(``stored_message``): parts that do not decode become ``UnknownPart`` with a
``StoredPartsWarning`` naming thread and message. A session row that breaks a
rule this library enforces on writes (an empty ``sdk_version``, a state Python
cannot hold as JSON) comes back as stored too, with a logged warning naming it.
Either way a bad row never makes a thread or a session unreadable; saving such a
value back is rejected by validation, as it should be.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from psycopg.rows import RowMaker

from chat_persistence import InvalidMessageError, Message, Session, StoredParts, stored_message
from chat_persistence.storage import load_json

from ._wire import JSONB_V1, load_jsonb

logger = logging.getLogger("chat_persistence.postgres")

_R = TypeVar("_R")
RowReader = Callable[[Any], RowMaker[_R]]
"""A psycopg row factory: given the cursor, what makes each row."""

MESSAGE_COLUMNS = ("message_id", "role", "session_id", "created_at", "parts_json")
_SESSION_ATTRS = {
    "session_id": "id",
    "thread_id": "thread_id",
    "sdk_version": "sdk_version",
    "state_json": "state",
    "metadata_json": "metadata",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "archived_at": "archived_at",
}
"""Session columns, and the ``Session`` field each one fills."""
_SESSION_TIMES = ("created_at", "updated_at", "archived_at")
_SESSION_JSON = ("state", "metadata")


def utc(value: datetime) -> datetime:
    """An aware datetime in UTC (as it is when already so: psycopg gives
    ``timezone.utc`` datetimes on a connection whose ``TimeZone`` is ``UTC``)."""
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def columns(cursor: Any, names: Sequence[str]) -> tuple[int, ...]:
    """The positions of ``names`` in the cursor's result (a result without rows,
    such as a DELETE's, has no columns and makes no rows). Read from the result's
    field names, a few times cheaper than building ``cursor.description``."""
    result: Any = cursor.pgresult
    if result is None or not result.nfields:
        return (0,) * len(names)
    index: dict[bytes, int] = {result.fname(i): i for i in range(result.nfields)}
    return tuple(index[name.encode()] for name in names)


def messages_of(thread_id: str, rows: Iterable[Sequence[Any]]) -> list[Message]:
    """Rows whose first columns are ``MESSAGE_COLUMNS`` in that order (as every
    statement of ours selects them) as messages of ``thread_id``.

    The rows are psycopg's plain tuples (``tuple_row``, made in C): one loop here
    costs less than a Python row factory called for each row.
    """
    return [
        stored_message(
            thread_id=thread_id,
            message_id=i,
            role=r,
            session_id=s,
            created_at=t if t is None or t.tzinfo is UTC else t.astimezone(UTC),
            # load_jsonb, its format check inlined: one call fewer for each row.
            parts_json=(load_json(p[1:]) if p[:1] == JSONB_V1 else load_jsonb(p))
            if type(p) is bytes
            else p,
        )
        for i, r, s, t, p in rows
    ]


def stored_parts_of(rows: Iterable[Sequence[Any]]) -> list[StoredParts]:
    """Rows of ``(message_id, role, parts_json)`` as ``list_stored_parts`` gives
    them: each ``jsonb`` decoded by ``load_jsonb``, as ``messages_of`` decodes it."""
    return [(i, r, load_jsonb(p) if type(p) is bytes else p) for i, r, p in rows]


def page_of(thread_id: str, rows: list[tuple[Any, ...]]) -> list[Message] | str:
    """A listing with cursors (``MESSAGE_COLUMNS``, then ``missing``): its messages,
    or, when a marker row has ``missing`` set, the name of the cursor that is not
    in the thread."""
    for row in rows:
        if row[5] is not None:
            return row[5]
    return messages_of(thread_id, (row[:5] for row in rows))


def saved_reader(cursor: Any) -> RowMaker[tuple[str, datetime]]:
    """``RETURNING message_id, created_at`` of a save."""
    i_id, i_created = columns(cursor, ("message_id", "created_at"))
    return lambda values: (values[i_id], values[i_created])


def session_reader(cursor: Any) -> RowMaker[Session]:
    """Rows of the session columns as sessions."""
    pairs = tuple(zip(_SESSION_ATTRS.values(), columns(cursor, tuple(_SESSION_ATTRS)), strict=True))

    def make(values: Sequence[Any]) -> Session:
        fields = {attr: values[i] for attr, i in pairs}
        for name in _SESSION_TIMES:
            fields[name] = _utc_or_none(fields[name])
        for name in _SESSION_JSON:
            value = fields[name]
            if type(value) is bytes:
                fields[name] = load_jsonb(value)
        return session_from_fields(fields)

    return make


def compare_reader(cursor: Any) -> RowMaker[tuple[bool, Session]]:
    """The compare-and-set's rows: whether it wrote, and the session."""
    (i_written,) = columns(cursor, ("written",))
    make_session = session_reader(cursor)
    return lambda values: (values[i_written], make_session(values))


def session_from_fields(fields: dict[str, Any]) -> Session:
    """A session from its field values as stored."""
    try:
        return Session(**fields)
    except (InvalidMessageError, TypeError) as err:
        logger.warning(
            "session %r: the stored row breaks a rule (%s); returned as stored", fields["id"], err
        )
        # Without the validators, for this call only (attrs.validators.disabled()
        # would switch them off in every thread).
        session = object.__new__(Session)
        for name, value in fields.items():
            object.__setattr__(session, name, value)
        return session
