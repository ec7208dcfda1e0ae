"""``MemoryPersistence``: the in-process adapter."""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chat_persistence import (
    AdapterBase,
    Capability,
    ConfigError,
    InvalidArgumentError,
    InvalidMessageError,
    Message,
    Session,
    stored_message,
    unstructure_parts,
    validate_id,
    validate_messages,
    validate_page,
    validate_session,
)
from chat_persistence._json import text_problem

from ._store import (
    MAX_MICROS,
    MIN_MICROS,
    MessageRow,
    NewMessage,
    NewSession,
    SessionRow,
    Store,
    from_micros,
    named_store,
    to_micros,
)


@functools.cache
def default_sdk_version() -> str:
    """``chat-persistence/<installed version>``, the default ``sdk_version``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"chat-persistence/{version('chat-persistence')}"
    except PackageNotFoundError:
        return "chat-persistence/unknown"


# A JSON string literal, or a negative zero written as a number (outside any string).
_NEGATIVE_ZERO = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-0\.0(?=[,\]}]|$)')


def _dumps(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    if "-0.0" in text:
        # Postgres jsonb has no negative zero: store 0.0 here too, so that every
        # backend returns the same value.
        text = _NEGATIVE_ZERO.sub(lambda m: "0.0" if m.group() == "-0.0" else m.group(), text)
    return text


def _micros(field: str, value: datetime, message_id: str | None = None) -> int:
    micros = to_micros(value)
    if not MIN_MICROS <= micros <= MAX_MICROS:
        raise InvalidMessageError(
            field, value, "is outside the range of a UTC datetime", message_id=message_id
        )
    return micros


def _now_us() -> int:
    return time.time_ns() // 1000


class MemoryPersistence(AdapterBase):
    """Chat history kept in this process: the embedded default and a test double.

    ``MemoryPersistence()`` has a private store of its own. ``store="NAME"`` (the
    URL ``memory://NAME``) shares the process-wide store called NAME, so every
    adapter on that name sees the same data, also after closing and reopening
    (and so declares ``Capability.DURABLE``). Nothing outlives the process.

    Every operation is atomic and safe across asyncio tasks and threads. A page
    of a long thread costs O(log n + page), never a scan of the thread.
    """

    capabilities: frozenset[Capability] = frozenset({Capability.TIES_IN_SAVE_ORDER})

    def __init__(self, *, sdk_version: str | None = None, store: str | None = None) -> None:
        if sdk_version is None:
            sdk_version = default_sdk_version()
        for option, value in (("sdk_version", sdk_version), ("store", store)):
            if value is None:
                continue
            problem = (
                f"must be a string, not {type(value).__name__}"
                if not isinstance(value, str)
                else "must not be empty"
                if value == ""
                else text_problem(value)
            )
            if problem is not None:
                raise ConfigError(
                    f"invalid option {option!r} for backend 'memory': {problem}",
                    backend="memory",
                    option=option,
                    valid=["sdk_version", "store"],
                )
        self.sdk_version = sdk_version
        """The ``sdk_version`` written on sessions that ``archive_session`` creates."""
        self.store_name = store
        """The shared store's name, or None for a private store."""
        if store is None:
            self._store = Store()
        else:
            self._store = named_store(store)
            self.capabilities = frozenset({Capability.TIES_IN_SAVE_ORDER, Capability.DURABLE})

    def __repr__(self) -> str:
        where = "private store" if self.store_name is None else f"store={self.store_name!r}"
        return f"<MemoryPersistence {where}, {'open' if self.is_open else 'closed'}>"

    # -- messages ---------------------------------------------------------------

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        """Upsert the batch, all or nothing; returns the messages as stored."""
        self._check_open()
        validate_messages(thread_id, messages)
        batch: list[NewMessage] = []
        for message in messages:
            created_us = None
            if message.created_at is not None:
                created_us = _micros("Message.created_at", message.created_at, message.id)
            batch.append(
                NewMessage(
                    message.id,
                    message.role,
                    _dumps(unstructure_parts(message.parts)),
                    message.session_id,
                    created_us,
                )
            )
        rows = self._store.save_messages(thread_id, batch, _now_us())
        return [self._message(thread_id, row) for row in rows]

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        """The thread's messages, oldest first; see ``PersistenceAdapter``."""
        self._check_open()
        validate_id("thread_id", thread_id)
        for name, value in (("session_id", session_id), ("before", before), ("after", after)):
            if value is not None:
                validate_id(name, value)
        validate_page(limit)
        rows = self._store.list_messages(
            thread_id, session_id=session_id, limit=limit, before=before, after=after
        )
        return [self._message(thread_id, row) for row in rows]

    async def get_message(self, thread_id: str, message_id: str) -> Message | None:
        """One message, or None."""
        self._check_open()
        validate_id("thread_id", thread_id)
        validate_id("message_id", message_id)
        row = self._store.get_message(thread_id, message_id)
        return None if row is None else self._message(thread_id, row)

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's messages and the sessions whose thread it is."""
        self._check_open()
        validate_id("thread_id", thread_id)
        self._store.delete_thread(thread_id)

    # -- sessions ---------------------------------------------------------------

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        """Upsert on ``session.id``; a compare-and-set with ``expected_updated_at``."""
        self._check_open()
        validate_session(session)
        expected_us = None
        if expected_updated_at is not None:
            if (
                not isinstance(expected_updated_at, datetime)
                or expected_updated_at.utcoffset() is None
            ):
                raise InvalidArgumentError(
                    "expected_updated_at",
                    expected_updated_at,
                    "must be a timezone-aware datetime or None",
                )
            expected_us = to_micros(expected_updated_at)
        created_us = None
        if session.created_at is not None:
            created_us = _micros("Session.created_at", session.created_at)
        new = NewSession(
            session.id,
            session.thread_id,
            session.sdk_version,
            _dumps(session.state),
            _dumps(session.metadata),
            created_us,
        )
        row = self._store.save_session(
            new,
            _now_us(),
            expected_updated_us=expected_us,
            check=expected_updated_at is not None,
            # Reported as given: one outside the UTC range has no micros to rebuild it from.
            expected_updated_at=expected_updated_at,
        )
        return _session(row)

    async def get_session(self, session_id: str) -> Session | None:
        """One session, or None."""
        self._check_open()
        validate_id("session_id", session_id)
        row = self._store.get_session(session_id)
        return None if row is None else _session(row)

    async def list_sessions(
        self, thread_id: str, *, include_archived: bool = False
    ) -> list[Session]:
        """The thread's sessions, oldest first; archived ones only when asked."""
        self._check_open()
        validate_id("thread_id", thread_id)
        rows = self._store.list_sessions(thread_id, include_archived=include_archived)
        return [_session(row) for row in rows]

    async def archive_session(self, session_id: str, *, thread_id: str) -> Session:
        """Archive the session (once), creating it if missing; returns it as stored."""
        self._check_open()
        validate_id("session_id", session_id)
        validate_id("thread_id", thread_id)
        row = self._store.archive_session(session_id, thread_id, self.sdk_version, _now_us())
        return _session(row)

    async def validate_schema(self) -> None:
        """The memory backend has no schema: returns."""
        self._check_open()

    def _message(self, thread_id: str, row: MessageRow) -> Message:
        """A fresh ``Message`` built from a stored row (validated when it was saved)."""
        return stored_message(
            thread_id=thread_id,
            message_id=row.message_id,
            role=row.role,
            session_id=row.session_id,
            created_at=row.created_at,
            parts_json=json.loads(row.parts_json),
        )


def _session(row: SessionRow) -> Session:
    state: Any = json.loads(row.state_json)
    metadata: Any = json.loads(row.metadata_json)
    return Session(
        id=row.session_id,
        thread_id=row.thread_id,
        sdk_version=row.sdk_version,
        state=state,
        metadata=metadata,
        created_at=from_micros(row.created_us),
        updated_at=from_micros(row.updated_us),
        archived_at=None if row.archived_us is None else from_micros(row.archived_us),
    )
