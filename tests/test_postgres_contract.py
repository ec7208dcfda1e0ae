"""The shared contract suite against PostgresPersistence on PostgreSQL 16 and 18,
both started by this test run, and through the ``chat-persistence contract``
command against tables in a non-default schema that already hold other data."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from psycopg import sql

from chat_persistence import Capability
from chat_persistence_contract import PersistenceAdapterContract, arun_contract
from chat_persistence_postgres import PostgresPersistence
from fix_pg import PgSchema, PgServer, make_schema


def _schema_with_tables(server: PgServer) -> Iterator[tuple[PgSchema, dict[str, str]]]:
    for schema in make_schema(server):
        yield schema, schema.create_reference_tables()


@pytest.fixture(scope="module")
def contract_pg16(pg16: PgServer) -> Iterator[tuple[PgSchema, dict[str, str]]]:
    yield from _schema_with_tables(pg16)


@pytest.fixture(scope="module")
def contract_pg18(pg18: PgServer) -> Iterator[tuple[PgSchema, dict[str, str]]]:
    yield from _schema_with_tables(pg18)


POSTGRES_CAPABILITIES = frozenset({Capability.DURABLE, Capability.SCHEMA_VALIDATION})
"""What the Postgres backend must declare: the contract fails it if it drops one."""


class _PostgresContract(PersistenceAdapterContract):
    target: tuple[PgSchema, dict[str, str]]
    required_capabilities = POSTGRES_CAPABILITIES

    @pytest.fixture
    def reopen_adapter(self) -> Callable[[], PostgresPersistence]:
        schema, tables = self.target
        return lambda: PostgresPersistence(conninfo=schema.dsn, tables=tables, max_size=4)

    @pytest.fixture
    async def adapter(
        self, reopen_adapter: Callable[[], PostgresPersistence]
    ) -> AsyncIterator[PostgresPersistence]:
        async with reopen_adapter() as adapter:
            yield adapter


class TestPostgres16Contract(_PostgresContract):
    """The contract on PostgreSQL 16."""

    @pytest.fixture(autouse=True)
    def _target(self, contract_pg16: tuple[PgSchema, dict[str, str]]) -> None:
        self.target = contract_pg16


class TestPostgres18Contract(_PostgresContract):
    """The contract on PostgreSQL 18."""

    @pytest.fixture(autouse=True)
    def _target(self, contract_pg18: tuple[PgSchema, dict[str, str]]) -> None:
        self.target = contract_pg18


def _fill_with_other_data(schema: PgSchema) -> str:
    """Rows of another application's threads; returns a fingerprint of the tables."""
    m, s = schema.qualified("m"), schema.qualified("s")
    with schema.server.connect() as conn:
        conn.execute(
            sql.SQL(
                """
                INSERT INTO {m} (thread_id, message_id, session_id, role, created_at, parts_json)
                SELECT 'other-' || (g % 7), 'msg-' || g, 'sess-' || (g % 5), 'user',
                       timestamptz '2024-01-01' + g * interval '1 minute',
                       jsonb_build_array(jsonb_build_object('type', 'text', 'text', 'n' || g))
                FROM generate_series(1, 200) g;
                INSERT INTO {s} (session_id, thread_id, sdk_version, archived_at)
                SELECT 'sess-' || g, 'other-' || g, 'ts/1',
                       CASE WHEN g % 2 = 0 THEN now() END
                FROM generate_series(0, 4) g;
                """
            ).format(m=m, s=s)
        )
    return _fingerprint(schema)


def _fingerprint(schema: PgSchema) -> str:
    with schema.server.connect() as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {m} t)"
                " || (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {s} t)"
            ).format(m=schema.qualified("m"), s=schema.qualified("s"))
        ).fetchone()
    assert row is not None
    assert row[0]
    return row[0]


@pytest.fixture
def busy_schema(pg16: PgServer) -> Iterator[tuple[PgSchema, str, str]]:
    """Tables ``<schema>.m`` / ``<schema>.s`` outside the search path, holding other data,
    and the URL that points the backend at them."""
    for schema in make_schema(pg16):
        tables = schema.create_reference_tables(messages="m", sessions="s")
        before = _fill_with_other_data(schema)
        separator = "&" if "?" in schema.dsn else "?"
        url = (
            f"{schema.dsn}{separator}messages_table={tables['messages']}"
            f"&sessions_table={tables['sessions']}"
        )
        yield schema, url, before


async def test_contract_url_on_a_non_default_schema_with_other_data(
    busy_schema: tuple[PgSchema, str, str],
) -> None:
    schema, url, before = busy_schema
    report = await arun_contract(url, required_capabilities=POSTGRES_CAPABILITIES)
    assert report.passed, report.format()
    assert _fingerprint(schema) == before  # the other application's rows are untouched


def test_contract_command_on_a_non_default_schema_with_other_data(
    busy_schema: tuple[PgSchema, str, str],
) -> None:
    schema, url, before = busy_schema
    done = subprocess.run(
        [sys.executable, "-m", "chat_persistence", "contract", url, "--require", "durable"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _fingerprint(schema) == before
