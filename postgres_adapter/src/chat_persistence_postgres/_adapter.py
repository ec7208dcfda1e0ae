"""``PostgresPersistence``: the seed's column contract on psycopg 3."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from chat_persistence import (
    JSON,
    AdapterBase,
    Capability,
    ConfigError,
    ConflictError,
    InvalidArgumentError,
    InvalidMessageError,
    Message,
    NotFoundError,
    Session,
    StorageUnavailableError,
    structure_stored_parts,
    unstructure_parts,
    validate_id,
    validate_messages,
    validate_page,
    validate_session,
)

from ._contract import Tables
from ._plugin import PostgresOptions
from ._queries import OVERFLOW_MARK, Queries
from ._schema import SchemaReport, inspect_schema

logger = logging.getLogger("chat_persistence.postgres")

_Conn = AsyncConnection[TupleRow]


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def default_sdk_version() -> str:
    """``chat-persistence/<installed version>``, the default ``sdk_version``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"chat-persistence/{version('chat-persistence')}"
    except PackageNotFoundError:
        return "chat-persistence/unknown"


class PostgresPersistence(AdapterBase):
    """Chat history in PostgreSQL tables the host owns (the seed's column contract).

    ``PostgresPersistence(pool=pool)`` uses a host-owned ``AsyncConnectionPool``
    (open it yourself; the adapter never opens or closes it);
    ``PostgresPersistence(conninfo="postgresql://...")`` owns a pool of its own,
    opened by ``open()`` and closed by ``aclose()``. See ``PostgresOptions`` for
    the other arguments.

    Each operation is one round trip on one pooled connection, run in autocommit
    (a save is one pipeline: an advisory lock on the thread, then one upsert of
    the whole batch, in one implicit transaction). No Python lock is held across
    the pool, so concurrent calls run on concurrent connections; saves to one
    thread serialize on the server, saves to different threads do not.
    """

    capabilities: frozenset[Capability] = frozenset(
        {Capability.DURABLE, Capability.SCHEMA_VALIDATION}
    )

    def __init__(
        self,
        *,
        pool: AsyncConnectionPool[Any] | None = None,
        conninfo: str | None = None,
        tables: Mapping[str, str] | None = None,
        sdk_version: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        pool_timeout: float = 30.0,
        pgbouncer: bool = False,
        prepare_threshold: int | None = 5,
        strict_schema: bool = False,
    ) -> None:
        if (pool is None) == (conninfo is None):
            raise ConfigError(
                "give exactly one of 'pool' (a host-owned AsyncConnectionPool) and "
                "'conninfo' (a connection string; the adapter owns its pool)",
                backend="postgres",
                option="conninfo" if pool is None else "pool",
                valid=["conninfo", "pool"],
            )
        if pool is not None and not isinstance(pool, AsyncConnectionPool):
            raise ConfigError(
                f"'pool' must be a psycopg_pool.AsyncConnectionPool, not {type(pool).__name__}",
                backend="postgres",
                option="pool",
            )
        if conninfo is not None and not isinstance(conninfo, str):
            raise ConfigError(
                f"'conninfo' must be a string, not {type(conninfo).__name__}",
                backend="postgres",
                option="conninfo",
            )
        if sdk_version is None:
            sdk_version = default_sdk_version()
        if not isinstance(sdk_version, str) or not sdk_version or "\x00" in sdk_version:
            raise ConfigError(
                f"'sdk_version' must be a non-empty string without NUL, not {sdk_version!r}",
                backend="postgres",
                option="sdk_version",
            )
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ConfigError(
                f"pool sizes must satisfy 0 <= min_size <= max_size and max_size >= 1 "
                f"(got min_size={min_size}, max_size={max_size})",
                backend="postgres",
                option="max_size",
            )
        self.tables = Tables.from_mapping(tables)
        """The two tables, parsed (schema-qualified or not)."""
        self.sdk_version = sdk_version
        """Written on sessions that ``archive_session`` creates."""
        self.pgbouncer = pgbouncer
        self.strict_schema = strict_schema
        self.prepare_threshold = None if pgbouncer else prepare_threshold
        """psycopg's ``prepare_threshold`` for our connections (None: never prepare)."""
        self._host_pool = pool
        self._conninfo = conninfo
        self._min_size = min_size
        self._max_size = max_size
        self._pool_timeout = pool_timeout
        self._pool: AsyncConnectionPool[Any] | None = None
        self._q = Queries(self.tables)

    @classmethod
    def from_options(cls, options: PostgresOptions) -> PostgresPersistence:
        """Build an adapter from the backend's options (what ``create_adapter`` does)."""
        return cls(
            pool=options.pool,
            conninfo=options.conninfo,
            tables=options.tables,
            sdk_version=options.sdk_version,
            min_size=options.min_size,
            max_size=options.max_size,
            pool_timeout=options.pool_timeout,
            pgbouncer=options.pgbouncer,
            prepare_threshold=options.prepare_threshold,
            strict_schema=options.strict_schema,
        )

    def __repr__(self) -> str:
        owner = "host pool" if self._host_pool is not None else "own pool"
        state = "open" if self.is_open else "closed"
        return (
            f"<PostgresPersistence messages={self.tables.messages} "
            f"sessions={self.tables.sessions}, {owner}, {state}>"
        )

    # -- lifecycle --------------------------------------------------------------

    async def _open(self) -> None:
        if self._host_pool is not None:
            self._pool = self._host_pool
            return
        assert self._conninfo is not None
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self._conninfo,
            min_size=self._min_size,
            max_size=self._max_size,
            timeout=self._pool_timeout,
            kwargs={"autocommit": True, "prepare_threshold": self.prepare_threshold},
            open=False,
            name="chat-persistence",
        )
        try:
            await pool.open(wait=self._min_size > 0, timeout=self._pool_timeout)
        except PoolTimeout as err:
            await pool.close()
            # The pool only says it timed out: one direct attempt gives the real reason.
            conninfo = self._conninfo
            if "connect_timeout" not in conninfo_to_dict(conninfo):
                conninfo = make_conninfo(
                    conninfo, connect_timeout=max(1, round(self._pool_timeout))
                )
            try:
                probe = await psycopg.AsyncConnection.connect(conninfo)
            except psycopg.Error as cause:
                raise StorageUnavailableError("postgres", _first_line(cause)) from cause
            await probe.close()
            raise StorageUnavailableError("postgres", _first_line(err)) from err
        self._pool = pool

    async def _close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and pool is not self._host_pool:
            await pool.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncGenerator[_Conn]:
        """A pooled connection in autocommit for one operation; driver failures to
        reach the store become ``StorageUnavailableError``."""
        self._check_open()
        assert self._pool is not None
        try:
            async with self._pool.connection() as conn:
                conn = cast(_Conn, conn)
                if self._host_pool is None:
                    yield conn
                    return
                # A host connection: borrow it in autocommit (so one statement is
                # one round trip, no BEGIN/COMMIT) and give it back as it was.
                autocommit, threshold = conn.autocommit, conn.prepare_threshold
                await conn.set_autocommit(True)
                if self.pgbouncer:
                    conn.prepare_threshold = None
                try:
                    yield conn
                finally:
                    conn.prepare_threshold = threshold
                    await _restore_autocommit(conn, autocommit)
        except psycopg.OperationalError as err:
            raise StorageUnavailableError("postgres", _first_line(err)) from err

    @staticmethod
    def _cursor(conn: _Conn) -> AsyncCursor[TupleRow]:
        cur = conn.cursor(binary=True)
        # Our own JSON loader on this cursor only: whatever the host registered on
        # its connections, stored parts decode the same way.
        set_json_loads(json.loads, cur)
        return cur

    async def _fetch(
        self, query: sql.Composed, params: Mapping[str, object]
    ) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            cur = self._cursor(conn)
            await cur.execute(query, params)
            return await cur.fetchall()

    # -- messages ---------------------------------------------------------------

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        """Upsert the batch in one statement and one transaction, all or nothing.

        A per-thread advisory lock, taken in the same transaction, orders
        concurrent writers to one thread, so store-assigned ``created_at`` values
        never interleave; writers to different threads do not wait for each other.
        """
        self._check_open()
        validate_messages(thread_id, messages)
        if not messages:
            return []
        # Serialized once: sent as one jsonb array of arrays, and decoded again for
        # the returned messages, which so share nothing with the caller's.
        wire = _dumps([unstructure_parts(m.parts) for m in messages])
        params: dict[str, object] = {
            "thread": thread_id,
            "ids": [m.id for m in messages],
            "roles": [m.role for m in messages],
            "sessions": [m.session_id for m in messages],
            "created": [m.created_at for m in messages],
            "parts": Jsonb(None, dumps=lambda _: wire),
        }
        try:
            async with self._connection() as conn:
                cur = self._cursor(conn)
                # Autocommit + pipeline: lock and upsert run in one implicit
                # transaction, ended by the pipeline's single Sync.
                async with conn.pipeline():
                    await conn.execute(self._q.lock_thread, {"thread": thread_id})
                    await cur.execute(self._q.save_messages, params)
                rows = await cur.fetchall()
        except psycopg.errors.InvalidDatetimeFormat as err:
            detail = err.diag.message_primary or ""
            if OVERFLOW_MARK not in detail:
                raise
            message_id = detail.split(OVERFLOW_MARK, 1)[1].rstrip('"')
            raise InvalidMessageError(
                "Message.created_at",
                None,
                "no timestamp inside the datetime range is left to assign",
                message_id=message_id,
            ) from None
        stored: dict[str, datetime] = {row[0]: row[1] for row in rows}
        return [
            Message(
                id=m.id,
                role=m.role,
                parts=structure_stored_parts(parts, thread_id=thread_id, message_id=m.id),
                session_id=m.session_id,
                created_at=_utc(stored[m.id]),
            )
            for m, parts in zip(messages, json.loads(wire), strict=True)
        ]

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        """The thread's messages, oldest first: one query, keyset paging on
        ``(created_at, message_id)``; see ``PersistenceAdapter``."""
        self._check_open()
        validate_id("thread_id", thread_id)
        for name, value in (("session_id", session_id), ("before", before), ("after", after)):
            if value is not None:
                validate_id(name, value)
        validate_page(limit)
        has_cursor = before is not None or after is not None
        if limit == 0 and not has_cursor:
            return []
        newest_first = limit is not None and after is None
        query = self._q.list_messages(
            by_session=session_id is not None,
            before=before is not None,
            after=after is not None,
            newest_first=newest_first,
            limited=limit is not None,
        )
        rows = await self._fetch(
            query,
            {
                "thread": thread_id,
                "session": session_id,
                "before": before,
                "after": after,
                "limit": limit,
            },
        )
        if has_cursor:
            for row in rows:
                if row[5] is not None:
                    cursor = before if row[5] == "before" else after
                    raise NotFoundError("message", cast(str, cursor), thread_id=thread_id)
        elif newest_first:
            rows.reverse()
        return [_message(thread_id, row) for row in rows]

    async def get_message(self, thread_id: str, message_id: str) -> Message | None:
        """One message, or None."""
        self._check_open()
        validate_id("thread_id", thread_id)
        validate_id("message_id", message_id)
        rows = await self._fetch(self._q.get_message, {"thread": thread_id, "message": message_id})
        return _message(thread_id, rows[0]) if rows else None

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's messages and the sessions whose thread it is (one statement)."""
        self._check_open()
        validate_id("thread_id", thread_id)
        async with self._connection() as conn:
            await self._cursor(conn).execute(self._q.delete_thread, {"thread": thread_id})

    # -- sessions ---------------------------------------------------------------

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        """Upsert on ``session.id`` in one statement; with ``expected_updated_at``, a
        compare-and-set that raises ``ConflictError`` and writes nothing when the
        stored ``updated_at`` differs (or there is no row)."""
        self._check_open()
        validate_session(session)
        if expected_updated_at is not None and (
            not isinstance(expected_updated_at, datetime) or expected_updated_at.utcoffset() is None
        ):
            raise InvalidArgumentError(
                "expected_updated_at",
                expected_updated_at,
                "must be a timezone-aware datetime or None",
            )
        params: dict[str, object] = {
            "id": session.id,
            "thread": session.thread_id,
            "sdk": session.sdk_version,
            "state": _jsonb(session.state),
            "metadata": _jsonb(session.metadata),
            "created": session.created_at,
            "expected": expected_updated_at,
        }
        if expected_updated_at is None:
            rows = await self._fetch(self._q.upsert_session, params)
            return _session(rows[0])
        rows = await self._fetch(self._q.update_session_if, params)
        if rows and rows[0][0]:
            return _session(rows[0][1:])
        raise ConflictError(
            session.id,
            expected=expected_updated_at,
            actual=_utc(rows[0][7]) if rows else None,
        )

    async def get_session(self, session_id: str) -> Session | None:
        """One session, or None."""
        self._check_open()
        validate_id("session_id", session_id)
        rows = await self._fetch(self._q.get_session, {"id": session_id})
        return _session(rows[0]) if rows else None

    async def list_sessions(
        self, thread_id: str, *, include_archived: bool = False
    ) -> list[Session]:
        """The thread's sessions by ``created_at`` then id; archived ones only when asked."""
        self._check_open()
        validate_id("thread_id", thread_id)
        query = self._q.list_sessions if include_archived else self._q.list_live_sessions
        return [_session(row) for row in await self._fetch(query, {"thread": thread_id})]

    async def archive_session(self, session_id: str, *, thread_id: str) -> Session:
        """The seed's archive: upsert the row with ``archived_at = now()`` (created
        with this adapter's ``sdk_version`` if missing); an archived session keeps
        its first ``archived_at``. One statement."""
        self._check_open()
        validate_id("session_id", session_id)
        validate_id("thread_id", thread_id)
        params = {"id": session_id, "thread": thread_id, "sdk": self.sdk_version}
        rows = await self._fetch(self._q.archive_session, params)
        return _session(rows[0])

    # -- schema -----------------------------------------------------------------

    async def validate_schema(self) -> None:
        """Fail fast on drift: one probe of ``information_schema.columns`` for both
        tables; raises ``SchemaMismatchError`` listing every missing table and
        column. With ``strict_schema``, also column types, nullability and primary
        keys (``StrictSchemaMismatchError``), and logs missing recommended indexes."""
        report = await self.check_schema(strict=self.strict_schema)
        if report.missing_indexes:
            logger.warning("%s", report.index_advice())
        report.raise_for_problems()

    async def check_schema(self, *, strict: bool = True) -> SchemaReport:
        """Inspect the tables against the column contract and return what differs,
        without raising. ``strict=False`` checks only that tables and columns exist
        (one query); ``strict=True`` also checks types, nullability, primary keys and
        the recommended indexes (one more query)."""
        async with self._connection() as conn:
            return await inspect_schema(conn, self.tables, strict=strict)


async def _restore_autocommit(conn: _Conn, autocommit: bool) -> None:
    """Give a borrowed connection back in the mode it was lent in. A broken one is
    left to the pool, which discards it."""
    if conn.closed or conn.broken:
        return
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await conn.rollback()
        await conn.set_autocommit(autocommit)
    except psycopg.Error:
        logger.debug("could not restore a borrowed connection's autocommit", exc_info=True)


def _jsonb(value: JSON | None) -> Jsonb | None:
    return None if value is None else Jsonb(value, dumps=_dumps)


def _message(thread_id: str, row: Sequence[Any]) -> Message:
    message_id: str = row[0]
    return Message(
        id=message_id,
        role=row[1],
        parts=structure_stored_parts(row[4], thread_id=thread_id, message_id=message_id),
        session_id=row[2],
        created_at=_utc(row[3]),
    )


def _session(row: Sequence[Any]) -> Session:
    return Session(
        id=row[0],
        thread_id=row[1],
        sdk_version=row[2],
        state=row[3],
        metadata=row[4],
        created_at=_utc(row[5]),
        updated_at=_utc(row[6]),
        archived_at=None if row[7] is None else _utc(row[7]),
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
