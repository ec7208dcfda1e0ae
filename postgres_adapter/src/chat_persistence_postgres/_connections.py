"""The adapter's way to the server: a pool (the host's or its own), live
connections out of it, and retries when a connection is lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow, tuple_row
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout, TooManyRequests

from chat_persistence import ConfigError, StorageUnavailableError

from ._encoding import check_client_encoding
from ._opening import libpq_connect_timeout, wait_for_first_connections, watched_connection_class
from ._options import PostgresOptions
from ._resilience import RetryPolicy, connection_lost, died_while_idle, unavailable
from ._secrets import Secrets

logger = logging.getLogger("chat_persistence.postgres")

Conn = AsyncConnection[TupleRow]
_T = TypeVar("_T")


class Connections:
    """Pooled connections for one adapter, and the rules for losing them.

    ``host_pool`` given: that pool is used as lent (never opened or closed), each
    connection switched to autocommit for an operation and switched back. Else a
    pool of our own on ``conninfo``, its connections in autocommit.
    """

    def __init__(self, options: PostgresOptions, retry: RetryPolicy) -> None:
        self.options = options
        self.retry = retry
        self._host_pool: AsyncConnectionPool[Any] | None = options.pool
        self.pool_timeout = float(options.pool_timeout)
        self.pool: AsyncConnectionPool[Any] | None = None
        """The pool in use while open."""
        self._probe: asyncio.Task[psycopg.Error | None] | None = None
        self._opening = asyncio.Lock()
        self.read_committed_explicitly = False
        """Whether each operation runs in an explicit read committed transaction:
        set when a write found the session's isolation to be another level."""
        self._secrets = Secrets(options.conninfo)
        self.distributed: bool | None = options.distributed
        """Whether the database is distributed (Citus): configured, or found on
        the first connection (None until then)."""

    async def open(self) -> None:
        """Take the host's pool, or open our own and wait for its first connections.
        Concurrent calls open one pool: the others wait for it."""
        async with self._opening:
            if self.pool is None:
                await self._open()

    async def _open(self) -> None:
        if self._host_pool is not None:
            await self._check_host_pool(self._host_pool)
            self.pool = self._host_pool
            return
        conninfo = self.options.conninfo
        assert conninfo is not None
        try:
            conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError as err:
            # At once, not after pool_timeout of failed attempts; libpq may quote it.
            raise ConfigError(
                f"invalid conninfo: {self._secrets.line(err)}",
                backend="postgres",
                option="conninfo",
            ) from None
        session_options = self._utc_session_options()
        failed: asyncio.Future[psycopg.Error] = asyncio.get_running_loop().create_future()
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo,
            connection_class=watched_connection_class(failed),
            min_size=self.options.min_size,
            max_size=self.options.max_size,
            timeout=self.pool_timeout,
            # The pool's background reconnection gives up within half an operation's
            # wait; the next operation then starts a fresh attempt at once, so a
            # server that is back is used without waiting out a long back-off.
            reconnect_timeout=self.pool_timeout / 2,
            kwargs={
                "autocommit": True,
                # Always: psycopg's JSON is UTF-8 whatever the connection says.
                "client_encoding": "UTF8",
                "prepare_threshold": self.options.effective_prepare_threshold,
                **self._connect_timeout(),
                **session_options,
            },
            open=False,
            name="chat-persistence",
        )
        await pool.open(wait=False)
        if self.options.min_size > 0:
            await wait_for_first_connections(
                pool,
                failed,
                seconds=self.options.connect_timeout,
                secrets=self._secrets,
                sent_options=bool(session_options),
            )
        self.pool = pool
        if self.distributed is None and self.options.min_size > 0:
            # A connection is open anyway: learn the database's kind now, not
            # in the first operation.
            await self.run("open", _nothing, retry=True)

    async def _check_host_pool(self, pool: AsyncConnectionPool[Any]) -> None:
        """Refuse a host pool whose connections cannot be used (see
        ``check_client_encoding``), at no round trip. A pool that is closed or
        busy is left to the first operation to report."""
        try:
            conn = await pool.getconn(timeout=min(self.pool_timeout, 1.0))
        except (PoolClosed, PoolTimeout, TooManyRequests):
            return
        try:
            check_client_encoding(conn)
            if self.distributed is None:
                with contextlib.suppress(psycopg.Error):  # else the first operation asks
                    await self._borrowed(conn, _nothing)
        finally:
            await pool.putconn(conn)

    def _connect_timeout(self) -> dict[str, int]:
        """libpq's ``connect_timeout`` from ours, unless the conninfo sets its own."""
        given = self.options.conninfo is not None and "connect_timeout" in _params(
            self.options.conninfo
        )
        return (
            {}
            if given
            else {"connect_timeout": libpq_connect_timeout(self.options.connect_timeout)}
        )

    def _utc_session_options(self) -> dict[str, str]:
        """Connect options that start our own sessions with ``TimeZone=UTC``, so that
        psycopg returns ``timezone.utc`` datetimes the rows keep as they are (a
        speed-up only: times read correctly in any zone).

        Appended to the options the conninfo (or ``PGOPTIONS``) already gives, and
        only when they set no time zone. Not with a service (its file's ``options``
        would be replaced, and we cannot read them), nor behind PgBouncer, which
        refuses startup options it does not know, nor on a conninfo psycopg cannot
        parse (the pool reports that one itself).
        """
        if self.options.pgbouncer or self.options.conninfo is None:
            return {}
        try:
            params = conninfo_to_dict(self.options.conninfo)
        except psycopg.ProgrammingError:
            return {}
        if "service" in params or os.environ.get("PGSERVICE"):
            return {}
        given = params.get("options")
        if given is None:
            given = os.environ.get("PGOPTIONS", "")
        if "timezone" in str(given).lower():
            return {}
        return {"options": f"{given} -c TimeZone=UTC".strip()}

    async def close(self) -> None:
        """Close our own pool; a host's pool is only let go."""
        pool, self.pool = self.pool, None
        if pool is not None and pool is not self._host_pool:
            await pool.close()

    async def run(
        self, operation: str, work: Callable[[Conn], Awaitable[_T]], *, retry: bool
    ) -> _T:
        """Run ``work`` on a pooled connection in autocommit.

        When the connection is lost while ``work`` runs (the server restarted, the
        backend was terminated, the network broke), an idempotent operation
        (``retry=True``) runs again on a fresh connection, up to ``retries`` more
        times with ``RetryPolicy`` back-off; then, or at once for an operation that
        is not idempotent, it is a ``StorageUnavailableError`` with the driver's
        error chained. Any other error is raised as it is: retrying cannot help it.
        """
        pool = self.pool
        assert pool is not None
        attempts = 1 + (self.retry.retries if retry else 0)
        lost: psycopg.Error | None = None
        for attempt in range(attempts):
            if attempt:
                delay = self.retry.delay(attempt)
                logger.warning(
                    "connection lost during %s (%s); retry %d of %d in %.3f s",
                    operation,
                    self._secrets.line(cast(psycopg.Error, lost)),
                    attempt,
                    attempts - 1,
                    delay,
                )
                await asyncio.sleep(delay)
            conn = await self._checkout(pool)
            try:
                return await self._borrowed(conn, work)
            except psycopg.Error as err:
                if not connection_lost(conn):
                    if unavailable(err):
                        raise StorageUnavailableError("postgres", self._secrets.line(err)) from err
                    raise
                lost = err
            finally:
                await pool.putconn(conn)
        assert lost is not None
        if retry:
            detail = f"connection lost during {operation}, {attempts} attempt(s)"
        else:
            detail = (
                f"connection lost during {operation}, which is not retried: "
                "it may or may not have been applied; read the data again"
            )
        raise StorageUnavailableError("postgres", f"{detail}: {self._secrets.line(lost)}") from lost

    async def _checkout(self, pool: AsyncConnectionPool[Any]) -> Conn:
        """A live connection from the pool, waiting at most ``pool_timeout``.

        Connections that died while idle in the pool are handed back (the pool
        discards each and opens a replacement) and the next one is taken, at no
        round trip: a server restart between two operations costs no retry.
        The pool's own ``check`` callback is not used because it waits a second
        and more after each failed check.
        """
        deadline = time.monotonic() + self.pool_timeout
        # Each pass discards one dead connection; the pool holds at most max_size.
        for _ in range(pool.max_size + 1):
            try:
                conn = cast(Conn, await pool.getconn(max(0.0, deadline - time.monotonic())))
            except PoolTimeout as err:
                detail, cause = await self._timed_out(pool, err)
                raise StorageUnavailableError("postgres", detail) from cause
            except (PoolClosed, TooManyRequests) as err:
                raise StorageUnavailableError("postgres", self._secrets.line(err)) from err
            if not died_while_idle(conn):
                return conn
            logger.info("discarding a pooled connection that died while idle")
            await pool.putconn(conn)
        raise StorageUnavailableError(
            "postgres", "every connection the pool gave was dead; the server keeps dropping them"
        )

    async def _timed_out(
        self, pool: AsyncConnectionPool[Any], err: PoolTimeout
    ) -> tuple[str, psycopg.Error]:
        """Why a wait for a connection ran out, and the error to chain: the
        server's own refusal when it cannot be reached, else the pool's timeout,
        naming the options that size it."""
        stats = pool.get_stats()
        if self._host_pool is None and stats.get("connections_errors", 0):
            cause = await self._connect_probe()
            if cause is not None:
                detail = (
                    f"cannot connect within pool_timeout={self.pool_timeout:g} s: "
                    f"{self._secrets.line(cause)}"
                )
                return detail, cause
        detail = (
            f"no pooled connection became free within pool_timeout={self.pool_timeout:g} s "
            f"({stats.get('pool_size', 0)} open of max_size={pool.max_size}, "
            f"{stats.get('requests_waiting', 0)} other requests waiting); "
            "raise max_size or pool_timeout, or make fewer concurrent calls"
        )
        return detail, err

    async def _connect_probe(self) -> psycopg.Error | None:
        """Connect once, directly, to learn why the pool cannot: the driver's error,
        or None when the server answers. Concurrent callers share one attempt."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._probe_once())
        return await asyncio.shield(self._probe)

    async def _probe_once(self) -> psycopg.Error | None:
        conninfo = self.options.conninfo
        assert conninfo is not None
        conninfo = make_conninfo(conninfo, **self._connect_timeout())
        try:
            probe = await psycopg.AsyncConnection.connect(conninfo)
        except psycopg.Error as err:
            return err
        await probe.close()
        return None

    async def _borrowed(self, conn: Conn, work: Callable[[Conn], Awaitable[_T]]) -> _T:
        if self._host_pool is None:
            # The common case without its two coroutines: this runs on every operation.
            if self.distributed is None:
                await self._detect(conn)
            if not self.read_committed_explicitly:
                return await work(conn)
            return await self._isolated(conn, work)
        check_client_encoding(conn)
        # A host connection: borrow it in autocommit (so one statement is one round
        # trip, no BEGIN/COMMIT) and give it back as it was.
        autocommit, threshold = conn.autocommit, conn.prepare_threshold
        await conn.set_autocommit(True)
        if self.options.pgbouncer:
            conn.prepare_threshold = None
        try:
            await self._detect(conn)
            return await self._isolated(conn, work)
        finally:
            conn.prepare_threshold = threshold
            await _restore_autocommit(conn, autocommit)

    async def _detect(self, conn: Conn) -> None:
        """Find whether the database is distributed, once (one round trip)."""
        if self.distributed is None:
            cur = AsyncCursor(conn, row_factory=tuple_row)
            await cur.execute(_CITUS_INSTALLED)
            row = await cur.fetchone()
            self.distributed = bool(row and row[0])
            if self.distributed:
                logger.info("the database has the citus extension: distributed statements")

    async def _isolated(self, conn: Conn, work: Callable[[Conn], Awaitable[_T]]) -> _T:
        """``work`` as it is (autocommit), or, once the server's default isolation
        was found not to be read committed, in a read committed transaction of its
        own (two more round trips: BEGIN and COMMIT)."""
        if not self.read_committed_explicitly:
            return await work(conn)
        command = AsyncCursor(conn, row_factory=tuple_row)
        await command.execute(b"BEGIN ISOLATION LEVEL READ COMMITTED")
        try:
            result = await work(conn)
        except BaseException:
            if not (conn.closed or conn.broken):
                await command.execute(b"ROLLBACK")
            raise
        await command.execute(b"COMMIT")
        return result


_CITUS_INSTALLED = b"SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')"


async def _nothing(conn: Conn) -> None:
    """An operation that only takes a connection (and so learns the database's kind)."""


def _params(conninfo: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return {}


async def _restore_autocommit(conn: Conn, autocommit: bool) -> None:
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
