"""``SqlitePersistence``: the column contract in one SQLite file."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chat_persistence import (
    AdapterBase,
    Capability,
    ConfigError,
    ConflictError,
    ListQuery,
    Message,
    Session,
    StoredParts,
)
from chat_persistence.storage import dump_json, option_text_problem

from ._batch import encode_batch, saved_messages, store_batch
from ._connection import Worker, read, schema_mismatch, write
from ._contract import Tables
from ._queries import Queries
from ._rows import (
    from_micros,
    loads_parts,
    message_from_row,
    messages_from_rows,
    session_from_row,
    to_micros,
)

_SYNCHRONOUS = ("full", "extra", "normal")
_VALID = ["busy_timeout", "create_tables", "path", "sdk_version", "synchronous", "tables"]


def _now_us() -> int:
    return time.time_ns() // 1000


def _config_error(option: str, problem: str) -> ConfigError:
    return ConfigError(
        f"invalid option {option!r} for backend 'sqlite': {problem}",
        backend="sqlite",
        option=option,
        valid=_VALID,
    )


class SqlitePersistence(AdapterBase):
    """Chat history in one SQLite file: durable, shared by the processes of one machine.

    ``SqlitePersistence(path="chat.db")`` (or ``create_adapter("sqlite:///chat.db")``)
    uses that file, creating it and any missing table on open (``create_tables=False``
    when the host manages the schema). ``path=None`` is a private in-memory database.

    The file is in WAL mode with ``synchronous=FULL``: a save that returned survives
    a crash of the process or of the machine. Each adapter has one connection, used
    on a thread of its own, so the event loop never waits for SQLite; every write
    takes the file's write lock up front (``BEGIN IMMEDIATE``), so the rules of the
    contract hold across processes: store-assigned times strictly increase in each
    thread, a batch is never interleaved, a compare-and-set has one winner.
    """

    backend_name = "sqlite"
    capabilities: frozenset[Capability] = frozenset(
        {Capability.TIES_IN_SAVE_ORDER, Capability.SCHEMA_VALIDATION, Capability.ANY_LOOP}
    )

    def __init__(
        self,
        *,
        path: str | None = None,
        tables: Mapping[str, str] | None = None,
        create_tables: bool = True,
        busy_timeout: float = 30.0,
        synchronous: str = "full",
        sdk_version: str | None = None,
    ) -> None:
        super().__init__(sdk_version=sdk_version)
        if path is not None and (problem := option_text_problem(path)) is not None:
            raise _config_error("path", problem)
        if type(create_tables) is not bool:
            raise _config_error("create_tables", f"must be True or False, not {create_tables!r}")
        ok = isinstance(busy_timeout, (int, float)) and not isinstance(busy_timeout, bool)
        if not ok or not math.isfinite(busy_timeout) or busy_timeout < 0:
            raise _config_error(
                "busy_timeout", f"must be a non-negative number of seconds, not {busy_timeout!r}"
            )
        if not isinstance(synchronous, str) or synchronous.lower() not in _SYNCHRONOUS:
            raise _config_error(
                "synchronous", f"must be one of {', '.join(_SYNCHRONOUS)}, not {synchronous!r}"
            )
        self.tables = Tables.from_mapping(tables)
        """The two table names."""
        self.create_tables = create_tables
        self._q = Queries(self.tables)
        self._worker = Worker(
            path, self.tables, busy_timeout=float(busy_timeout), synchronous=synchronous.lower()
        )
        self.path: str = self._worker.path
        """The database file, or ``":memory:"``."""
        if not self._worker.in_memory:
            self.capabilities = self.capabilities | {Capability.DURABLE}

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return (
            f"<SqlitePersistence {self.path!r} messages={self.tables.messages!r} "
            f"sessions={self.tables.sessions!r}, {state}>"
        )

    async def _open(self) -> None:
        await self._worker.start(create_tables=self.create_tables)

    async def _close(self) -> None:
        await self._worker.stop()

    # -- messages ---------------------------------------------------------------

    async def _save_messages(self, thread_id: str, messages: tuple[Message, ...]) -> list[Message]:
        batch = encode_batch(messages)
        times = await self._worker.run(
            lambda conn: write(conn, lambda c: store_batch(c, self._q, thread_id, batch)),
            "save_messages",
        )
        return saved_messages(thread_id, batch, times)

    async def _list_messages(self, thread_id: str, query: ListQuery) -> list[Message]:
        def page(conn: sqlite3.Connection) -> list[Any]:
            params: list[object] = [thread_id]
            if query.session_id is not None:
                params.append(query.session_id)
            bounds = self._cursor_bounds(conn, thread_id, query)
            for which in ("after", "before"):
                if which in bounds:
                    created, rowid = bounds[which]
                    params += [created, created, rowid]
            if query.limit is not None:
                params.append(query.limit)
            sql = self._q.list_messages(
                by_session=query.session_id is not None,
                before="before" in bounds,
                after="after" in bounds,
                newest_first=query.newest_first,
                limited=query.limit is not None,
            )
            return conn.execute(sql, params).fetchall()

        if query.has_cursor:
            rows = await self._worker.run(lambda conn: read(conn, page), "list_messages")
        else:
            rows = await self._worker.run(page, "list_messages")
        if query.newest_first:
            rows.reverse()
        return messages_from_rows(thread_id, rows)

    def _cursor_bounds(
        self, conn: sqlite3.Connection, thread_id: str, query: ListQuery
    ) -> dict[str, tuple[object, object]]:
        """Each cursor's ``(created_at, rowid)``; ``NotFoundError`` for an unknown one."""
        bounds: dict[str, tuple[object, object]] = {}
        for which, cursor in (("before", query.before), ("after", query.after)):
            if cursor is not None:
                row = conn.execute(self._q.cursor, (thread_id, cursor)).fetchone()
                if row is None:
                    raise query.cursor_not_found(thread_id, which)
                bounds[which] = (row[0], row[1])
        return bounds

    async def _list_stored_parts(self, thread_id: str) -> list[StoredParts]:
        """One SELECT of the listing's rows and order, three columns, no ``Message``
        objects. A stored text that does not parse as JSON, or a value that is not
        text, is passed on as it is; ``structure_stored_parts`` keeps it in an
        ``UnknownPart``, with a ``StoredPartsWarning``, as the listing does."""
        rows = await self._worker.run(
            lambda c: c.execute(self._q.stored_parts, (thread_id,)).fetchall(), "list_messages"
        )
        return [(row[0], row[1], loads_parts(row[2])) for row in rows]

    async def _get_message(self, thread_id: str, message_id: str) -> Message | None:
        rows = await self._worker.run(
            lambda c: c.execute(self._q.get_message, (thread_id, message_id)).fetchall(),
            "get_message",
        )
        return message_from_row(thread_id, rows[0]) if rows else None

    async def _delete_thread(self, thread_id: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            conn.execute(self._q.delete_thread_sessions, (thread_id,))
            conn.execute(self._q.delete_thread_messages, (thread_id,))

        await self._worker.run(lambda conn: write(conn, delete), "delete_thread")

    async def _delete_messages(self, thread_id: str, message_ids: tuple[str, ...]) -> list[Message]:
        ids = json.dumps(list(message_ids))
        rows = await self._worker.run(
            lambda conn: write(
                conn, lambda c: c.execute(self._q.delete_messages, (thread_id, ids)).fetchall()
            ),
            "delete_messages",
        )
        rows.sort(key=lambda r: (r[3], r[5]))
        return messages_from_rows(thread_id, rows)

    # -- sessions ---------------------------------------------------------------

    async def _save_session(
        self, session: Session, expected_updated_at: datetime | None
    ) -> Session:
        state = None if session.state is None else dump_json(session.state)[0]
        metadata = None if session.metadata is None else dump_json(session.metadata)[0]
        created = None if session.created_at is None else to_micros(session.created_at)
        expected = None if expected_updated_at is None else to_micros(expected_updated_at)

        def save(conn: sqlite3.Connection) -> Any:
            if expected_updated_at is not None:
                found = conn.execute(self._q.session_updated_at, (session.id,)).fetchone()
                if found is None or found[0] != expected:
                    raise ConflictError(
                        session.id,
                        expected=expected_updated_at,
                        actual=None if found is None else from_micros(found[0]),
                    )
            now = _now_us()
            params = (
                session.id,
                session.thread_id,
                session.sdk_version,
                state,
                metadata,
                now if created is None else created,
                now,
            )
            return conn.execute(self._q.upsert_session, params).fetchone()

        row = await self._worker.run(lambda conn: write(conn, save), "save_session")
        return session_from_row(row)

    async def _get_session(self, session_id: str) -> Session | None:
        row = await self._worker.run(
            lambda c: c.execute(self._q.get_session, (session_id,)).fetchone(), "get_session"
        )
        return None if row is None else session_from_row(row)

    async def _list_sessions(self, thread_id: str, *, include_archived: bool) -> list[Session]:
        sql = self._q.list_sessions if include_archived else self._q.list_live_sessions
        rows = await self._worker.run(
            lambda c: c.execute(sql, (thread_id,)).fetchall(), "list_sessions"
        )
        return [session_from_row(row) for row in rows]

    async def _archive_session(self, session_id: str, thread_id: str) -> Session:
        def archive(conn: sqlite3.Connection) -> Any:
            now = _now_us()
            params = (session_id, thread_id, self.sdk_version, now, now, now)
            return conn.execute(self._q.archive_session, params).fetchone()

        row = await self._worker.run(lambda conn: write(conn, archive), "archive_session")
        return session_from_row(row)

    # -- schema -----------------------------------------------------------------

    async def _validate_schema(self) -> None:
        problem = await self._worker.run(
            lambda c: schema_mismatch(c, self.tables), "validate_schema"
        )
        if problem is not None:
            raise problem
