"""Fail fast (issue 10): an unreachable server, a socket folder that does not
exist and PgBouncer refusing our startup options fail ``open()`` in seconds with
the reason, against real sockets, a real PostgreSQL and a real PgBouncer."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import chat_persistence
from chat_persistence import ConfigError, StorageUnavailableError
from chat_persistence_postgres import PostgresPersistence
from fix_hosts import PgBouncer
from fix_pg import PgSchema

SECRET = "hunter2"
# The default options (pool_timeout=30) used to wait all of it.
FAST = 10.0


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def missing_socket_folder() -> str:
    return str(Path(tempfile.gettempdir()) / "chat-persistence-no-such-socket-folder")


async def open_fails(url: str) -> tuple[BaseException, float]:
    adapter = chat_persistence.create_adapter(url)
    started = time.monotonic()
    with pytest.raises((StorageUnavailableError, ConfigError)) as caught:
        await adapter.open()
    return caught.value, time.monotonic() - started


async def test_a_refused_connection_fails_open_at_once_with_libpqs_reason(
    closed_port: int,
) -> None:
    err, took = await open_fails(f"postgresql://app:{SECRET}@127.0.0.1:{closed_port}/chat")
    assert isinstance(err, StorageUnavailableError)
    assert took < FAST
    assert "Connection refused" in str(err)
    assert f"port {closed_port}" in str(err)
    assert "Is the server running" in str(err)  # libpq's hint
    assert SECRET not in str(err)


async def test_a_socket_folder_that_does_not_exist_fails_open_at_once() -> None:
    folder = missing_socket_folder()
    err, took = await open_fails(f"postgresql:///chat?host={folder}&password={SECRET}")
    assert isinstance(err, StorageUnavailableError)
    assert took < FAST
    assert "No such file or directory" in str(err)
    assert "Is the server running locally" in str(err)
    assert folder in str(err)
    assert SECRET not in str(err)


async def test_connect_timeout_bounds_the_wait_for_a_server_that_never_answers() -> None:
    # A listening socket whose backlog holds our connection but never answers it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        err, took = await open_fails(f"postgresql://app@127.0.0.1:{port}/chat?connect_timeout=2")
    assert isinstance(err, StorageUnavailableError)
    assert 1.5 < took < FAST
    assert "connect_timeout=2" in str(err) or "timeout" in str(err).lower()


def test_connect_timeout_is_an_option_checked_when_built() -> None:
    assert PostgresPersistence(conninfo="dbname=x").options.connect_timeout == 5.0
    url = "postgresql://app@db/chat?connect_timeout=3.5"
    adapter = chat_persistence.create_adapter(url)
    assert isinstance(adapter, PostgresPersistence)
    assert adapter.options.connect_timeout == 3.5
    assert "connect_timeout" not in (adapter.options.conninfo or "")
    with pytest.raises(ConfigError) as caught:
        chat_persistence.create_adapter("postgresql://app@db/chat?connect_timeout=0")
    assert caught.value.option == "connect_timeout"


async def test_the_server_works_with_a_short_connect_timeout(pg_schema: PgSchema) -> None:
    tables = pg_schema.create_reference_tables()
    async with PostgresPersistence(
        conninfo=pg_schema.dsn, tables=tables, connect_timeout=1
    ) as adapter:
        await adapter.validate_schema()


async def test_pgbouncer_without_the_option_names_it_at_once(pgbouncer: PgBouncer) -> None:
    err, took = await open_fails(pgbouncer.server.dsn)
    assert isinstance(err, ConfigError)
    assert err.option == "pgbouncer"
    assert "pgbouncer=true" in str(err)
    assert "unsupported startup parameter" in str(err)
    assert took < FAST


def test_the_cli_prints_one_line_for_an_unreachable_server(closed_port: int) -> None:
    script = Path(sys.executable).with_name("chat-persistence")
    for url in (
        f"postgresql://app:{SECRET}@127.0.0.1:{closed_port}/chat",
        f"postgresql:///chat?host={missing_socket_folder()}",
    ):
        started = time.monotonic()
        done = subprocess.run(
            [str(script), "check", url], capture_output=True, text=True, timeout=60, check=False
        )
        assert time.monotonic() - started < FAST + 5
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("Error: postgres storage is unavailable: cannot connect")
        assert "Traceback" not in done.stderr
        assert SECRET not in done.stderr + done.stdout
