"""Configuring the postgres backend: URLs, mappings, the plugin's cheap import, and
how the test run picks its PostgreSQL 16."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from chat_persistence import ConfigError, create_adapter
from chat_persistence_postgres import PostgresOptions, PostgresPersistence
from chat_persistence_postgres._plugin import postgres_url_options
from fix_pg import DSN_ENV, PgSchema, PgServer, choose_pg16_source, docker_engine_answers


def test_url_options_take_ours_and_keep_every_libpq_parameter() -> None:
    url = (
        "postgresql://app:s%40cret@db.example:6432/chat?sslmode=require"
        "&messages_table=app.m&application_name=my%20app&sessions_table=app.s"
        "&pgbouncer=true&max_size=20&min_size=0&pool_timeout=2.5&sdk_version=rt%2F1"
        "&options=-c%20search_path%3Dapp&strict_schema=off&prepare_threshold=none"
    )
    assert postgres_url_options(url) == {
        "conninfo": "postgresql://app:s%40cret@db.example:6432/chat?sslmode=require"
        "&application_name=my%20app&options=-c%20search_path%3Dapp",
        "tables": {"messages": "app.m", "sessions": "app.s"},
        # Strings, as in the URL: the registry converts them to the options' types.
        "pgbouncer": "true",
        "max_size": "20",
        "min_size": "0",
        "pool_timeout": "2.5",
        "sdk_version": "rt/1",
        "strict_schema": "off",
        "prepare_threshold": None,
    }
    assert postgres_url_options("postgres://h/db") == {"conninfo": "postgres://h/db"}
    adapter = create_adapter(url)
    assert isinstance(adapter, PostgresPersistence)
    options = adapter.options
    assert (options.pgbouncer, options.max_size, options.min_size) == (True, 20, 0)
    assert (options.pool_timeout, options.strict_schema, options.prepare_threshold) == (
        2.5,
        False,
        None,
    )
    assert adapter.sdk_version == "rt/1"


@pytest.mark.parametrize(
    "query",
    ["pgbouncer=maybe", "max_size=ten", "pool_timeout=soon", "messages_table=a&messages_table=b"],
)
def test_bad_url_parameters_are_config_errors(query: str) -> None:
    with pytest.raises(ConfigError) as err:
        create_adapter(f"postgresql://h/db?{query}")
    assert err.value.backend == "postgres"
    assert err.value.option is not None
    assert err.value.option in query


def test_create_adapter_from_url_and_mapping() -> None:
    url = "postgresql://u@h/db?messages_table=app.m&sessions_table=s&sdk_version=x%2F1"
    adapter = create_adapter(url)
    assert isinstance(adapter, PostgresPersistence)
    assert str(adapter.tables.messages) == "app.m"
    assert str(adapter.tables.sessions) == "s"
    assert adapter.sdk_version == "x/1"
    assert not adapter.is_open
    mapped = create_adapter(
        {"backend": "postgres", "conninfo": "dbname=chat", "tables": {"sessions": "a.s"},
         "pgbouncer": True}
    )  # fmt: skip
    assert isinstance(mapped, PostgresPersistence)
    assert str(mapped.tables.messages) == "chat_messages"
    assert mapped.prepare_threshold is None
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool("dbname=chat", open=False)
    hosted = create_adapter({"backend": "postgres", "pool": pool})
    assert isinstance(hosted, PostgresPersistence)
    assert hosted._host_pool is pool
    with pytest.raises(ConfigError, match="must be a psycopg_pool"):
        create_adapter({"backend": "postgres", "pool": "not a pool"})
    with pytest.raises(ConfigError, match="unknown option 'table'"):
        create_adapter({"backend": "postgres", "conninfo": "dbname=x", "table": "m"})
    with pytest.raises(ConfigError, match="exactly one of"):
        create_adapter({"backend": "postgres"})
    with pytest.raises(ConfigError, match="pool sizes"):
        PostgresPersistence(conninfo="dbname=x", min_size=5, max_size=2)


async def test_libpq_parameters_reach_the_connection(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    separator = "&" if "?" in pg_schema.dsn else "?"
    url = (
        f"{pg_schema.dsn}{separator}application_name=chat-test"
        f"&messages_table={pg_tables['messages']}&sessions_table={pg_tables['sessions']}"
        f"&options=-c%20search_path%3D{pg_schema.name}&max_size=2"
    )
    adapter = create_adapter(url)
    assert isinstance(adapter, PostgresPersistence)
    async with adapter:
        await adapter.validate_schema()
        assert adapter._pool is not None
        async with adapter._pool.connection() as conn:
            cur = await conn.execute("SELECT current_setting('application_name'), current_schema()")
            assert await cur.fetchone() == ("chat-test", pg_schema.name)


def test_memory_never_imports_psycopg() -> None:
    code = (
        "import sys\n"
        "from chat_persistence import available_backends, create_adapter\n"
        "create_adapter('memory://')\n"
        "names = [b.name for b in available_backends()]\n"
        "assert 'postgres' in names, names\n"
        "heavy = ('psycopg', 'chat_persistence_postgres._adapter')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(heavy))\n"
        "assert not loaded, loaded\n"
        "create_adapter('postgresql://u@h/db')\n"
        "assert 'psycopg' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_pg16_source_selection() -> None:
    asked: list[bool] = []

    def docker(answer: bool) -> object:
        def probe() -> bool:
            asked.append(answer)
            return answer

        return probe

    assert choose_pg16_source({DSN_ENV: "postgresql://x/y"}, docker(True)) == "dsn"  # type: ignore[arg-type]
    assert asked == []  # a DSN wins without asking Docker
    assert choose_pg16_source({}, docker(True)) == "testcontainers"  # type: ignore[arg-type]
    assert choose_pg16_source({DSN_ENV: "  "}, docker(False)) == "pgserver"  # type: ignore[arg-type]
    assert asked == [True, False]


@pytest.fixture
def fake_docker_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A unix socket answering Docker's ``GET /_ping`` like an engine does."""
    path = tmp_path_factory.mktemp("docker") / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    worker = threading.Thread(target=answer, daemon=True)
    worker.start()
    try:
        yield path
    finally:
        worker.join(timeout=5)
        server.close()


def test_docker_probe(fake_docker_socket: Path, tmp_path: Path) -> None:
    assert docker_engine_answers({"DOCKER_HOST": f"unix://{fake_docker_socket}"})
    assert not docker_engine_answers({"DOCKER_HOST": f"unix://{tmp_path / 'none.sock'}"})
    closed_port = socket.socket()
    closed_port.bind(("127.0.0.1", 0))
    port = closed_port.getsockname()[1]
    closed_port.close()
    assert not docker_engine_answers({"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}, timeout=1)


def test_the_servers_are_the_versions_we_promise(pg16: PgServer, pg18: PgServer) -> None:
    with pg18.connect() as conn:
        assert conn.info.server_version // 10000 == 18
    with pg16.connect() as conn:
        version = conn.info.server_version // 10000
    if pg16.source != "dsn":  # a DSN given by hand may be any version
        assert version == 16
    assert isinstance(psycopg.__version__, str)


@pytest.mark.parametrize("bad", ["", "v\x00", "v\ud800", 5])
def test_a_bad_sdk_version_is_refused_as_core_refuses_it(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        PostgresPersistence(conninfo="dbname=x", sdk_version=bad)
    assert err.value.option == "sdk_version"
    with pytest.raises(ConfigError) as err:
        create_adapter({"backend": "postgres", "conninfo": "dbname=x", "sdk_version": bad})
    assert err.value.option == "sdk_version"


def test_options_are_one_object_kept_by_the_adapter() -> None:
    options = PostgresOptions(conninfo="dbname=x", max_size=3, pgbouncer=True)
    adapter = PostgresPersistence(options)
    assert adapter.options is options
    assert adapter.prepare_threshold is None
    assert PostgresPersistence(conninfo="dbname=x", max_size=3, pgbouncer=True).options == options
    with pytest.raises(ConfigError, match="unknown option 'max_sise'") as err:
        PostgresPersistence(conninfo="dbname=x", max_sise=3)
    assert err.value.option == "max_sise"


def test_a_misspelled_url_parameter_names_the_nearest() -> None:
    with pytest.raises(ConfigError, match="messages_table") as err:
        create_adapter("postgresql://h/db?messages_tabel=foo")
    assert err.value.option == "messages_tabel"
    with pytest.raises(ConfigError, match="sslmode"):
        create_adapter("postgresql://h/db?sslmdoe=require")
    adapter = create_adapter("postgresql://h/db?sslmode=require&ssl=true&max_size=3")
    assert isinstance(adapter, PostgresPersistence)
    assert adapter.options.max_size == 3


@pytest.mark.parametrize(
    ("url", "option", "fragment"),
    [
        ("postgresql://", "conninfo", "names no server and no database"),
        ("postgres://", "conninfo", "names no server and no database"),
        ("postgresql://app@db:notaport/chat", "port", "port must be a number"),
        ("postgresql://db/chat?port=5432,x", "port", "port must be a number"),
        ("postgresql://%zz:hunter2@db/chat", "conninfo", "malformed URL"),
    ],
)
def test_a_malformed_url_is_a_config_error_from_create_adapter(
    url: str, option: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        create_adapter(url)
    assert caught.value.option == option
    assert fragment in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["postgresql:///chat?host=/run/pg", "postgresql://?host=/run/pg&dbname=chat", "postgres://db"],
)
def test_urls_naming_a_socket_folder_or_a_host_are_kept_as_given(url: str) -> None:
    adapter = create_adapter(url)
    assert isinstance(adapter, PostgresPersistence)
    assert adapter.options.conninfo == url
