"""Fault injection against real PostgreSQL servers, for the reliability tests.

- ``own_pg``: a PostgreSQL 16 of one test module's own (from the ``pgserver``
  wheel, in its own folder), which tests stop and start with ``pg_ctl``; it is
  stopped and deleted when the module ends, whatever state a test left it in.
- ``Holder``: a second connection that holds the locks the adapter's calls then
  wait for, sees which of the adapter's backends wait, and terminates them
  (``pg_terminate_backend``): a fault in the middle of an operation, on purpose.
- ``install_gate``: a trigger that makes every insert of a message whose id starts
  with ``gate`` wait for a lock the ``Holder`` takes: a save stopped half-way
  through its batch, or many saves held in flight at once.
- ``FaultProxy``: a proxy on a unix socket between the adapter and the server that
  loses the reply to the next request (after the server committed it) or the next
  request itself: the faults no server-side kill can time exactly.
- ``tally``: counts what the tests injected and checked, printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from fix_pg import PgSchema, PgServer

GATE_KEY = 4242
"""The advisory lock key the gate trigger waits on."""

_TALLY: Counter[str] = Counter()


@pytest.fixture(scope="session")
def tally() -> Counter[str]:
    """Counts of faults injected and survived, writers, messages and inputs checked."""
    return _TALLY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the reliability figures when reliability tests ran."""
    if not _TALLY:
        return
    terminalreporter.write_sep("-", "reliability figures")
    for name, count in sorted(_TALLY.items()):
        terminalreporter.write_line(f"{name}: {count}")


def app_dsn(dsn: str, app: str) -> str:
    """``dsn`` with an ``application_name``, so a ``Holder`` can find its backends."""
    return make_conninfo(dsn, application_name=app)


def new_app() -> str:
    """A fresh application name."""
    return f"cp-fault-{secrets.token_hex(4)}"


# -- a server of our own ---------------------------------------------------------


@attrs.define
class OwnServer:
    """A PostgreSQL 16 server that only one test module uses, so it may be stopped."""

    handle: Any
    socket_dir: Path
    running: bool = True

    @property
    def dsn(self) -> str:
        """Its DSN (the same across restarts: it listens on the same socket)."""
        return str(self.handle.get_uri())

    @property
    def server(self) -> PgServer:
        """As a ``PgServer``, for ``make_schema``."""
        return PgServer(dsn=self.dsn, source="pgserver (own)", log=self.handle.log)

    def _pg_ctl(self, *args: str) -> None:
        import pgserver

        pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
        # Output to files, never pipes: the server pg_ctl starts would inherit a pipe
        # and keep it open, and the call would never return.
        with tempfile.TemporaryFile() as out:
            done = subprocess.run(
                [str(pg_ctl), "-D", str(self.handle.pgdata), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                user=self.handle.system_user,
                timeout=60,
                check=False,
            )
            if done.returncode:
                out.seek(0)
                raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {out.read().decode()}")

    def stop(self) -> None:
        """Stop the server (fast shutdown: every connection is cut) and wait for it."""
        self._pg_ctl("-w", "-m", "fast", "stop")
        self.running = False

    def start(self) -> None:
        """Start it again on the same data and socket, and wait until it accepts."""
        from pgserver.utils import PostmasterInfo

        self._pg_ctl(
            "-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.handle.log), "start"
        )
        self.running = True
        # The wheel stops the process it knows of at cleanup: tell it the new one.
        self.handle._postmaster_info = PostmasterInfo.read_from_pgdata(self.handle.pgdata)


@pytest.fixture(scope="module")
def own_pg() -> Iterator[OwnServer]:
    """A server of this module's own; stopped and deleted when the module ends."""
    import pgserver

    wheel: Any = pgserver
    root = Path(tempfile.mkdtemp(prefix="chat-persistence-own-"))
    handle: Any = wheel.get_server(root / "pgdata", cleanup_mode="delete")
    own = OwnServer(handle=handle, socket_dir=Path(handle.get_postmaster_info().socket_dir))
    try:
        yield own
    finally:
        if not own.running:
            own.start()  # so that the wheel's cleanup finds a server to stop and deletes all
        handle.cleanup()
        root.rmdir()


@pytest.fixture
def own_schema(own_pg: OwnServer) -> Iterator[PgSchema]:
    """A schema with the reference tables on the module's own server."""
    from fix_pg import make_schema

    for schema in make_schema(own_pg.server):
        schema.create_reference_tables()
        yield schema


# -- holding locks, terminating backends -----------------------------------------


class Holder:
    """Two more connections: one holds locks, the other watches the adapter's
    backends (outside any transaction: ``pg_stat_activity`` is a snapshot taken
    once per transaction) and kills them."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[tuple[Any, ...]],
        watcher: psycopg.AsyncConnection[tuple[Any, ...]],
        app: str,
    ) -> None:
        self.conn = conn
        self.watcher = watcher
        self.app = app
        self.terminated: list[int] = []

    async def hold_gate(self) -> None:
        """Take the gate lock: every gated insert now waits."""
        await self.conn.execute("SELECT pg_advisory_lock(%s)", [GATE_KEY])

    async def open_gate(self) -> None:
        """Release the gate lock."""
        await self.conn.execute("SELECT pg_advisory_unlock(%s)", [GATE_KEY])

    async def hold_tables(self, *tables: sql.Composable) -> None:
        """Lock tables against every reader and writer, until ``release()``."""
        await self.conn.execute("BEGIN")
        for table in tables:
            await self.conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))

    async def hold_thread(self, thread_id: str) -> None:
        """Take the adapter's advisory lock of one thread, until ``release()``."""
        from chat_persistence_postgres._sql import LOCK_SEED

        await self.conn.execute("BEGIN")
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, %s))", [thread_id, LOCK_SEED]
        )

    async def release(self) -> None:
        """End the transaction that holds table or thread locks."""
        await self.conn.execute("ROLLBACK")

    async def waiting(self) -> list[int]:
        """The adapter's backends that wait for a lock now."""
        cur = await self.watcher.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND wait_event_type = 'Lock' ORDER BY pid",
            [self.app],
        )
        return [row[0] for row in await cur.fetchall()]

    async def gate_waiters(self) -> int:
        """How many backends wait at the gate now."""
        cur = await self.watcher.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid = 0 AND objid = %s",
            [GATE_KEY],
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def wait_for(self, count: int, *, gate: bool = False, exclude: int = 0) -> list[int]:
        """Wait (bounded: 20 s) until ``count`` of the adapter's backends wait for a
        lock (``gate``: at the gate), other than ``exclude``; return their pids."""
        for _ in range(2000):
            pids = [p for p in await self.waiting() if p != exclude]
            ready = (await self.gate_waiters()) >= count if gate else len(pids) >= count
            if ready and len(pids) >= count:
                return pids
            await asyncio.sleep(0.01)
        raise AssertionError(f"{count} backend(s) of {self.app} never waited for a lock")

    async def terminate(self, pid: int) -> None:
        """``pg_terminate_backend``, waiting (up to 5 s) until the backend is gone."""
        cur = await self.watcher.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
        row = await cur.fetchone()
        assert row == (True,), f"backend {pid} was not terminated"
        self.terminated.append(pid)

    async def backends(self) -> list[int]:
        """Every backend of the adapter."""
        cur = await self.watcher.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s ORDER BY pid",
            [self.app],
        )
        return [row[0] for row in await cur.fetchall()]


@pytest.fixture
async def holder_factory() -> AsyncIterator[Any]:
    """``await make(dsn, app)`` -> a ``Holder``; all are closed afterwards."""
    made: list[Holder] = []

    async def make(dsn: str, app: str) -> Holder:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        watcher = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        made.append(Holder(conn, watcher, app))
        return made[-1]

    yield make
    for holder in made:
        await holder.conn.close()
        await holder.watcher.close()


def install_gate(schema: PgSchema) -> None:
    """Make inserts of messages whose id starts with ``gate`` wait at the gate lock."""
    function = schema.qualified("gate")
    with schema.server.connect() as conn:
        conn.execute(
            sql.SQL(
                """
                CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.message_id LIKE 'gate%%' THEN
                        PERFORM pg_advisory_lock_shared({key});
                        PERFORM pg_advisory_unlock_shared({key});
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER gate BEFORE INSERT ON {table}
                    FOR EACH ROW EXECUTE FUNCTION {function}();
                """
            ).format(
                function=function,
                key=sql.Literal(GATE_KEY),
                table=schema.qualified("chat_messages"),
            )
        )


# -- a proxy that loses messages ------------------------------------------------


@attrs.define(eq=False)
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    ready: bool = False
    """Past the startup: the server sent its first ReadyForQuery."""
    swallowing: list[bytes] | None = None

    def cut(self) -> None:
        for writer in (self.client, self.server):
            writer.close()


class FaultProxy:
    """Forwards connections from its own socket to the server's, and loses the next
    reply or request when told to. Server messages are forwarded whole, one at a time.
    """

    def __init__(self, target: Path, directory: Path, port: int) -> None:
        self.target = target
        self.directory = directory
        self.port = port
        self.links: list[_Link] = []
        self.accepted = 0
        self._lose_reply: asyncio.Future[list[bytes]] | None = None
        self._lose_request: asyncio.Future[bytes] | None = None
        self._swallower: _Link | None = None
        self._listener: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def dsn(self) -> str:
        """Connect here to go through the proxy."""
        return f"postgresql://postgres@/postgres?host={self.directory}&port={self.port}"

    async def __aenter__(self) -> FaultProxy:
        path = self.directory / f".s.PGSQL.{self.port}"
        self._listener = await asyncio.start_unix_server(self._accept, path=str(path))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._listener is not None
        self._listener.close()
        for link in self.links:
            link.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._listener.wait_closed()

    def lose_next_reply(self) -> asyncio.Future[list[bytes]]:
        """Swallow the server's whole reply to the next request on a ready connection,
        up to and with its ReadyForQuery (so the server finished, and committed), then
        cut that connection. The future gets the swallowed messages."""
        self._lose_reply = asyncio.get_running_loop().create_future()
        self._swallower = None
        return self._lose_reply

    def lose_next_request(self) -> asyncio.Future[bytes]:
        """Drop the next request on a ready connection before the server sees it, and
        cut that connection. The future gets the lost bytes."""
        self._lose_request = asyncio.get_running_loop().create_future()
        return self._lose_request

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_unix_connection(str(self.target))
        link = _Link(client=writer, server=server_writer)
        self.links.append(link)
        self.accepted += 1
        for pump in (self._upstream(link, reader), self._downstream(link, server_reader)):
            task = asyncio.create_task(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _upstream(self, link: _Link, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(65536):
                lose = self._lose_request
                if link.ready and lose is not None and not lose.done():
                    link.cut()
                    lose.set_result(data)
                    return
                reply = self._lose_reply
                if link.ready and reply is not None and not reply.done() and not self._swallower:
                    self._swallower = link
                    link.swallowing = []
                link.server.write(data)
                await link.server.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            link.server.close()

    async def _downstream(self, link: _Link, reader: asyncio.StreamReader) -> None:
        buffer = bytearray()
        try:
            while data := await reader.read(65536):
                buffer += data
                while len(buffer) >= 5:
                    size = int.from_bytes(buffer[1:5], "big")
                    if len(buffer) < 1 + size:
                        break
                    message = bytes(buffer[: 1 + size])
                    del buffer[: 1 + size]
                    if link.swallowing is not None:
                        link.swallowing.append(message)
                        if message[:1] == b"Z":
                            link.cut()
                            assert self._lose_reply is not None
                            self._lose_reply.set_result(link.swallowing)
                            return
                        continue
                    link.client.write(message)
                    if message[:1] == b"Z":
                        link.ready = True
                await link.client.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            link.client.close()


def data_rows(messages: list[bytes]) -> list[list[bytes | None]]:
    """The columns of each DataRow among protocol messages."""
    rows: list[list[bytes | None]] = []
    for message in messages:
        if message[:1] != b"D":
            continue
        count = int.from_bytes(message[5:7], "big")
        at = 7
        columns: list[bytes | None] = []
        for _ in range(count):
            size = int.from_bytes(message[at : at + 4], "big", signed=True)
            at += 4
            if size < 0:
                columns.append(None)
                continue
            columns.append(message[at : at + size])
            at += size
        rows.append(columns)
    return rows


@pytest.fixture
def proxy_dir() -> Iterator[Path]:
    """A short folder of its own for the proxy's socket (a socket path must fit in
    107 bytes, which pytest's tmp_path may not)."""
    directory = Path(tempfile.mkdtemp(prefix="cp-proxy-"))
    yield directory
    shutil.rmtree(directory)


@pytest.fixture
async def fault_proxy(own_pg: OwnServer, proxy_dir: Path) -> AsyncIterator[FaultProxy]:
    """A ``FaultProxy`` in front of the module's own server."""
    info = own_pg.handle.get_postmaster_info()
    target = own_pg.socket_dir / f".s.PGSQL.{info.port}"
    async with FaultProxy(target, proxy_dir, info.port) as proxy:
        yield proxy
