"""Hostile input, differential: Hypothesis builds calls across the whole range of
ids, roles, parts, state and metadata (empty strings, NUL, lone surrogates, astral
characters, very long strings, deep nesting, huge and non-finite numbers,
non-string keys, non-JSON objects), runs each on the memory backend, on
PostgreSQL 16 and on SQLite, and checks that all give the same outcome: all store it
and return it identically, or all reject it with the same error before writing."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import attrs
import psycopg
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from chat_persistence import (
    Message,
    PersistenceAdapter,
    Session,
    unstructure_part,
    validate_id,
)
from chat_persistence_memory import MemoryPersistence
from chat_persistence_postgres import PostgresPersistence
from chat_persistence_sqlite import SqlitePersistence
from fix_pg import PgSchema
from strategies import (
    hostile_datetimes,
    hostile_ids,
    hostile_messages,
    hostile_sessions,
    ids,
    messages,
)

EXAMPLES = int(os.environ.get("CHAT_PERSISTENCE_HOSTILE_EXAMPLES", "200"))
"""Hostile calls tried per run, each on both backends (set the variable to try more)."""

STORED_UPDATED_AT = "the stored updated_at"
"""A compare-and-set with the ``updated_at`` each backend stored for session ``s``."""


@attrs.frozen
class Case:
    """One example: a valid seed of thread ``t`` and session ``s``, then one call."""

    seed: list[Message]
    operation: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def _no_tied_times(case: Case) -> bool:
    """Ties in explicit times are ordered by id on Postgres and by save order in
    memory (a declared capability): leave them to the contract suite."""
    batch: object = case.args[1] if case.operation == "save_messages" else []
    candidates: list[object] = [*case.seed]
    if isinstance(batch, list):
        candidates += cast(list[object], batch)
    times = [
        m.created_at
        for m in candidates
        if isinstance(m, Message) and isinstance(m.created_at, datetime)
    ]
    try:
        return len(times) == len(set(times))
    except TypeError:  # a naive datetime beside an aware one
        return True


thread_ids = st.just("t") | hostile_ids()
cursors = st.none() | st.sampled_from(("s-0", "s-1")) | hostile_ids()
limits = st.none() | st.integers(-2, 5) | st.sampled_from((2**63, 2**64, 10**30, True, 1.5, "3"))
batches = st.lists(messages() | hostile_messages(), max_size=4)
seeds = st.lists(messages(), max_size=3, unique_by=lambda m: m.id)
session_ids = st.just("s") | hostile_ids()
expected_times = st.none() | st.just(STORED_UPDATED_AT) | hostile_datetimes()
filters = st.none() | ids() | hostile_ids()
operations = st.sampled_from(
    (
        "save_messages",
        "save_messages",
        "save_messages",
        "save_session",
        "save_session",
        "archive_session",
        "list_messages",
        "get_message",
        "get_session",
        "list_sessions",
        "delete_thread",
    )
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    seed = draw(seeds)
    seed = [attrs.evolve(m, id=f"s-{i}") for i, m in enumerate(seed)]
    operation = draw(operations)
    kwargs: dict[str, Any] = {}
    if operation == "save_messages":
        args: tuple[Any, ...] = (draw(thread_ids), draw(batches))
    elif operation == "save_session":
        args = (draw(hostile_sessions()),)
        kwargs["expected_updated_at"] = draw(expected_times)
    elif operation == "archive_session":
        args = (draw(session_ids),)
        kwargs["thread_id"] = draw(thread_ids)
    elif operation == "list_messages":
        args = (draw(thread_ids),)
        kwargs = {
            "session_id": draw(filters),
            "limit": draw(limits),
            "before": draw(cursors),
            "after": draw(cursors),
        }
    elif operation == "get_message":
        args = (draw(thread_ids), draw(cursors))
    elif operation == "get_session":
        args = (draw(session_ids),)
    elif operation == "list_sessions":
        args = (draw(thread_ids),)
        kwargs["include_archived"] = draw(st.booleans())
    else:
        args = (draw(thread_ids),)
    return Case(seed, operation, args, kwargs)


# -- canonical forms: strict about types (1 is not 1.0), blind to store-assigned times


def _json_text(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=True)


def _when(value: datetime | None, started: datetime) -> object:
    if value is None:
        return None
    # The store's own "now" differs between backends; a caller's times are kept.
    return "now" if abs(value - started) < timedelta(hours=1) else value


def canon_message(m: Message, started: datetime) -> tuple[object, ...]:
    parts = tuple((type(p).__name__, _json_text(unstructure_part(p))) for p in m.parts)
    return (m.id, m.role, parts, m.session_id, _when(m.created_at, started))


def canon_session(s: Session, started: datetime) -> tuple[object, ...]:
    return (
        s.id,
        s.thread_id,
        s.sdk_version,
        _json_text(s.state),
        _json_text(s.metadata),
        _when(s.created_at, started),
        _when(s.updated_at, started),
        _when(s.archived_at, started),
    )


def canon(value: object, started: datetime) -> object:
    if isinstance(value, Message):
        return canon_message(value, started)
    if isinstance(value, Session):
        return canon_session(value, started)
    if isinstance(value, list):
        return [canon(v, started) for v in cast(list[object], value)]
    return value


def canon_all(values: list[Message] | list[Session], started: datetime) -> list[object]:
    return [canon(v, started) for v in values]


async def outcome(adapter: PersistenceAdapter, case: Case, started: datetime) -> tuple[object, ...]:
    """What one backend did with the call: its result or its error, and its warnings."""
    kwargs = dict(case.kwargs)
    if kwargs.get("expected_updated_at") == STORED_UPDATED_AT:
        stored = await adapter.get_session("s")
        kwargs["expected_updated_at"] = stored.updated_at if stored is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = await getattr(adapter, case.operation)(*case.args, **kwargs)
        except Exception as err:
            shown = (getattr(err, "field", None), getattr(err, "argument", None))
            return ("error", type(err).__name__, shown, len(caught))
    return ("ok", canon(result, started), sorted(str(w.message) for w in caught))


async def snapshot(adapter: PersistenceAdapter, case: Case, started: datetime) -> dict[str, object]:
    """Everything a reader can see afterwards in the threads and sessions the call named."""
    threads: list[object] = ["t"]
    sessions: list[object] = ["s"]
    first = case.args[0] if case.args else None
    if case.operation in ("save_messages", "list_messages", "get_message", "list_sessions"):
        threads.append(first)
    if case.operation == "archive_session":
        sessions.append(first)
        threads.append(case.kwargs["thread_id"])
    if case.operation == "save_session":
        sessions.append(getattr(first, "id", None))
        threads.append(getattr(first, "thread_id", None))
    seen: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for thread_id in _valid_ids(threads):
            listed = canon_all(await adapter.list_messages(thread_id), started)
            seen[f"messages {thread_id!r}"] = sorted(map(repr, listed))
            archived = await adapter.list_sessions(thread_id, include_archived=True)
            seen[f"sessions {thread_id!r}"] = sorted(map(repr, canon_all(archived, started)))
        for session_id in _valid_ids(sessions):
            got = await adapter.get_session(session_id)
            seen[f"session {session_id!r}"] = canon(got, started)
    return seen


def _valid_ids(values: list[object]) -> list[str]:
    valid: dict[str, None] = {}
    for value in values:
        try:
            validate_id("id", value)
        except Exception:
            continue
        valid[str(value)] = None
    return list(valid)


async def row_counts_postgres(admin: psycopg.Connection[Any], schema: PgSchema) -> tuple[int, int]:
    counts: list[int] = []
    for table in ("chat_messages", "chat_sessions"):
        row = admin.execute(
            sql.SQL("SELECT count(*) FROM {}").format(schema.qualified(table))
        ).fetchone()
        counts.append(int(row[0]) if row else -1)
    return counts[0], counts[1]


def row_counts_memory(adapter: MemoryPersistence) -> tuple[int, int]:
    store = adapter._store
    return sum(len(t.rows) for t in store._threads.values()), len(store._sessions)


async def row_counts_sqlite(adapter: SqlitePersistence) -> tuple[int, int]:
    def count(conn: sqlite3.Connection) -> tuple[int, int]:
        m = conn.execute("SELECT count(*) FROM chat_messages").fetchone()[0]
        return m, conn.execute("SELECT count(*) FROM chat_sessions").fetchone()[0]

    return await adapter._worker.run(count, "count")


async def check(
    pg: PostgresPersistence,
    admin: psycopg.Connection[Any],
    schema: PgSchema,
    case: Case,
    tally: Counter[str],
) -> None:
    admin.execute(
        sql.SQL("TRUNCATE {}, {}").format(
            schema.qualified("chat_messages"), schema.qualified("chat_sessions")
        )
    )
    started = datetime.now(UTC)
    async with MemoryPersistence() as memory, SqlitePersistence() as lite:
        results: list[tuple[object, ...]] = []
        for adapter in (memory, pg, lite):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                seeded = await adapter.save_messages("t", case.seed)
                await adapter.save_session(Session("s", "t", "v", state={"n": 1}))
            assert len(seeded) == len(case.seed)
            results.append(await outcome(adapter, case, started))
        on_memory, on_postgres, on_sqlite = results
        assert on_memory == on_postgres, "the backends disagree on this call"
        assert on_memory == on_sqlite, "memory and sqlite disagree on this call"
        assert await snapshot(memory, case, started) == await snapshot(pg, case, started)
        assert await snapshot(memory, case, started) == await snapshot(lite, case, started)
        assert row_counts_memory(memory) == await row_counts_postgres(admin, schema)
        assert row_counts_memory(memory) == await row_counts_sqlite(lite)
    tally["hostile inputs tried per backend"] += 1
    alike = "rejected" if on_memory[0] == "error" else "stored or read"
    tally[f"hostile inputs {alike} alike"] += 1


_FAR_EAST = timezone(timedelta(hours=23, minutes=59))


def _save_one(
    message_id: str = "m", created_at: datetime | None = None, thread_id: str = "t"
) -> Case:
    message = Message(message_id, "user", [], created_at=created_at)
    return Case([], "save_messages", (thread_id, [message]), {})


KNOWN_EDGES: list[Case] = [
    # Each of these once diverged: Postgres failed, or answered differently.
    Case([], "list_messages", ("t",), {"limit": 2**64}),
    _save_one(created_at=datetime(2000, 1, 1, tzinfo=_FAR_EAST)),
    _save_one(created_at=datetime.min.replace(tzinfo=_FAR_EAST)),
    _save_one(message_id="a" * 513),
    Case(
        [],
        "save_session",
        (Session("s", "t", "v"),),
        {"expected_updated_at": datetime.min.replace(tzinfo=_FAR_EAST)},
    ),
    Case([], "save_session", (Session("s", "t", "v", state=[1e23, -0.0, 10**3999]),), {}),
    Case([], "archive_session", ("€" * 171,), {"thread_id": "t"}),
    Case(
        [Message("s-0", "user", [], created_at=datetime.max.replace(tzinfo=UTC))],
        "save_messages",
        ("t", [Message("m", "user", [])]),
        {},
    ),
]
"""Calls always tried, besides the generated ones."""


def _known_edges(test: Any) -> Any:
    for case in KNOWN_EDGES:
        test = example(case=case)(test)
    return test


def test_hostile_input_gives_the_same_outcome_on_memory_and_postgres(
    pg_schema: PgSchema, pg_tables: dict[str, str], tally: Counter[str]
) -> None:
    with asyncio.Runner() as runner, pg_schema.server.connect() as admin:
        pg = PostgresPersistence(conninfo=pg_schema.dsn, tables=pg_tables, max_size=2)
        runner.run(pg.open())
        try:

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=[
                    HealthCheck.too_slow,
                    HealthCheck.data_too_large,
                    HealthCheck.filter_too_much,
                ],
            )
            @given(case=cases())
            @_known_edges
            def differential(case: Case) -> None:
                assume(_no_tied_times(case))
                runner.run(check(pg, admin, pg_schema, case, tally))

            differential()
        finally:
            runner.run(pg.aclose())


@pytest.mark.parametrize(
    "value",
    [1e16, 1e23, -1e308, 1.7976931348623157e308, 123456789012345680.0, -0.0, 10**3999, 0.1],
)
async def test_numbers_jsonb_would_change_read_back_the_same(
    pg_adapter: PostgresPersistence, value: float | int
) -> None:
    """jsonb keeps numbers as numeric: 1e23 would come back as the integer
    100000000000000000000000 (not even the same number), -0.0 as 0.0. Both backends
    return what the memory backend always did (with -0.0 as 0.0 everywhere)."""
    from chat_persistence import DataPart

    async with MemoryPersistence() as memory, SqlitePersistence() as lite:
        for adapter in (memory, pg_adapter, lite):
            saved = await adapter.save_messages("t", [Message("m", "user", [DataPart([value])])])
            await adapter.save_session(Session("s", "t", "v", state={"v": value}))
            got = await adapter.get_message("t", "m")
            session = await adapter.get_session("s")
            assert got is not None
            assert session is not None
            expected = value + 0.0 if value == 0 else value  # -0.0 is 0.0 everywhere
            for read in (saved[0].parts[0], got.parts[0]):
                assert isinstance(read, DataPart)
                assert _json_text(read.data) == _json_text([expected])
            assert _json_text(session.state) == _json_text({"v": expected})
