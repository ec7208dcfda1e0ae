"""``PostgresPersistence``: the seed's column contract on psycopg 3."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import psycopg
from psycopg import AsyncCursor
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

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
    stored_message,
    unstructure_parts,
    validate_id,
    validate_messages,
    validate_page,
    validate_session,
)

from ._connections import Conn, Connections
from ._contract import Tables
from ._plugin import PostgresOptions
from ._queries import OVERFLOW_MARK, Queries, Statement
from ._resilience import RetryPolicy
from ._rows import message_from_row, session_from_row, utc
from ._schema import SchemaReport, inspect_schema
from ._wire import StoredJsonbLoader, dumps, loads_stored

logger = logging.getLogger("chat_persistence.postgres")

_T = TypeVar("_T")
_JSONB_OID = psycopg.adapters.types["jsonb"].oid
_AT_ONCE_PAUSE = 32
"""Single saves that skip the one-statement form after it could not prove its snapshot."""
_MAX_LIMIT = 2**63 - 1
"""The largest LIMIT Postgres takes (a bigint); any larger limit means the same."""


def _check_utc_range(field: str, value: datetime | None, message_id: str | None = None) -> None:
    """Reject an aware datetime that is outside Python's range once in UTC (Postgres
    would store it and then fail to read it back), as the memory backend does."""
    if value is None:
        return
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise InvalidMessageError(
            field, value, "is outside the range of a UTC datetime", message_id=message_id
        ) from None


def _utc_or_none(value: datetime | None) -> datetime | None:
    """``value`` in UTC; None (which matches no row) when it has no UTC form."""
    try:
        return None if value is None else utc(value)
    except OverflowError:
        return None


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
    (a save takes an advisory lock on the thread and upserts the whole batch in one
    implicit transaction). No Python lock is held across the pool, so concurrent
    calls run on concurrent connections; saves to one thread serialize on the
    server, saves to different threads do not.

    A pooled connection that died while idle is replaced before use, at no round
    trip. When a connection is lost during an operation, reads and upserts run
    again on a fresh one (``retries``, ``retry_backoff``); ``delete_thread`` and a
    compare-and-set ``save_session`` do not, and raise ``StorageUnavailableError``.
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
        retries: int = 2,
        retry_backoff: float = 0.05,
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
        _check_number("pool_timeout", pool_timeout, positive=True)
        _check_number("retry_backoff", retry_backoff, positive=False)
        if type(retries) is not int or retries < 0:
            raise ConfigError(
                f"'retries' must be a non-negative integer, not {retries!r}",
                backend="postgres",
                option="retries",
            )
        self.tables = Tables.from_mapping(tables)
        """The two tables, parsed (schema-qualified or not)."""
        self.retry = RetryPolicy(retries=retries, backoff=float(retry_backoff))
        """Retries of idempotent operations on a lost connection (see ``Connections.run``)."""
        self.pool_timeout = float(pool_timeout)
        """Seconds an operation waits for a pooled connection."""
        self.sdk_version = sdk_version
        """Written on sessions that ``archive_session`` creates."""
        self.pgbouncer = pgbouncer
        self.strict_schema = strict_schema
        self.prepare_threshold = None if pgbouncer else prepare_threshold
        """psycopg's ``prepare_threshold`` for our connections (None: never prepare)."""
        self._host_pool = pool
        self._connections = Connections(
            host_pool=pool,
            conninfo=conninfo,
            min_size=min_size,
            max_size=max_size,
            pool_timeout=self.pool_timeout,
            retry=self.retry,
            pgbouncer=pgbouncer,
            prepare_threshold=self.prepare_threshold,
        )
        self._q = Queries(self.tables)
        self._at_once_pause = 0
        """Single saves left to run as a pipeline before the one-statement form again."""

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
            retries=options.retries,
            retry_backoff=options.retry_backoff,
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

    @property
    def _pool(self) -> AsyncConnectionPool[Any] | None:
        """The pool in use while open (the host's or our own)."""
        return self._connections.pool

    async def _open(self) -> None:
        await self._connections.open()

    async def _close(self) -> None:
        await self._connections.close()

    async def _run(
        self, operation: str, work: Callable[[Conn], Awaitable[_T]], *, retry: bool
    ) -> _T:
        self._check_open()
        return await self._connections.run(operation, work, retry=retry)

    @staticmethod
    def _cursor(conn: Conn) -> AsyncCursor[TupleRow]:
        cur = conn.cursor(binary=True)
        # Our own JSON loader on this cursor only: whatever the host registered on
        # its connections, stored values decode the same way, and never fail.
        cur.adapters.register_loader(_JSONB_OID, StoredJsonbLoader)
        return cur

    async def _fetch(
        self, operation: str, query: Statement, params: Mapping[str, object], *, retry: bool
    ) -> list[tuple[Any, ...]]:
        async def fetch(conn: Conn) -> list[tuple[Any, ...]]:
            cur = self._cursor(conn)
            await cur.execute(query, params)
            return await cur.fetchall()

        return await self._run(operation, fetch, retry=retry)

    # -- messages ---------------------------------------------------------------

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        """Upsert the batch in one statement and one transaction, all or nothing.

        A per-thread advisory lock, taken in the same transaction, orders
        concurrent writers to one thread, so store-assigned ``created_at`` values
        never interleave; writers to different threads do not wait for each other.
        A single message is saved by one statement that takes the lock itself, when
        it can prove that its snapshot saw every earlier holder of the lock; when it
        cannot (another transaction ended meanwhile), it writes nothing and the save
        runs again behind the lock, in a pipeline. Retried on a lost connection:
        re-saving the same batch is idempotent (a batch that did commit keeps the
        ``created_at`` it was given).
        """
        self._check_open()
        validate_messages(thread_id, messages)
        for m in messages:
            _check_utc_range("Message.created_at", m.created_at, m.id)
        if not messages:
            return []
        # Serialized once: sent as jsonb (one message's parts array, or an array of
        # them), and decoded again for the returned messages, which so share nothing
        # with the caller's.
        at_once: Statement | None = None
        if len(messages) == 1:
            m = messages[0]
            query = self._q.save_message
            if self._at_once_pause:
                self._at_once_pause -= 1
            else:
                at_once = self._q.save_message_at_once
            wire = dumps(unstructure_parts(m.parts))
            params: dict[str, object] = {
                "thread": thread_id,
                "id": m.id,
                "role": m.role,
                "session": m.session_id,
                "created": None if m.created_at is None else utc(m.created_at),
                "parts": Jsonb(None, dumps=lambda _: wire),
            }
        else:
            query = self._q.save_messages
            wire = dumps([unstructure_parts(m.parts) for m in messages])
            params = {
                "thread": thread_id,
                "ids": [m.id for m in messages],
                "roles": [m.role for m in messages],
                "sessions": [m.session_id for m in messages],
                # In UTC: Postgres takes offsets up to 15:59 only; Python's go to 23:59.
                "created": [None if m.created_at is None else utc(m.created_at) for m in messages],
                "parts": Jsonb(None, dumps=lambda _: wire),
            }

        async def save(conn: Conn) -> list[tuple[Any, ...]]:
            cur = conn.cursor(binary=True)  # it reads back no JSON
            if at_once is not None:
                await cur.execute(at_once, params)
                if rows := await cur.fetchall():
                    return rows
                self._at_once_unproven(thread_id)
            # Autocommit + pipeline: lock and upsert run in one implicit
            # transaction, ended by the pipeline's single Sync.
            async with conn.pipeline():
                await cur.execute(self._q.lock_thread, {"thread": thread_id})
                await cur.execute(query, params)
            return await cur.fetchall()

        try:
            rows = await self._run("save_messages", save, retry=True)
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
        # Validated above; decoded from our own wire text, so nothing is shared.
        return [
            stored_message(
                thread_id=thread_id,
                message_id=m.id,
                role=m.role,
                session_id=m.session_id,
                created_at=utc(stored[m.id]),
                parts_json=parts,
            )
            for m, parts in zip(
                messages,
                [loads_stored(wire)] if len(messages) == 1 else loads_stored(wire),
                strict=True,
            )
        ]

    def _at_once_unproven(self, thread_id: str) -> None:
        # Another transaction ended while the one-statement save waited or started:
        # likely a busy server, where the next ones would miss too. Take the
        # pipeline straight away for a while.
        self._at_once_pause = _AT_ONCE_PAUSE
        logger.debug(
            "save to thread %r: another transaction ended during the one-statement "
            "save; saved again behind the thread lock",
            thread_id,
        )

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
            "list_messages",
            query,
            {
                "thread": thread_id,
                "session": session_id,
                "before": before,
                "after": after,
                "limit": None if limit is None else min(limit, _MAX_LIMIT),
            },
            retry=True,
        )
        if has_cursor:
            for row in rows:
                if row[5] is not None:
                    cursor = before if row[5] == "before" else after
                    raise NotFoundError("message", cast(str, cursor), thread_id=thread_id)
        elif newest_first:
            rows.reverse()
        return [message_from_row(thread_id, row) for row in rows]

    async def get_message(self, thread_id: str, message_id: str) -> Message | None:
        """One message, or None."""
        self._check_open()
        validate_id("thread_id", thread_id)
        validate_id("message_id", message_id)
        rows = await self._fetch(
            "get_message",
            self._q.get_message,
            {"thread": thread_id, "message": message_id},
            retry=True,
        )
        return message_from_row(thread_id, rows[0]) if rows else None

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's messages and the sessions whose thread it is (one statement).

        Not retried on a lost connection: a second delete could also remove what
        another writer saved after the first one committed."""
        self._check_open()
        validate_id("thread_id", thread_id)

        async def delete(conn: Conn) -> None:
            await self._cursor(conn).execute(self._q.delete_thread, {"thread": thread_id})

        await self._run("delete_thread", delete, retry=False)

    # -- sessions ---------------------------------------------------------------

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        """Upsert on ``session.id`` in one statement; with ``expected_updated_at``, a
        compare-and-set that raises ``ConflictError`` and writes nothing when the
        stored ``updated_at`` differs (or there is no row).

        A plain save is retried on a lost connection (an upsert of the same values;
        a repeat only moves ``updated_at`` on). A compare-and-set is not: had the
        first attempt committed, the repeat would report its own write as a conflict.
        """
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
        _check_utc_range("Session.created_at", session.created_at)
        params: dict[str, object] = {
            "id": session.id,
            "thread": session.thread_id,
            "sdk": session.sdk_version,
            "state": _jsonb(session.state),
            "metadata": _jsonb(session.metadata),
            "created": None if session.created_at is None else utc(session.created_at),
            "expected": _utc_or_none(expected_updated_at),
        }
        if expected_updated_at is None:
            rows = await self._fetch("save_session", self._q.upsert_session, params, retry=True)
            return session_from_row(rows[0])
        rows = await self._fetch(
            "save_session with expected_updated_at",
            self._q.update_session_if,
            params,
            retry=False,
        )
        if rows and rows[0][0]:
            return session_from_row(rows[0][1:])
        raise ConflictError(
            session.id,
            expected=expected_updated_at,
            actual=utc(rows[0][7]) if rows else None,
        )

    async def get_session(self, session_id: str) -> Session | None:
        """One session, or None."""
        self._check_open()
        validate_id("session_id", session_id)
        rows = await self._fetch("get_session", self._q.get_session, {"id": session_id}, retry=True)
        return session_from_row(rows[0]) if rows else None

    async def list_sessions(
        self, thread_id: str, *, include_archived: bool = False
    ) -> list[Session]:
        """The thread's sessions by ``created_at`` then id; archived ones only when asked."""
        self._check_open()
        validate_id("thread_id", thread_id)
        query = self._q.list_sessions if include_archived else self._q.list_live_sessions
        rows = await self._fetch("list_sessions", query, {"thread": thread_id}, retry=True)
        return [session_from_row(row) for row in rows]

    async def archive_session(self, session_id: str, *, thread_id: str) -> Session:
        """The seed's archive: upsert the row with ``archived_at = now()`` (created
        with this adapter's ``sdk_version`` if missing); an archived session keeps
        its first ``archived_at``. One statement, retried on a lost connection
        (archiving an archived session changes nothing)."""
        self._check_open()
        validate_id("session_id", session_id)
        validate_id("thread_id", thread_id)
        params = {"id": session_id, "thread": thread_id, "sdk": self.sdk_version}
        rows = await self._fetch("archive_session", self._q.archive_session, params, retry=True)
        return session_from_row(rows[0])

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

        async def inspect(conn: Conn) -> SchemaReport:
            return await inspect_schema(conn, self.tables, strict=strict)

        return await self._run("check_schema", inspect, retry=True)


def _jsonb(value: JSON | None) -> Jsonb | None:
    return None if value is None else Jsonb(value, dumps=dumps)


def _check_number(option: str, value: object, *, positive: bool) -> None:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > 0 if positive else value >= 0)
    )
    if not ok:
        wanted = "a positive" if positive else "a non-negative"
        raise ConfigError(
            f"{option!r} must be {wanted} number of seconds, not {value!r}",
            backend="postgres",
            option=option,
        )
