"""Round trips and plans: every operation is one round trip (measured with libpq's
protocol trace) of the expected statements (measured in the server's statement
log); thread reads use the ``(thread_id, created_at)`` index on 100,000 messages;
PgBouncer mode prepares nothing on the server."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import pq, sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from chat_persistence import Message, NotFoundError, Session, TextPart
from chat_persistence_postgres import PostgresPersistence
from fix_pg import PgSchema, PgServer, make_schema

Operation = Callable[[PostgresPersistence], Awaitable[object]]


def count_round_trips(trace: str) -> int:
    """Client-to-server bursts answered by the server: each is one network round trip."""
    trips, sending = 0, False
    for line in trace.splitlines():
        direction = line.split("\t", 1)[0]
        if direction == "F":
            sending = True
        elif direction == "B" and sending:
            trips += 1
            sending = False
    return trips


def test_count_round_trips() -> None:
    trace = "F\tParse\nF\tSync\nB\tParseComplete\nB\tReadyForQuery\nF\tQuery\nB\tReady\n"
    assert count_round_trips(trace) == 2
    assert count_round_trips("F\tTerminate\n") == 0


class Meter:
    """Measures one operation on a one-connection pool: round trips from libpq's
    trace of that connection, statements from the server log lines of its backend."""

    def __init__(self, adapter: PostgresPersistence, server_log: Path, tmp: Path) -> None:
        self.adapter = adapter
        self.server_log = server_log
        self.trace_file = tmp / "libpq.trace"

    async def measure(self, operation: Operation) -> tuple[int, int]:
        pool = self.adapter._pool
        assert pool is not None
        assert pool.max_size == 1
        async with pool.connection() as conn:
            pgconn, pid = conn.pgconn, conn.info.backend_pid
        log_start = self.server_log.stat().st_size
        with self.trace_file.open("w") as trace:
            pgconn.trace(trace.fileno())
            pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            try:
                with contextlib.suppress(NotFoundError):
                    await operation(self.adapter)
            finally:
                pgconn.untrace()
        with self.server_log.open("rb") as log:
            log.seek(log_start)
            new = log.read().decode(errors="replace")
        statements = re.findall(rf"\[{pid}\] LOG:  (?:statement|execute [^:]*):", new)
        return count_round_trips(self.trace_file.read_text()), len(statements)


EXPECTED: dict[str, tuple[int, int]] = {
    # operation: (round trips, statements)
    # One statement that takes the thread lock itself (on an idle server it proves
    # its snapshot fresh), for one message or a batch.
    "save_messages, 1 message": (1, 1),
    "save_messages, 200 messages": (1, 1),
    "list_messages": (1, 1),
    "list_messages limit": (1, 1),
    "list_messages before + limit": (1, 1),
    "list_messages after + before": (1, 1),
    "list_messages unknown cursor": (1, 1),
    "list_messages session_id": (1, 1),
    "get_message": (1, 1),
    "save_session": (1, 1),
    "save_session compare-and-set": (1, 1),
    "get_session": (1, 1),
    "list_sessions": (1, 1),
    "archive_session": (1, 1),
    "validate_schema": (1, 2),  # columns and keys: two queries in one pipeline
    "check_schema strict": (1, 2),
    "delete_messages": (1, 1),
    # Two deletes in one pipeline (sessions, then messages): a data-modifying CTE
    # on the sessions table is wrong on Citus (docs/scaling.md).
    "delete_thread": (1, 2),
}

# With ``distributed`` (Citus), each save runs behind the thread lock routed to
# the thread's shard, and the saves and delete_thread in an explicit transaction:
# BEGIN and COMMIT join the same pipeline, so still one round trip.
EXPECTED_DISTRIBUTED = {
    **EXPECTED,
    "save_messages, 1 message": (1, 4),
    "save_messages, 200 messages": (1, 4),
    "delete_thread": (1, 4),
}


async def run_every_operation(meter: Meter) -> dict[str, tuple[int, int]]:
    measured: dict[str, tuple[int, int]] = {}

    async def measure(name: str, operation: Operation) -> None:
        measured[name] = await meter.measure(operation)

    def batch(start: int, size: int) -> list[Message]:
        return [
            Message(f"m{i}", "user", [TextPart("x")], session_id="s")
            for i in range(start, start + size)
        ]

    await measure("save_messages, 1 message", lambda a: a.save_messages("t", batch(0, 1)))
    await measure("save_messages, 200 messages", lambda a: a.save_messages("t", batch(1, 200)))
    await measure("list_messages", lambda a: a.list_messages("t"))
    await measure("list_messages limit", lambda a: a.list_messages("t", limit=10))
    await measure(
        "list_messages before + limit", lambda a: a.list_messages("t", before="m50", limit=10)
    )
    await measure(
        "list_messages after + before", lambda a: a.list_messages("t", after="m5", before="m50")
    )
    await measure("list_messages unknown cursor", lambda a: a.list_messages("t", after="nope"))
    await measure("list_messages session_id", lambda a: a.list_messages("t", session_id="s"))
    await measure("get_message", lambda a: a.get_message("t", "m3"))
    await measure("save_session", lambda a: a.save_session(Session("s", "t", "v")))
    stored = await meter.adapter.get_session("s")
    assert stored is not None
    await measure(
        "save_session compare-and-set",
        lambda a: a.save_session(Session("s", "t", "v2"), expected_updated_at=stored.updated_at),
    )
    await measure("get_session", lambda a: a.get_session("s"))
    await measure("list_sessions", lambda a: a.list_sessions("t", include_archived=True))
    await measure("archive_session", lambda a: a.archive_session("s", thread_id="t"))
    await measure("validate_schema", lambda a: a.validate_schema())
    await measure("check_schema strict", lambda a: a.check_schema(strict=True))
    await measure("delete_messages", lambda a: a.delete_messages("t", ["m1", "m2", "gone"]))
    await measure("delete_thread", lambda a: a.delete_thread("t"))
    return measured


def logged(server: PgServer, schema: PgSchema) -> str:
    """The DSN with every statement of our connections in the server log."""
    return make_conninfo(server.dsn, options="-c log_statement=all")


@pytest.fixture
def pg18_schema(pg18: PgServer) -> Iterator[PgSchema]:
    yield from make_schema(pg18)


async def test_each_operation_is_one_round_trip_own_pool(
    pg18: PgServer, pg18_schema: PgSchema, tmp_path: Path
) -> None:
    assert pg18.log is not None
    tables = pg18_schema.create_reference_tables()
    adapter = PostgresPersistence(
        conninfo=logged(pg18, pg18_schema), tables=tables, min_size=1, max_size=1
    )
    async with adapter:
        measured = await run_every_operation(Meter(adapter, pg18.log, tmp_path))
    print(format_table(measured))
    assert measured == EXPECTED


async def test_distributed_operations_are_one_round_trip_too(
    pg18: PgServer, pg18_schema: PgSchema, tmp_path: Path
) -> None:
    assert pg18.log is not None
    tables = pg18_schema.create_reference_tables()
    adapter = PostgresPersistence(
        conninfo=logged(pg18, pg18_schema),
        tables=tables,
        min_size=1,
        max_size=1,
        distributed=True,
    )
    async with adapter:
        measured = await run_every_operation(Meter(adapter, pg18.log, tmp_path))
    print(format_table(measured))
    assert measured == EXPECTED_DISTRIBUTED


async def test_a_host_pool_costs_no_extra_round_trip(
    pg18: PgServer, pg18_schema: PgSchema, tmp_path: Path
) -> None:
    assert pg18.log is not None
    tables = pg18_schema.create_reference_tables()
    # A host pool in psycopg's default (not autocommit): borrowing it adds nothing.
    async with (
        AsyncConnectionPool(logged(pg18, pg18_schema), min_size=1, max_size=1, open=False) as pool,
        PostgresPersistence(pool=pool, tables=tables, pgbouncer=True) as adapter,
    ):
        measured = await run_every_operation(Meter(adapter, pg18.log, tmp_path))
    assert measured == EXPECTED


def format_table(measured: dict[str, tuple[int, int]]) -> str:
    width = max(map(len, measured))
    lines = [f"{'operation':<{width}}  round trips  statements"]
    lines += [
        f"{name:<{width}}  {trips:>11}  {statements:>10}"
        for name, (trips, statements) in measured.items()
    ]
    return "\n".join(lines)


def test_the_meter_sees_every_round_trip(pg16: PgServer, tmp_path: Path) -> None:
    # Outside autocommit psycopg sends BEGIN first and COMMIT last: three round
    # trips for one query, which is what the adapter avoids.
    trace_file = tmp_path / "trace"
    with psycopg.connect(pg16.dsn) as conn, trace_file.open("w") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        conn.execute("SELECT 1").fetchall()
        conn.commit()
        conn.pgconn.untrace()
    assert count_round_trips(trace_file.read_text()) == 3


async def fill_100k(schema: PgSchema) -> dict[str, str]:
    """100,000 messages: 900 threads of 100, and one thread "big" of 10,000; a
    session on every seventh message, half of the sessions archived."""
    tables = schema.create_reference_tables()
    m, s = schema.qualified("chat_messages"), schema.qualified("chat_sessions")
    with schema.server.connect() as conn:
        conn.execute(
            sql.SQL(
                """
                INSERT INTO {m} (thread_id, message_id, session_id, role, created_at, parts_json)
                SELECT CASE WHEN g <= 10000 THEN 'big' ELSE 't' || (g % 900) END,
                       'm' || g,
                       CASE WHEN g % 7 = 0 THEN 's' || (g % 500) END,
                       'user',
                       timestamptz '2024-01-01' + g * interval '1 second',
                       '[{{"type": "text", "text": "hello"}}]'
                FROM generate_series(1, 100000) g;
                INSERT INTO {s} (session_id, thread_id, sdk_version, archived_at)
                SELECT 's' || g, 't' || g, 'v', CASE WHEN g % 2 = 0 THEN now() END
                FROM generate_series(0, 499) g;
                ANALYZE {m};
                ANALYZE {s};
                """
            ).format(m=m, s=s)
        )
    return tables


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


async def test_thread_reads_use_the_thread_index(pg_any: PgServer) -> None:
    for schema in make_schema(pg_any):
        tables = await fill_100k(schema)
        with schema.server.connect() as conn:
            index = conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s"
                " AND tablename = 'chat_messages' AND indexdef LIKE '%%(thread_id, created_at)'",
                [schema.name],
            ).fetchone()
        assert index is not None
        async with PostgresPersistence(conninfo=schema.dsn, tables=tables) as adapter:
            assert len(await adapter.list_messages("big", limit=50)) == 50
            cases: list[dict[str, Any]] = [
                {"thread": "t5"},
                {"thread": "big", "limit": 50},
                {"thread": "big", "before": "m5000", "limit": 50},
                {"thread": "big", "after": "m5000", "limit": 50},
                {"thread": "big", "after": "m100", "before": "m200"},
            ]
            with schema.server.connect() as conn:
                for case in cases:
                    query = adapter._q.list_messages(
                        by_session=False,
                        before="before" in case,
                        after="after" in case,
                        newest_first="limit" in case and "after" not in case,
                        limited="limit" in case,
                    )
                    params = {"session": None, "before": None, "after": None, "limit": None, **case}
                    text = query if isinstance(query, bytes) else query.as_bytes(conn)
                    row = conn.execute(b"EXPLAIN (FORMAT JSON) " + text, params).fetchone()
                    assert row is not None
                    nodes = list(plan_nodes(row[0][0]["Plan"]))
                    on_messages = [n for n in nodes if n.get("Relation Name") == "chat_messages"]
                    used = {n["Index Name"] for n in nodes if "Index Name" in n}
                    assert index[0] in used, (case, used)
                    assert not any(n["Node Type"] == "Seq Scan" for n in on_messages), case
                    assert b"OFFSET" not in text.upper()


async def test_a_whole_thread_reads_sessions_by_key_and_thread_only(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    """With 200,000 sessions in the table, the unlimited listing reads the thread's
    own sessions through the thread_id index and probes other threads' by key:
    never a scan of the sessions table, and nothing probed more than the
    messages whose session belongs to another thread."""
    m, s = pg_schema.qualified("chat_messages"), pg_schema.qualified("chat_sessions")
    async with PostgresPersistence(conninfo=pg_schema.dsn, tables=pg_tables) as adapter:
        for n in range(5):
            await adapter.save_session(Session(f"own{n}", "t", "v"))
        for n in (1, 3):
            await adapter.archive_session(f"own{n}", thread_id="t")
        await adapter.archive_session("foreign-archived", thread_id="elsewhere")
        await adapter.save_session(Session("foreign-live", "elsewhere", "v"))
        sessions = [f"own{n % 5}" for n in range(200)] + ["foreign-archived", "foreign-live"]
        await adapter.save_messages(
            "t",
            [
                Message(f"m{i}", "user", [TextPart("x")], session_id=sid)
                for i, sid in enumerate(sessions)
            ],
        )
        with pg_schema.server.connect() as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {s} (session_id, thread_id, sdk_version, archived_at)"
                    " SELECT 'other' || g, 'other' || (g / 10), 'v',"
                    " CASE WHEN g % 3 = 0 THEN now() END FROM generate_series(1, 200000) g;"
                    " ANALYZE {s}; ANALYZE {m}"
                ).format(s=s, m=m)
            )
            query = adapter._q.list_messages(
                by_session=False, before=False, after=False, newest_first=False, limited=False
            )
            text = query if isinstance(query, bytes) else query.as_bytes(conn)
            row = conn.execute(
                b"EXPLAIN (ANALYZE, FORMAT JSON) " + text, {"thread": "t"}
            ).fetchone()
        assert row is not None
        nodes = list(plan_nodes(row[0][0]["Plan"]))
        on_sessions = [n for n in nodes if n.get("Relation Name") == "chat_sessions"]
        assert on_sessions
        assert all(n["Node Type"].startswith("Index") for n in on_sessions), on_sessions
        probes = sum(n["Actual Loops"] for n in on_sessions)
        assert probes <= 2 + 2  # the thread's two sets, then one probe per foreign message
        listed = await adapter.list_messages("t")
    assert [m.session_id for m in listed] == [
        sid for sid in sessions if sid not in {"own1", "own3", "foreign-archived"}
    ]


async def test_pgbouncer_mode_prepares_nothing_on_the_server(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    async def prepared_after_repeating(pgbouncer: bool) -> int:
        async with AsyncConnectionPool(pg_schema.dsn, min_size=1, max_size=1, open=False) as pool:
            async with PostgresPersistence(pool=pool, tables=pg_tables, pgbouncer=pgbouncer) as a:
                for n in range(8):
                    await a.save_messages("t", [Message(f"m{n}", "user", [TextPart("x")])])
                    await a.list_messages("t", limit=5)
            async with pool.connection() as conn:
                assert conn.prepare_threshold == 5  # the host's setting, given back
                cur = await conn.execute("SELECT count(*) FROM pg_prepared_statements")
                row = await cur.fetchone()
                return row[0] if row else -1

    assert await prepared_after_repeating(pgbouncer=False) > 0  # psycopg's default prepares
    assert await prepared_after_repeating(pgbouncer=True) == 0
    async with PostgresPersistence(conninfo=pg_schema.dsn, tables=pg_tables, pgbouncer=True) as own:
        assert own.prepare_threshold is None
        for _i in range(8):
            await own.list_messages("t", limit=5)
        assert own._pool is not None
        async with own._pool.connection() as conn:
            assert conn.prepare_threshold is None
            cur = await conn.execute("SELECT count(*) FROM pg_prepared_statements")
            assert await cur.fetchone() == (0,)
