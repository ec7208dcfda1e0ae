"""The host-environment matrix: each configuration a psycopg user can make, built
for real on the test servers, as a ``HostTarget`` a test runs the contract on.

A configuration is a ``HostConfig``: a name, the async context manager that builds
it from a ``HostEnv``, the contract checks that apply, and the setting a refusal at
``open()`` must name (when refusing is an acceptable answer). Databases with
server-side defaults (isolation, encoding, time zone) are made once per session on
PostgreSQL 16 and dropped at its end; every configuration gets a schema of its own
with the reference tables. URL forms run on the PostgreSQL 15 these tests start,
which listens both on loopback TCP and on a socket folder.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from chat_persistence import PersistenceAdapter, create_adapter
from chat_persistence_contract import AdapterFactory
from chat_persistence_postgres import PostgresPersistence
from fix_hosts import LocalCluster, PgBouncer
from fix_pg import PgSchema, PgServer


@attrs.frozen
class HostTarget:
    """One configuration, built: adapters in it, and a plain UTF-8 client's view."""

    factory: AdapterFactory
    """New, unopened adapters in this configuration (all on the same store)."""
    plain: PgServer
    """A plain autocommit client (``client_encoding=UTF8``) on the same database."""
    messages: sql.Identifier
    """The messages table, as the plain client names it."""


@attrs.define
class HostDatabases:
    """Databases on one server, made on first use and dropped at the end."""

    server: PgServer
    _made: dict[str, PgServer] = attrs.field(factory=dict[str, PgServer])

    def get(
        self, key: str, create: str = "", settings: Mapping[str, str] | None = None
    ) -> PgServer:
        """The database for ``key``: ``CREATE DATABASE <name> <create>``, then each
        of ``settings`` as a database default (``ALTER DATABASE ... SET``)."""
        if key in self._made:
            return self._made[key]
        name = f"cp_host_{key.replace('-', '_')}_{secrets.token_hex(3)}"
        with self.server.connect() as conn:
            create_sql = sql.SQL("CREATE DATABASE {} ").format(sql.Identifier(name))
            conn.execute(create_sql + sql.SQL(create))  # pyright: ignore[reportArgumentType]
            for setting, value in (settings or {}).items():
                conn.execute(
                    sql.SQL("ALTER DATABASE {} SET {} TO {}").format(
                        sql.Identifier(name), sql.Identifier(setting), sql.Literal(value)
                    )
                )
        self._made[key] = PgServer(
            dsn=make_conninfo(self.server.dsn, dbname=name), source=self.server.source
        )
        return self._made[key]

    def drop_all(self) -> None:
        """Drop every database made here."""
        with self.server.connect() as conn:
            for made in self._made.values():
                name = conninfo_to_dict(made.dsn)["dbname"]
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(str(name))
                    )
                )
        self._made.clear()


@pytest.fixture(scope="session")
def host_databases(pg16: PgServer) -> Iterator[HostDatabases]:
    """Databases with server-side defaults on PostgreSQL 16, dropped at session end."""
    databases = HostDatabases(pg16)
    try:
        yield databases
    finally:
        databases.drop_all()


@attrs.define
class HostEnv:
    """What a configuration is built from."""

    request: pytest.FixtureRequest
    databases: HostDatabases
    monkeypatch: pytest.MonkeyPatch
    tmp_path: Path

    @property
    def pg16(self) -> PgServer:
        """The test server."""
        return self.databases.server

    @property
    def pg15(self) -> LocalCluster:
        """PostgreSQL 15, with a TCP port and a socket folder."""
        cluster: LocalCluster = self.request.getfixturevalue("pg15_cluster")
        return cluster


@pytest.fixture
def host_env(
    request: pytest.FixtureRequest,
    host_databases: HostDatabases,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> HostEnv:
    """The environment host configurations are built in."""
    return HostEnv(request, host_databases, monkeypatch, tmp_path)


Builder = Callable[[HostEnv], AbstractAsyncContextManager[HostTarget]]


@attrs.frozen
class HostConfig:
    """A host configuration: how to build it and what it must do.

    ``checks`` names the contract checks that run (None: all). ``refusal`` is the
    setting a ``ConfigError`` at ``open()`` must name for refusing to be accepted;
    None means the configuration must work.
    """

    name: str
    build: Builder
    checks: frozenset[str] | None = None
    refusal: str | None = None


def utf8_client(server: PgServer) -> PgServer:
    """The same database, seen by a client that speaks UTF-8 whatever the server's
    encoding (as psql in a UTF-8 terminal, or the TypeScript runtime)."""
    return PgServer(dsn=make_conninfo(server.dsn, client_encoding="UTF8"), source=server.source)


@contextlib.contextmanager
def schema_with_tables(
    server: PgServer, messages: str = "chat_messages", sessions: str = "chat_sessions"
) -> Generator[tuple[PgSchema, dict[str, str]]]:
    """A schema of its own holding the reference tables with these names, dropped
    with everything in it afterwards."""
    schema = PgSchema(server, f"cp_host_{secrets.token_hex(6)}")
    with server.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema.name)))
    try:
        yield schema, schema.create_reference_tables(messages=messages, sessions=sessions)
    finally:
        with server.connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema.name)))


def owned_pool(server: PgServer, tables: Mapping[str, str], **options: Any) -> AdapterFactory:
    """Adapters owning their pool on ``server`` (``options`` go to the adapter)."""
    given = dict(tables)
    return lambda: PostgresPersistence(conninfo=server.dsn, tables=given, max_size=4, **options)


def from_config(config: str | Mapping[str, Any]) -> AdapterFactory:
    """Adapters from ``create_adapter``: a URL or a mapping, as a user writes it."""
    return lambda: create_adapter(config)


# --- databases with server-side defaults ---------------------------------------------


def database_default(key: str, create: str = "", **settings: str) -> Builder:
    """A database made with ``create`` and these defaults; the adapter owns its pool."""

    @contextlib.asynccontextmanager
    async def build(env: HostEnv) -> AsyncGenerator[HostTarget]:
        server = env.databases.get(key, create, settings)
        with schema_with_tables(server) as (schema, tables):
            yield HostTarget(
                owned_pool(server, tables), utf8_client(server), schema.qualified("chat_messages")
            )

    return build


def encoding(name: str) -> str:
    """``CREATE DATABASE`` options for a database in encoding ``name``."""
    return f"ENCODING '{name}' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"


def conninfo_option(**params: str) -> Builder:
    """The test server's database with extra libpq parameters in the conninfo."""

    @contextlib.asynccontextmanager
    async def build(env: HostEnv) -> AsyncGenerator[HostTarget]:
        server = PgServer(dsn=make_conninfo(env.pg16.dsn, **params), source=env.pg16.source)
        with schema_with_tables(env.pg16) as (schema, tables):
            yield HostTarget(
                owned_pool(server, tables), utf8_client(env.pg16), schema.qualified("chat_messages")
            )

    return build


# --- host pools -----------------------------------------------------------------------


def host_pool(database: str | None = None, **connect_kwargs: Any) -> Builder:
    """A host-owned pool whose connections are made with ``connect_kwargs``
    (``row_factory``, ``cursor_factory``, ...), on the test server or on the
    ``database`` made by ``database_default``."""

    @contextlib.asynccontextmanager
    async def build(env: HostEnv) -> AsyncGenerator[HostTarget]:
        server = env.pg16 if database is None else env.databases.get(database)
        with schema_with_tables(server) as (schema, tables):
            async with _open_pool(server.dsn, connect_kwargs) as pool:

                def factory() -> PersistenceAdapter:
                    return PostgresPersistence(pool=pool, tables=tables)

                yield HostTarget(factory, utf8_client(server), schema.qualified("chat_messages"))

    return build


@contextlib.asynccontextmanager
async def pgbouncer_host_pool(env: HostEnv) -> AsyncGenerator[HostTarget]:
    """A host-owned pool through PgBouncer (transaction mode), as a host behind it
    makes one: no prepared statements; the adapter told ``pgbouncer=True``."""
    bouncer: PgBouncer = env.request.getfixturevalue("pgbouncer")
    with schema_with_tables(bouncer.target) as (schema, tables):
        async with _open_pool(bouncer.server.dsn, {"prepare_threshold": None}) as pool:

            def factory() -> PersistenceAdapter:
                return PostgresPersistence(pool=pool, tables=tables, pgbouncer=True)

            yield HostTarget(
                factory, utf8_client(bouncer.target), schema.qualified("chat_messages")
            )


@contextlib.asynccontextmanager
async def _open_pool(
    conninfo: str, connect_kwargs: dict[str, Any]
) -> AsyncGenerator[AsyncConnectionPool[Any]]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo, min_size=1, max_size=4, kwargs=connect_kwargs, open=False
    )
    await pool.open(wait=True, timeout=30)
    try:
        yield pool
    finally:
        await pool.close()


# --- service files and PGOPTIONS ------------------------------------------------------


def _search_path_target(env: HostEnv, conninfo: str, schema: PgSchema) -> HostTarget:
    """Adapters on unqualified (default) table names that only the search path finds."""
    config = {"backend": "postgres", "conninfo": conninfo, "max_size": 4}
    return HostTarget(from_config(config), utf8_client(env.pg16), schema.qualified("chat_messages"))


def service_file(*, search_path: bool, url: bool) -> Builder:
    """``service=chat_svc`` from a ``PGSERVICEFILE`` naming the test server; with
    ``search_path`` the service's ``options`` set the search path and the adapter
    uses unqualified table names. Given as ``postgresql://?service=chat_svc`` when
    ``url``, else as a keyword conninfo."""

    @contextlib.asynccontextmanager
    async def build(env: HostEnv) -> AsyncGenerator[HostTarget]:
        with schema_with_tables(env.pg16) as (schema, tables):
            given = conninfo_to_dict(env.pg16.dsn)
            lines = ["[chat_svc]", *(f"{k}={v}" for k, v in given.items() if v is not None)]
            if search_path:
                lines.append(f"options=-c search_path={schema.name}")
            service_file = env.tmp_path / "pg_service.conf"
            service_file.write_text("\n".join(lines) + "\n")
            env.monkeypatch.setenv("PGSERVICEFILE", str(service_file))
            config: str | dict[str, Any]
            if url:
                config = "postgresql://?service=chat_svc&max_size=4"
                if not search_path:
                    config += _table_params(tables)
            else:
                config = {"backend": "postgres", "conninfo": "service=chat_svc", "max_size": 4}
                if not search_path:
                    config["tables"] = tables
            yield HostTarget(
                from_config(config), utf8_client(env.pg16), schema.qualified("chat_messages")
            )

    return build


def _table_params(tables: Mapping[str, str]) -> str:
    return f"&messages_table={tables['messages']}&sessions_table={tables['sessions']}"


@contextlib.asynccontextmanager
async def pgoptions_search_path(env: HostEnv) -> AsyncGenerator[HostTarget]:
    """The search path from the ``PGOPTIONS`` environment variable."""
    with schema_with_tables(env.pg16) as (schema, _):
        env.monkeypatch.setenv("PGOPTIONS", f"-c search_path={schema.name}")
        yield _search_path_target(env, env.pg16.dsn, schema)


@contextlib.asynccontextmanager
async def conninfo_options_search_path(env: HostEnv) -> AsyncGenerator[HostTarget]:
    """The search path from ``options`` in the conninfo itself."""
    with schema_with_tables(env.pg16) as (schema, _):
        conninfo = make_conninfo(env.pg16.dsn, options=f"-c search_path={schema.name}")
        yield _search_path_target(env, conninfo, schema)


# --- URL forms (on PostgreSQL 15: TCP and a socket folder) ----------------------------


def url_form(make: Callable[[LocalCluster], str]) -> Builder:
    """A connection string in one of libpq's forms, given to ``create_adapter`` as a
    URL (``postgres``/``postgresql`` schemes) or as a mapping's ``conninfo``."""

    @contextlib.asynccontextmanager
    async def build(env: HostEnv) -> AsyncGenerator[HostTarget]:
        cluster = env.pg15
        with schema_with_tables(cluster.server) as (schema, tables):
            conninfo = make(cluster)
            if conninfo.startswith(("postgres://", "postgresql://", "postgresql:", "postgres:")):
                joiner = "&" if "?" in conninfo else "?"
                config: str | dict[str, Any] = f"{conninfo}{joiner}max_size=4" + _table_params(
                    tables
                )
            else:
                config = {
                    "backend": "postgres",
                    "conninfo": conninfo,
                    "tables": tables,
                    "max_size": 4,
                }
            yield HostTarget(
                from_config(config),
                utf8_client(cluster.server),
                schema.qualified("chat_messages"),
            )

    return build


@contextlib.asynccontextmanager
async def url_options_search_path(env: HostEnv) -> AsyncGenerator[HostTarget]:
    """``?options=-c search_path=...`` (percent-encoded) in a URL, unqualified tables."""
    cluster = env.pg15
    with schema_with_tables(cluster.server) as (schema, _):
        options = quote(f"-c search_path={schema.name}", safe="")
        url = f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres?options={options}"
        yield HostTarget(
            from_config(f"{url}&max_size=4"),
            utf8_client(cluster.server),
            schema.qualified("chat_messages"),
        )


# --- table names ----------------------------------------------------------------------


def table_names(messages: str, sessions: str) -> Builder:
    """Reference tables with these (unusual) names, in a schema of their own."""

    @contextlib.asynccontextmanager
    async def build(env: HostEnv) -> AsyncGenerator[HostTarget]:
        with schema_with_tables(env.pg16, messages, sessions) as (schema, tables):
            yield HostTarget(
                owned_pool(env.pg16, tables), utf8_client(env.pg16), schema.qualified(messages)
            )

    return build
