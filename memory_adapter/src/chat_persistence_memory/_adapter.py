"""``MemoryPersistence``: the in-process adapter."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

# The message model and its codec are reached through the package (``cp.Session``,
# ``cp.stored_message``), which loads them on first use: on the first save or read,
# not when ``create_adapter("memory://")`` builds the adapter.
import chat_persistence as cp
from chat_persistence import AdapterBase, Capability, ConfigError
from chat_persistence.storage import json_text, option_text_problem

from ._store import (
    MessageRow,
    NewMessage,
    NewSession,
    SessionRow,
    Store,
    from_micros,
    named_store,
    to_micros,
)

if TYPE_CHECKING:
    from chat_persistence import ListQuery, Message, Session, StoredParts


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

    backend_name = "memory"
    capabilities: frozenset[Capability] = frozenset(
        {Capability.TIES_IN_SAVE_ORDER, Capability.ANY_LOOP}
    )

    def __init__(self, *, sdk_version: str | None = None, store: str | None = None) -> None:
        super().__init__(sdk_version=sdk_version)
        if store is not None and (problem := option_text_problem(store)) is not None:
            raise ConfigError(
                f"invalid option 'store' for backend 'memory': {problem}",
                backend="memory",
                option="store",
                valid=["sdk_version", "store"],
            )
        self.store_name = store
        """The shared store's name, or None for a private store."""
        if store is None:
            self._store = Store()
        else:
            self._store = named_store(store)
            self.capabilities = self.capabilities | {Capability.DURABLE}

    def __repr__(self) -> str:
        where = "private store" if self.store_name is None else f"store={self.store_name!r}"
        return f"<MemoryPersistence {where}, {'open' if self.is_open else 'closed'}>"

    # -- messages ---------------------------------------------------------------

    async def _save_messages(self, thread_id: str, messages: tuple[Message, ...]) -> list[Message]:
        batch = [
            NewMessage(
                m.id,
                m.role,
                json_text(cp.unstructure_parts(m.parts)),
                m.session_id,
                None if m.created_at is None else to_micros(m.created_at),
            )
            for m in messages
        ]
        rows = self._store.save_messages(thread_id, batch, _now_us())
        return [self._message(thread_id, row) for row in rows]

    async def _list_messages(self, thread_id: str, query: ListQuery) -> list[Message]:
        rows = self._store.list_messages(
            thread_id,
            session_id=query.session_id,
            limit=query.limit,
            before=query.before,
            after=query.after,
        )
        return [self._message(thread_id, row) for row in rows]

    async def _list_stored_parts(self, thread_id: str) -> list[StoredParts]:
        """The listing's rows without ``Message`` objects: each stored array, parsed."""
        rows = self._store.list_messages(
            thread_id, session_id=None, limit=None, before=None, after=None
        )
        return [(row.message_id, row.role, json.loads(row.parts_json)) for row in rows]

    async def _get_message(self, thread_id: str, message_id: str) -> Message | None:
        row = self._store.get_message(thread_id, message_id)
        return None if row is None else self._message(thread_id, row)

    async def _delete_thread(self, thread_id: str) -> None:
        self._store.delete_thread(thread_id)

    async def _delete_messages(self, thread_id: str, message_ids: tuple[str, ...]) -> list[Message]:
        rows = self._store.delete_messages(thread_id, message_ids)
        return [self._message(thread_id, row) for row in rows]

    # -- sessions ---------------------------------------------------------------

    async def _save_session(
        self, session: Session, expected_updated_at: datetime | None
    ) -> Session:
        new = NewSession(
            session.id,
            session.thread_id,
            session.sdk_version,
            json_text(session.state),
            json_text(session.metadata),
            None if session.created_at is None else to_micros(session.created_at),
        )
        expected_us = None
        if expected_updated_at is not None:
            expected_us = to_micros(expected_updated_at)
        row = self._store.save_session(
            new,
            _now_us(),
            expected_updated_us=expected_us,
            check=expected_updated_at is not None,
            # Reported as given: one outside the UTC range has no micros to rebuild it from.
            expected_updated_at=expected_updated_at,
        )
        return _session(row)

    async def _get_session(self, session_id: str) -> Session | None:
        row = self._store.get_session(session_id)
        return None if row is None else _session(row)

    async def _list_sessions(self, thread_id: str, *, include_archived: bool) -> list[Session]:
        rows = self._store.list_sessions(thread_id, include_archived=include_archived)
        return [_session(row) for row in rows]

    async def _archive_session(self, session_id: str, thread_id: str) -> Session:
        row = self._store.archive_session(session_id, thread_id, self.sdk_version, _now_us())
        return _session(row)

    def _message(self, thread_id: str, row: MessageRow) -> Message:
        """A fresh ``Message`` built from a stored row (validated when it was saved)."""
        return cp.stored_message(
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
    return cp.Session(
        id=row.session_id,
        thread_id=row.thread_id,
        sdk_version=row.sdk_version,
        state=state,
        metadata=metadata,
        created_at=from_micros(row.created_us),
        updated_at=from_micros(row.updated_us),
        archived_at=None if row.archived_us is None else from_micros(row.archived_us),
    )
