"""``DictPersistence``: the whole adapter, kept in two dicts.

``AdapterBase`` checks that the adapter is open and validates every argument before
it calls a hook here, so this file holds storage only.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import attrs

from chat_persistence import (
    AdapterBase,
    Capability,
    ConflictError,
    ListQuery,
    Message,
    Session,
    structure_stored_parts,
    unstructure_parts,
)
from chat_persistence.storage import json_text, no_time_left

TICK = timedelta(microseconds=1)
LAST = datetime.max.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class _MessageRow:
    id: str
    role: str
    parts_json: str  # stored as text, so nothing a caller holds aliases it
    session_id: str | None
    created_at: datetime
    order: int  # first-save order: breaks ties between equal created_at


@attrs.frozen
class _SessionRow:
    id: str
    thread_id: str
    sdk_version: str
    state_json: str
    metadata_json: str
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class DictPersistence(AdapterBase):
    """Chat history in this process's memory. Every hook runs without an ``await``
    inside, so concurrent tasks never see half of one."""

    backend_name = "example-dict"
    capabilities = frozenset({Capability.TIES_IN_SAVE_ORDER})

    def __init__(self, *, sdk_version: str = "example-dict/0.1") -> None:
        super().__init__(sdk_version=sdk_version)
        self._threads: dict[str, dict[str, _MessageRow]] = {}
        self._sessions: dict[str, _SessionRow] = {}
        self._order = itertools.count()

    async def _save_messages(self, thread_id: str, messages: tuple[Message, ...]) -> list[Message]:
        stored = self._threads.get(thread_id, {})
        newest = max((row.created_at for row in stored.values()), default=None)
        next_time: datetime | None = _now()
        if newest is not None:  # later than every stored message, while there is room
            next_time = max(_now(), newest + TICK) if newest < LAST else None
        planned: list[_MessageRow] = []
        for message in messages:
            old = stored.get(message.id)
            if old is not None:  # an update keeps its time and place
                created_at, order = old.created_at, old.order
            elif message.created_at is not None:
                created_at, order = message.created_at.astimezone(UTC), next(self._order)
            elif next_time is None:
                raise no_time_left(message.id)
            else:
                created_at, order = next_time, next(self._order)
                next_time = next_time + TICK if next_time < LAST else None
            parts_json = json_text(unstructure_parts(message.parts))
            planned.append(
                _MessageRow(
                    message.id, message.role, parts_json, message.session_id, created_at, order
                )
            )
        rows = self._threads.setdefault(thread_id, {})
        for row in planned:  # all checks passed: write the whole batch
            rows[row.id] = row
        return [self._message(thread_id, row) for row in planned]

    async def _list_messages(self, thread_id: str, query: ListQuery) -> list[Message]:
        rows = sorted(
            self._threads.get(thread_id, {}).values(), key=lambda r: (r.created_at, r.order)
        )
        position = {row.id: index for index, row in enumerate(rows)}
        for which, cursor in (("before", query.before), ("after", query.after)):
            if cursor is not None and cursor not in position:
                raise query.cursor_not_found(thread_id, which)
        low = -1 if query.after is None else position[query.after]
        high = len(rows) if query.before is None else position[query.before]
        page = [row for row in rows[low + 1 : high] if self._listed(row, query.session_id)]
        if query.limit is not None:  # keep the end nearest the cursor: after's, else the newest
            limit = query.limit
            page = page[:limit] if query.after is not None else page[max(len(page) - limit, 0) :]
        return [self._message(thread_id, row) for row in page]

    async def _get_message(self, thread_id: str, message_id: str) -> Message | None:
        row = self._threads.get(thread_id, {}).get(message_id)
        return None if row is None else self._message(thread_id, row)

    async def _delete_thread(self, thread_id: str) -> None:
        self._threads.pop(thread_id, None)
        for row in list(self._sessions.values()):
            if row.thread_id == thread_id:
                del self._sessions[row.id]

    async def _delete_messages(self, thread_id: str, message_ids: tuple[str, ...]) -> list[Message]:
        rows = self._threads.get(thread_id, {})
        gone = sorted(
            (rows.pop(i) for i in message_ids if i in rows), key=lambda r: (r.created_at, r.order)
        )
        return [self._message(thread_id, row) for row in gone]

    async def _save_session(
        self, session: Session, expected_updated_at: datetime | None
    ) -> Session:
        old = self._sessions.get(session.id)
        if expected_updated_at is not None and (
            old is None or old.updated_at != expected_updated_at
        ):
            actual = None if old is None else old.updated_at
            raise ConflictError(session.id, expected=expected_updated_at, actual=actual)
        now = _now()
        if old is None:
            created_at = now if session.created_at is None else session.created_at.astimezone(UTC)
            updated_at, archived_at = now, None
        else:
            created_at, archived_at = old.created_at, old.archived_at
            updated_at = max(now, old.updated_at + TICK)
        row = _SessionRow(
            session.id,
            session.thread_id,
            session.sdk_version,
            json_text(session.state),
            json_text(session.metadata),
            created_at,
            updated_at,
            archived_at,
        )
        self._sessions[row.id] = row
        return _session(row)

    async def _get_session(self, session_id: str) -> Session | None:
        row = self._sessions.get(session_id)
        return None if row is None else _session(row)

    async def _list_sessions(self, thread_id: str, *, include_archived: bool) -> list[Session]:
        rows = [
            row
            for row in self._sessions.values()
            if row.thread_id == thread_id and (include_archived or row.archived_at is None)
        ]
        return [_session(row) for row in sorted(rows, key=lambda r: (r.created_at, r.id))]

    async def _archive_session(self, session_id: str, thread_id: str) -> Session:
        old = self._sessions.get(session_id)
        now = _now()
        if old is None:
            row = _SessionRow(
                session_id, thread_id, self.sdk_version, "null", "null", now, now, now
            )
        elif old.archived_at is not None:
            row = old  # archived once, archived for good: keep the first time
        else:
            row = attrs.evolve(old, archived_at=now, updated_at=max(now, old.updated_at + TICK))
        self._sessions[session_id] = row
        return _session(row)

    def _listed(self, row: _MessageRow, session_id: str | None) -> bool:
        if session_id is not None:
            return row.session_id == session_id
        session = None if row.session_id is None else self._sessions.get(row.session_id)
        return session is None or session.archived_at is None

    def _message(self, thread_id: str, row: _MessageRow) -> Message:
        parts = structure_stored_parts(
            json.loads(row.parts_json), thread_id=thread_id, message_id=row.id
        )
        return Message(row.id, row.role, parts, row.session_id, row.created_at)


def _session(row: _SessionRow) -> Session:
    return Session(
        id=row.id,
        thread_id=row.thread_id,
        sdk_version=row.sdk_version,
        state=json.loads(row.state_json),
        metadata=json.loads(row.metadata_json),
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
    )
