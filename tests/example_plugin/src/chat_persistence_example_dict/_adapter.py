"""``DictPersistence``: the whole adapter, kept in two dicts."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs

from chat_persistence import (
    AdapterBase,
    Capability,
    ConflictError,
    Message,
    NotFoundError,
    Session,
    structure_stored_parts,
    unstructure_parts,
    validate_id,
    validate_messages,
    validate_page,
    validate_session,
)

TICK = timedelta(microseconds=1)


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
    """Chat history in this process's memory. Every operation runs without an
    ``await`` inside, so concurrent tasks never see half of one."""

    capabilities = frozenset({Capability.TIES_IN_SAVE_ORDER})

    def __init__(self, *, sdk_version: str = "example-dict/0.1") -> None:
        self.sdk_version = sdk_version
        self._threads: dict[str, dict[str, _MessageRow]] = {}
        self._sessions: dict[str, _SessionRow] = {}
        self._order = itertools.count()

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        self._check_open()
        validate_messages(thread_id, messages)  # before anything is written
        stored = self._threads.get(thread_id, {})
        newest = max((row.created_at for row in stored.values()), default=None)
        next_time = _now() if newest is None else max(_now(), newest + TICK)
        planned: list[_MessageRow] = []
        for message in messages:
            old = stored.get(message.id)
            if old is not None:  # an update keeps its time and place
                created_at, order = old.created_at, old.order
            elif message.created_at is not None:
                created_at, order = message.created_at.astimezone(UTC), next(self._order)
            else:
                created_at, order = next_time, next(self._order)
                next_time += TICK
            parts_json = json.dumps(unstructure_parts(message.parts))
            planned.append(
                _MessageRow(
                    message.id, message.role, parts_json, message.session_id, created_at, order
                )
            )
        rows = self._threads.setdefault(thread_id, {})
        for row in planned:  # all checks passed: write the whole batch
            rows[row.id] = row
        return [self._message(thread_id, row) for row in planned]

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        self._check_open()
        validate_id("thread_id", thread_id)
        for name, value in (("session_id", session_id), ("before", before), ("after", after)):
            if value is not None:
                validate_id(name, value)
        validate_page(limit)
        rows = sorted(
            self._threads.get(thread_id, {}).values(), key=lambda r: (r.created_at, r.order)
        )
        position = {row.id: index for index, row in enumerate(rows)}
        for cursor in (before, after):
            if cursor is not None and cursor not in position:
                raise NotFoundError("message", cursor, thread_id=thread_id)
        low = -1 if after is None else position[after]
        high = len(rows) if before is None else position[before]
        page = [row for row in rows[low + 1 : high] if self._listed(row, session_id)]
        if limit is not None:  # keep the end nearest the cursor: after's, else the newest
            page = page[:limit] if after is not None else page[max(len(page) - limit, 0) :]
        return [self._message(thread_id, row) for row in page]

    async def get_message(self, thread_id: str, message_id: str) -> Message | None:
        self._check_open()
        validate_id("thread_id", thread_id)
        validate_id("message_id", message_id)
        row = self._threads.get(thread_id, {}).get(message_id)
        return None if row is None else self._message(thread_id, row)

    async def delete_thread(self, thread_id: str) -> None:
        self._check_open()
        validate_id("thread_id", thread_id)
        self._threads.pop(thread_id, None)
        for row in list(self._sessions.values()):
            if row.thread_id == thread_id:
                del self._sessions[row.id]

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        self._check_open()
        validate_session(session)
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
            json.dumps(session.state),
            json.dumps(session.metadata),
            created_at,
            updated_at,
            archived_at,
        )
        self._sessions[row.id] = row
        return _session(row)

    async def get_session(self, session_id: str) -> Session | None:
        self._check_open()
        validate_id("session_id", session_id)
        row = self._sessions.get(session_id)
        return None if row is None else _session(row)

    async def list_sessions(
        self, thread_id: str, *, include_archived: bool = False
    ) -> list[Session]:
        self._check_open()
        validate_id("thread_id", thread_id)
        rows = [
            row
            for row in self._sessions.values()
            if row.thread_id == thread_id and (include_archived or row.archived_at is None)
        ]
        return [_session(row) for row in sorted(rows, key=lambda r: (r.created_at, r.id))]

    async def archive_session(self, session_id: str, *, thread_id: str) -> Session:
        self._check_open()
        validate_id("session_id", session_id)
        validate_id("thread_id", thread_id)
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

    async def validate_schema(self) -> None:
        self._check_open()  # a dict has no schema to drift

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
