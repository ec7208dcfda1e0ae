"""The ``distributed`` option (Citus) on plain PostgreSQL 16 and 18: its statements
pass the whole contract suite, keep one thread's writers in order, take the thread
lock the plain statements take, and write all or nothing; the option is read from
configuration or detected. Also the statements both modes share, rewritten for
Citus: ``delete_thread`` as two deletes in one transaction, and session times
moved on with immutable arithmetic whatever the session's time zone.

Citus itself is not installed here (docs/scaling.md says how the statements were
checked on a real cluster)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from chat_persistence import ConfigError, Message, Session, TextPart, create_adapter
from chat_persistence_contract import PersistenceAdapterContract
from chat_persistence_postgres import PostgresOptions, PostgresPersistence
from fix_faults import app_dsn, new_app
from fix_pg import PgSchema, PgServer, make_schema
from test_reliability_ordering import (
    WRITERS,
    HolderFactory,
    race_writers,
)


def text(message_id: str) -> Message:
    return Message(message_id, "user", [TextPart(message_id)])


# -- the contract, with the distributed statements ------------------------------


def _schema_with_tables(server: PgServer) -> Iterator[tuple[PgSchema, dict[str, str]]]:
    for schema in make_schema(server):
        yield schema, schema.create_reference_tables()


@pytest.fixture(scope="module")
def distributed_pg16(pg16: PgServer) -> Iterator[tuple[PgSchema, dict[str, str]]]:
    yield from _schema_with_tables(pg16)


@pytest.fixture(scope="module")
def distributed_pg18(pg18: PgServer) -> Iterator[tuple[PgSchema, dict[str, str]]]:
    yield from _schema_with_tables(pg18)


class _DistributedContract(PersistenceAdapterContract):
    target: tuple[PgSchema, dict[str, str]]

    @pytest.fixture
    def reopen_adapter(self) -> Callable[[], PostgresPersistence]:
        schema, tables = self.target
        return lambda: PostgresPersistence(
            conninfo=schema.dsn, tables=tables, max_size=4, distributed=True
        )

    @pytest.fixture
    async def adapter(
        self, reopen_adapter: Callable[[], PostgresPersistence]
    ) -> AsyncIterator[PostgresPersistence]:
        async with reopen_adapter() as adapter:
            assert adapter.distributed
            yield adapter


class TestDistributedPostgres16Contract(_DistributedContract):
    """The contract on PostgreSQL 16, with ``distributed=True``."""

    @pytest.fixture(autouse=True)
    def _target(self, distributed_pg16: tuple[PgSchema, dict[str, str]]) -> None:
        self.target = distributed_pg16


class TestDistributedPostgres18Contract(_DistributedContract):
    """The contract on PostgreSQL 18, with ``distributed=True``."""

    @pytest.fixture(autouse=True)
    def _target(self, distributed_pg18: tuple[PgSchema, dict[str, str]]) -> None:
        self.target = distributed_pg18


# -- the option -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("false", False), ("auto", None), ("AUTO", None), ("1", True)],
)
def test_the_option_in_a_url(value: str, expected: bool | None) -> None:
    adapter = create_adapter(f"postgresql://u@h/db?distributed={value}&application_name=x")
    assert isinstance(adapter, PostgresPersistence)
    assert adapter.options.distributed is expected
    assert adapter.options.conninfo == "postgresql://u@h/db?application_name=x"


@pytest.mark.parametrize("value", ["maybe", "2", ""])
def test_a_bad_value_in_a_url_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        create_adapter(f"postgresql://u@h/db?distributed={value}")
    assert err.value.option == "distributed"
    assert "distributed" in str(err.value)


@pytest.mark.parametrize("value", ["yes", 1, 0.0])
def test_a_bad_value_in_code_is_a_config_error(value: object) -> None:
    with pytest.raises(ConfigError) as err:
        PostgresOptions(conninfo="postgresql://u@h/db", distributed=value)  # pyright: ignore[reportArgumentType]
    assert err.value.option == "distributed"
    assert "True or False" in str(err.value)


async def test_plain_postgres_is_detected_as_not_distributed(
    pg_any: PgServer, caplog: pytest.LogCaptureFixture
) -> None:
    for schema in make_schema(pg_any):
        tables = schema.create_reference_tables()
        adapter = PostgresPersistence(conninfo=schema.dsn, tables=tables, max_size=1)
        assert not adapter.distributed  # not configured, not yet found
        async with adapter:
            assert adapter._connections.distributed is False  # found when it opened
            assert [m.id for m in await adapter.save_messages("t", [text("a")])] == ["a"]
        assert "citus" not in caplog.text


async def test_a_host_pool_is_asked_at_open_and_given_back_as_lent(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    async with (
        AsyncConnectionPool(pg_schema.dsn, min_size=1, max_size=1, open=False) as pool,
        PostgresPersistence(pool=pool, tables=pg_tables) as adapter,
    ):
        assert adapter._connections.distributed is False
        async with pool.connection() as conn:
            assert not conn.autocommit  # psycopg's default, as lent
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        await adapter.save_messages("t", [text("a")])


@pytest.mark.parametrize(("configured", "statements"), [(True, 0), (False, 0), (None, 1)])
async def test_only_an_unconfigured_adapter_asks_the_server(
    configured: bool | None, statements: int, pg18: PgServer
) -> None:
    """Detection is one statement when the adapter opens; a configured value, none."""
    assert pg18.log is not None
    for schema in make_schema(pg18):
        tables = schema.create_reference_tables()
        log_start = pg18.log.stat().st_size
        logged = make_conninfo(schema.dsn, options="-c log_statement=all")
        async with PostgresPersistence(
            conninfo=logged, tables=tables, max_size=1, distributed=configured
        ) as adapter:
            assert adapter.distributed is (configured is True)
            pool = adapter._pool
            assert pool is not None
            async with pool.connection() as conn:
                pid = conn.info.backend_pid
        with pg18.log.open("rb") as log:
            log.seek(log_start)
            new = log.read().decode(errors="replace")
        found = re.findall(rf"\[{pid}\] LOG:  (?:statement|execute [^:]*): (.*)", new)
        assert len(found) == statements, found
        assert all("pg_extension" in line for line in found)


# -- order, locks and transactions ---------------------------------------------


@pytest.fixture
async def distributed(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> AsyncIterator[PostgresPersistence]:
    async with PostgresPersistence(
        conninfo=pg_schema.dsn,
        tables=pg_tables,
        min_size=WRITERS + 2,
        max_size=WRITERS + 2,
        distributed=True,
    ) as adapter:
        yield adapter


async def test_concurrent_writers_stay_in_order(
    distributed: PostgresPersistence, tally: Counter[str]
) -> None:
    await race_writers(distributed, 3)
    tally["concurrent writers to one thread (postgres, distributed)"] += WRITERS


@pytest.mark.parametrize("size", [1, 3])
async def test_a_save_waits_for_the_thread_lock_the_plain_statements_take(
    size: int, pg_schema: PgSchema, pg_tables: dict[str, str], holder_factory: HolderFactory
) -> None:
    """The routed lock is the same advisory lock: an adapter of either kind holding
    a thread makes the other wait (here a third connection holds it)."""
    app = new_app()
    holder = await holder_factory(pg_schema.dsn, app)
    async with PostgresPersistence(
        conninfo=app_dsn(pg_schema.dsn, app), tables=pg_tables, max_size=2, distributed=True
    ) as adapter:
        await holder.hold_thread("t")
        try:
            save = asyncio.create_task(
                adapter.save_messages("t", [text(f"m{i}") for i in range(size)])
            )
            await holder.wait_for(1)
            assert not save.done()
        finally:
            await holder.release()
        saved = await asyncio.wait_for(save, timeout=10)
        assert [m.id for m in saved] == [f"m{i}" for i in range(size)]


def _refuse(schema: PgSchema, table: str, event: Literal["INSERT", "DELETE"]) -> None:
    """A trigger of the host's own that fails every ``event`` on ``table``."""
    refuse = sql.Identifier(schema.name, "refuse")
    with schema.server.connect() as conn:
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'refused by the host'; END $$;"
                " CREATE TRIGGER refuse BEFORE {event} ON {t}"
                " FOR EACH ROW EXECUTE FUNCTION {f}()"
            ).format(f=refuse, event=sql.SQL(event), t=schema.qualified(table))
        )


@pytest.mark.parametrize("configured", [True, False], ids=["distributed", "plain"])
async def test_delete_thread_is_all_or_nothing(
    configured: bool, pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    """Sessions are deleted first; when the messages' delete then fails, the
    sessions are still there: the two deletes are one transaction."""
    async with PostgresPersistence(
        conninfo=pg_schema.dsn, tables=pg_tables, max_size=1, distributed=configured
    ) as adapter:
        await adapter.save_messages("t", [text("a"), text("b")])
        session = await adapter.save_session(Session("s", "t", "v"))
        _refuse(pg_schema, "chat_messages", "DELETE")
        with pytest.raises(psycopg.errors.RaiseException, match="refused by the host"):
            await adapter.delete_thread("t")
        assert await adapter.get_session("s") == session
        assert [m.id for m in await adapter.list_messages("t")] == ["a", "b"]
        # The one connection was given back clean: the adapter goes on working.
        await adapter.delete_thread("other")
        assert await adapter.list_sessions("t") == [session]


@pytest.mark.parametrize("size", [1, 2])
async def test_a_failed_distributed_save_writes_nothing_and_leaves_no_transaction(
    size: int, pg_schema: PgSchema, pg_tables: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with PostgresPersistence(
        conninfo=pg_schema.dsn, tables=pg_tables, max_size=1, distributed=True
    ) as adapter:
        await adapter.save_messages("t", [text("before")])
        _refuse(pg_schema, "chat_messages", "INSERT")
        with pytest.raises(psycopg.errors.RaiseException, match="refused by the host"):
            await adapter.save_messages("t", [text(f"m{i}") for i in range(size)])
        pool = adapter._pool
        assert pool is not None
        async with pool.connection() as conn:
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert [m.id for m in await adapter.list_messages("t")] == ["before"]
    assert "rolling back" not in caplog.text  # not left to the pool to clean up


# -- session times ----------------------------------------------------------------


@pytest.mark.parametrize("configured", [True, False], ids=["distributed", "plain"])
async def test_session_times_move_on_by_one_microsecond_in_any_time_zone(
    configured: bool, pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    """Another program left ``updated_at`` just before a daylight-saving change of
    the session's zone, a day ahead: a save sets exactly 1 us later, as
    ``updated_at + interval '1 microsecond'`` did, in UTC and in that zone."""
    ahead = datetime(2030, 3, 10, 6, 59, 59, 999999, tzinfo=UTC)  # 1:59:59 in New York
    with pg_schema.server.connect() as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (session_id, thread_id, sdk_version, updated_at)"
                " VALUES ('s', 't', 'v', %s), ('a', 't', 'v', %s)"
            ).format(pg_schema.qualified("chat_sessions")),
            [ahead, ahead],
        )
    zoned = make_conninfo(pg_schema.dsn, options="-c TimeZone=America/New_York")
    async with (
        AsyncConnectionPool(zoned, min_size=1, max_size=1, open=False) as pool,
        PostgresPersistence(pool=pool, tables=pg_tables, distributed=configured) as adapter,
    ):
        saved = await adapter.save_session(Session("s", "t", "v2"))
        assert saved.updated_at == ahead + timedelta(microseconds=1)
        again = await adapter.save_session(
            Session("s", "t", "v3"), expected_updated_at=saved.updated_at
        )
        assert again.updated_at == ahead + timedelta(microseconds=2)
        archived = await adapter.archive_session("a", thread_id="t")
        assert archived.updated_at == ahead + timedelta(microseconds=1)
        assert archived.archived_at is not None
        assert archived.archived_at < ahead


# -- what Citus refuses, checked by PostgreSQL's own rule for index expressions --

_PROBE_COLUMNS = {
    "updated_at": "timestamptz",
    "archived_at": "timestamptz",
    "created_at": "timestamptz",
    "thread_id": "text",
    "sdk_version": "text",
    "state_json": "jsonb",
    "metadata_json": "jsonb",
    "role": "text",
    "session_id": "text",
    "parts_json": "jsonb",
}


def _set_expressions(statement: str, *, after: str) -> list[str]:
    """The expressions of the SET list that follows ``after``, split at top-level commas."""
    tail = statement.split(after, 1)[1].split("SET", 1)[1]
    end = min(i for i in (tail.find("RETURNING"), tail.find("WHERE")) if i >= 0)
    items: list[str] = []
    depth, start = 0, 0
    body = tail[:end]
    for i, char in enumerate(body):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    items.append(body[start:])
    return [item.split("=", 1)[1].strip() for item in items]


def _as_probe(expression: str) -> str:
    """``s.x``/``excluded.x`` as columns of the probe table; parameters as NULL."""
    expression = re.sub(r"\b(s|excluded)\.(\w+)", r"\1_\2", expression)
    expression = re.sub(r"%\(\w+\)s::", "NULL::", expression)
    return re.sub(r"%\(\w+\)s", "NULL::text", expression)


def _refusal(conn: psycopg.Connection[tuple[object, ...]], expression: str) -> str | None:
    """Why PostgreSQL will not index ``expression``, or None when it will."""
    try:
        with conn.transaction():
            conn.execute(f"CREATE INDEX ON probe (({expression}))".encode())
            raise psycopg.Rollback
    except psycopg.errors.InvalidObjectDefinition as err:
        return str(err)
    return None


def test_every_set_expression_is_one_citus_accepts(pg16: PgServer) -> None:
    """Citus refuses non-immutable functions in ON CONFLICT DO UPDATE SET, and in
    UPDATE ... SET a stable function of a column (``now()`` alone it computes
    once); PostgreSQL refuses the same in an index expression. Each of our SET
    expressions is one PostgreSQL indexes (``now()`` of an UPDATE as a column)."""
    from chat_persistence_postgres._queries import Queries
    from chat_persistence_postgres._tables import Tables

    q = Queries(Tables.from_mapping({}))

    def text_of(statement: object) -> str:
        assert isinstance(statement, bytes)
        return statement.decode()

    upserts = [q.upsert_session, q.archive_session, q.save_message, q.save_messages]
    expressions = [e for s in upserts for e in _set_expressions(text_of(s), after="DO UPDATE")]
    updates = _set_expressions(text_of(q.update_session_if), after="UPDATE")
    expressions += [e.replace("now()", "now_") for e in updates]
    assert len(expressions) == 5 + 2 + 3 + 3 + 5
    columns = [f"{p}_{c} {t}" for p in ("s", "excluded") for c, t in _PROBE_COLUMNS.items()]
    with pg16.connect() as conn:
        conn.execute(f"CREATE TEMP TABLE probe ({', '.join(columns)}, now_ timestamptz)".encode())
        # The rule has teeth: the form these statements had before is refused.
        old = _refusal(conn, "greatest(now(), s_updated_at + interval '1 microsecond')")
        assert old is not None
        assert "IMMUTABLE" in old
        refused = [e for e in expressions if _refusal(conn, _as_probe(e)) is not None]
    assert refused == []


def test_no_write_filters_with_case_or_coalesce() -> None:
    """Citus refuses CASE and COALESCE over a non-immutable function in the WHERE of
    an UPDATE or DELETE: the isolation check and every filter avoid both."""
    from chat_persistence_postgres._queries import Queries
    from chat_persistence_postgres._tables import Tables

    q = Queries(Tables.from_mapping({}))
    for statement in (
        q.delete_thread_sessions,
        q.delete_thread_messages,
        q.delete_messages,
        q.update_session_if,
    ):
        assert isinstance(statement, bytes)
        where = statement.upper().split(b"WHERE", 1)[1]
        assert b"CASE" not in where
        assert b"COALESCE" not in where
        assert b"TRANSACTION_ISOLATION" in where  # the check is there, in another form
