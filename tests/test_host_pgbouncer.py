"""The whole contract suite through a real PgBouncer in transaction pool mode
(Debian's ``pgbouncer``, in front of PostgreSQL 16), with the ``pgbouncer`` option
given both ways: the mapping form and the URL query parameter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, LiteralString

import psycopg
import pytest

from chat_persistence import create_adapter
from chat_persistence_contract import AdapterFactory, arun_contract, ordered_checks
from fix_hosts import FactoryContract, PgBouncer
from fix_pg import PgSchema, make_schema


@pytest.fixture(scope="module")
def bouncer_tables(pgbouncer: PgBouncer) -> Iterator[tuple[PgSchema, dict[str, str]]]:
    """Reference tables in a schema of their own, made on the server directly
    (DDL is the host's business, not PgBouncer's)."""
    for schema in make_schema(pgbouncer.target):
        yield schema, schema.create_reference_tables()


def _admin(pgbouncer: PgBouncer, command: LiteralString) -> list[dict[str, Any]]:
    # The admin console speaks only the simple query protocol.
    with psycopg.connect(pgbouncer.admin.dsn, autocommit=True) as conn:
        cursor = psycopg.ClientCursor(conn)
        cursor.execute(command)
        names = [c.name for c in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _transactions_through(pgbouncer: PgBouncer) -> int:
    rows = _admin(pgbouncer, "SHOW STATS")
    return sum(int(r["total_xact_count"]) for r in rows if r["database"] != "pgbouncer")


class TestContractThroughPgBouncer(FactoryContract):
    """Every contract check, through PgBouncer, configured with the mapping form."""

    @pytest.fixture
    def contract_factory(
        self, pgbouncer: PgBouncer, bouncer_tables: tuple[PgSchema, dict[str, str]]
    ) -> AdapterFactory:
        config = {
            "backend": "postgres",
            "conninfo": pgbouncer.server.dsn,
            "tables": bouncer_tables[1],
            "pgbouncer": True,
            "max_size": 4,
        }
        return lambda: create_adapter(config)


async def test_contract_through_pgbouncer_from_a_url(
    pgbouncer: PgBouncer, bouncer_tables: tuple[PgSchema, dict[str, str]]
) -> None:
    tables = bouncer_tables[1]
    url = (
        f"{pgbouncer.server.dsn}?pgbouncer=true&max_size=4"
        f"&messages_table={tables['messages']}&sessions_table={tables['sessions']}"
    )
    before = _transactions_through(pgbouncer)
    # The class above runs the (slow, randomized) stateful check through PgBouncer.
    report = await arun_contract(url, only=[c.name for c in ordered_checks() if not c.stateful])
    assert report.passed, report.format()
    assert _transactions_through(pgbouncer) > before  # it really went through PgBouncer


def test_pgbouncer_pools_in_transaction_mode(pgbouncer: PgBouncer) -> None:
    with psycopg.connect(pgbouncer.server.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    pools = _admin(pgbouncer, "SHOW POOLS")
    modes = {r["database"]: r["pool_mode"] for r in pools}
    assert modes[pgbouncer.dbname] == "transaction", pools
