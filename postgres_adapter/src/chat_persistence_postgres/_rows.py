"""Rows of the two tables as ``Message`` and ``Session``: reading never fails.

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
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from chat_persistence import InvalidMessageError, Message, Session, stored_message

logger = logging.getLogger("chat_persistence.postgres")


def utc(value: datetime) -> datetime:
    """An aware datetime in UTC (as it is when already so: psycopg gives
    ``timezone.utc`` datetimes on a connection whose ``TimeZone`` is ``UTC``)."""
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def message_from_row(thread_id: str, row: Sequence[Any]) -> Message:
    """A message from ``message_id, role, session_id, created_at, parts_json``."""
    return stored_message(
        thread_id=thread_id,
        message_id=row[0],
        role=row[1],
        session_id=row[2],
        created_at=utc(row[3]),
        parts_json=row[4],
    )


def session_from_row(row: Sequence[Any]) -> Session:
    """A session from the session columns, in table order."""
    fields: dict[str, Any] = {
        "id": row[0],
        "thread_id": row[1],
        "sdk_version": row[2],
        "state": row[3],
        "metadata": row[4],
        "created_at": utc(row[5]),
        "updated_at": utc(row[6]),
        "archived_at": None if row[7] is None else utc(row[7]),
    }
    try:
        return Session(**fields)
    except InvalidMessageError as err:
        logger.warning(
            "session %r: the stored row breaks a rule (%s); returned as stored", row[0], err
        )
        # Without the validators, for this call only (attrs.validators.disabled()
        # would switch them off in every thread).
        session = object.__new__(Session)
        for name, value in fields.items():
            object.__setattr__(session, name, value)
        return session
