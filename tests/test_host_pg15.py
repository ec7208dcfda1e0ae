"""PostgreSQL 15, the oldest version the docs claim, from Debian's ``postgresql-15``:
the whole contract suite. Tests parametrized over ``pg_any`` run on it too, and
the host matrix (``test_host_matrix``) runs the URL forms on it, socket folder
included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chat_persistence_contract import AdapterFactory
from chat_persistence_postgres import PostgresPersistence
from fix_hosts import FactoryContract
from fix_pg import PgSchema, PgServer, make_schema


@pytest.fixture(scope="module")
def pg15_tables(pg15: PgServer) -> Iterator[tuple[PgSchema, dict[str, str]]]:
    for schema in make_schema(pg15):
        yield schema, schema.create_reference_tables()


def test_pg15_is_the_oldest_claimed_version(pg15: PgServer) -> None:
    with pg15.connect() as conn:
        assert conn.info.server_version // 10000 == 15


class TestPostgres15Contract(FactoryContract):
    """The contract on PostgreSQL 15 over TCP, the adapter owning its pool."""

    @pytest.fixture
    def contract_factory(self, pg15_tables: tuple[PgSchema, dict[str, str]]) -> AdapterFactory:
        schema, tables = pg15_tables
        return lambda: PostgresPersistence(conninfo=schema.dsn, tables=tables, max_size=4)
