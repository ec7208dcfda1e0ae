"""W1-W4 against PostgreSQL: the raw baselines, our adapter and the peers, each
case measured in one interleaved set of rounds."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from harness import Results, Timed, measure
from ours import AdapterFactory, to_message
from pg import clone_threads, create_tables, explain, fill_other_sessions, insert_sessions
from pg import insert_thread as pg_insert_thread
from raw import RawStore
from workload import batches, make_messages

from chat_persistence import PersistenceAdapter

RAW = "raw psycopg"
RAW_GUARDED = f"{RAW}: same guarantees by hand"
OURS = "chat-persistence postgres"
W1_BATCH = "W1 batch"
W1_SINGLE = "W1 single save"
W2_ALL = "W2 read whole"
W2_NEWEST = "W2 read newest"
W1_RAW_BATCH = (
    f"{RAW}: unnest jsonb[] (binary Jsonb)",
    f"{RAW}: unnest text[], text::jsonb",
    f"{RAW}: one jsonb array, jsonb_array_elements",
    f"{RAW}: one jsonb array of records, jsonb_to_recordset",
)
W1_RAW_SINGLE = (f"{RAW}: INSERT, binary Jsonb", f"{RAW}: INSERT, text::jsonb")
W2_RAW = (
    f"{RAW}: dicts, binary",
    f"{RAW}: tuples, binary",
    f"{RAW}: tuples, text",
    f"{RAW}: tuples, binary, jsonb as bytes + orjson",
)


@dataclass
class Sizes:
    """How big each workload is; ``quick()`` scales them down for a smoke run."""

    thread: int = 1000
    batch: int = 100
    singles: int = 1000
    newest: int = 50
    w3_sessions: int = 1_000_000
    w4_threads: int = 10_000
    w4_small_threads: int = 10
    w4_per_thread: int = 100
    memory_thread: int = 1_000_000
    reps: int = 9
    startup_reps: int = 20

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            thread=200,
            singles=100,
            w3_sessions=20_000,
            w4_threads=200,
            memory_thread=20_000,
            reps=3,
            startup_reps=5,
        )


class Peers(Protocol):
    def contenders(self, key: str, inner: int = 1, label: str = "") -> dict[str, Timed]: ...
    def notes(self, key: str, label: str = "") -> dict[str, str]: ...


class NoPeers:
    def contenders(self, key: str, inner: int = 1, label: str = "") -> dict[str, Timed]:
        return {}

    def notes(self, key: str, label: str = "") -> dict[str, str]:
        return {}


@dataclass
class Context:
    dsn: str
    sizes: Sizes
    results: Results
    admin: psycopg.AsyncConnection[Any]
    raw_conn: psycopg.AsyncConnection[dict[str, Any]]
    adapter: AdapterFactory | None
    peers: Peers = field(default_factory=NoPeers)
    plans: dict[str, str] = field(default_factory=dict[str, str])

    @asynccontextmanager
    async def ours(self, messages: str, sessions: str) -> AsyncGenerator[PersistenceAdapter | None]:
        if self.adapter is None:
            yield None
            return
        async with self.adapter(messages, sessions) as store:
            yield store


def _sync(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


_ids = itertools.count()


def _fresh(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


async def w1_append(ctx: Context) -> None:
    """A thread appended as batches of 100, and as single-message saves."""
    n, size = ctx.sizes.thread, ctx.sizes.batch
    wire = make_messages(n, prefix="w1", sessions=["w1-s0"])
    typed = [to_message(m) for m in wire]
    singles = ctx.sizes.singles
    with _sync(ctx.dsn) as conn:
        create_tables(conn, "w1_messages", "w1_sessions")
    raw = RawStore(ctx.raw_conn, "w1_messages", "w1_sessions")
    truncate = "truncate w1_messages"

    def raw_batches(insert: Callable[[str, list[dict[str, Any]]], Awaitable[object]]) -> Timed:
        async def run() -> float:
            await ctx.admin.execute(truncate)
            thread = _fresh("w1")
            start = time.perf_counter()
            for batch in batches(wire, size):
                await insert(thread, batch)
            return time.perf_counter() - start

        return run

    def raw_singles(insert: Callable[[str, dict[str, Any]], Awaitable[object]]) -> Timed:
        async def run() -> float:
            await ctx.admin.execute(truncate)
            thread = _fresh("w1")
            start = time.perf_counter()
            for message in wire[:singles]:
                await insert(thread, message)
            return time.perf_counter() - start

        return run

    async with ctx.ours("w1_messages", "w1_sessions") as store:
        batch_runs: dict[str, Timed] = {
            W1_RAW_BATCH[0]: raw_batches(raw.insert_batch),
            W1_RAW_BATCH[1]: raw_batches(raw.insert_batch_text),
            W1_RAW_BATCH[2]: raw_batches(raw.insert_batch_document),
            W1_RAW_BATCH[3]: raw_batches(raw.insert_batch_records),
            RAW_GUARDED: raw_batches(raw.insert_guarded),
        }
        single_runs: dict[str, Timed] = {
            W1_RAW_SINGLE[0]: raw_singles(raw.insert_one),
            W1_RAW_SINGLE[1]: raw_singles(raw.insert_one_text),
        }
        typed_batches = batches(typed, size)
        if store is not None:

            async def ours_batches() -> float:
                await ctx.admin.execute(truncate)
                thread = _fresh("w1")
                start = time.perf_counter()
                for batch in typed_batches:
                    await store.save_messages(thread, batch)
                return time.perf_counter() - start

            async def ours_singles() -> float:
                await ctx.admin.execute(truncate)
                thread = _fresh("w1")
                start = time.perf_counter()
                for message in typed[:singles]:
                    await store.save_messages(thread, [message])
                return time.perf_counter() - start

            batch_runs[OURS] = ours_batches
            single_runs[OURS] = ours_singles
        await measure(
            ctx.results,
            f"{W1_BATCH} of {size} ({n:,}-msg thread, per batch)",
            batch_runs | ctx.peers.contenders("w1_batch"),
            ops=len(typed_batches),
            reps=ctx.sizes.reps,
            baseline=W1_RAW_BATCH,
            notes=ctx.peers.notes("w1_batch"),
        )
        await measure(
            ctx.results,
            f"{W1_SINGLE} ({singles:,} saves, per save)",
            single_runs | ctx.peers.contenders("w1_single"),
            ops=singles,
            reps=ctx.sizes.reps,
            baseline=W1_RAW_SINGLE,
            notes=ctx.peers.notes("w1_single"),
        )


async def w2_read(ctx: Context) -> None:
    """The whole thread, and the newest 50, as typed messages vs dict rows."""
    n, newest = ctx.sizes.thread, ctx.sizes.newest
    wire = make_messages(n, prefix="w2", sessions=["w2-s0", "w2-s1"])
    with _sync(ctx.dsn) as conn:
        create_tables(conn, "w2_messages", "w2_sessions")
        pg_insert_thread(conn, "w2_messages", "w2", wire)
        insert_sessions(conn, "w2_sessions", "w2", ["w2-s0", "w2-s1"], set())
        conn.execute("vacuum analyze w2_messages, w2_sessions")
    raw = RawStore(ctx.raw_conn, "w2_messages", "w2_sessions")
    reads_all, reads_newest = 5, 20

    def raw_all(read: Callable[[str], Awaitable[list[Any]]]) -> Timed:
        async def run() -> float:
            rows: list[Any] = []
            start = time.perf_counter()
            for _ in range(reads_all):
                rows = await read("w2")
            elapsed = time.perf_counter() - start
            assert len(rows) == n
            return elapsed

        return run

    def raw_newest(read: Callable[[str, int], Awaitable[list[Any]]]) -> Timed:
        async def run() -> float:
            rows: list[Any] = []
            start = time.perf_counter()
            for _ in range(reads_newest):
                rows = await read("w2", newest)
            elapsed = time.perf_counter() - start
            assert len(rows) == newest
            return elapsed

        return run

    async with ctx.ours("w2_messages", "w2_sessions") as store:
        all_runs: dict[str, Timed] = {
            W2_RAW[0]: raw_all(raw.read_all),
            W2_RAW[1]: raw_all(raw.read_all_tuples),
            W2_RAW[2]: raw_all(raw.read_all_text),
            W2_RAW[3]: raw_all(raw.read_all_bytes),
        }
        newest_runs: dict[str, Timed] = {
            W2_RAW[0]: raw_newest(raw.read_newest),
            W2_RAW[1]: raw_newest(raw.read_newest_tuples),
            W2_RAW[2]: raw_newest(raw.read_newest_text),
            W2_RAW[3]: raw_newest(raw.read_newest_bytes),
        }
        if store is not None:

            async def ours_all() -> float:
                got: list[Any] = []
                start = time.perf_counter()
                for _ in range(reads_all):
                    got = await store.list_messages("w2")
                elapsed = time.perf_counter() - start
                assert len(got) == n
                return elapsed

            async def ours_newest() -> float:
                got: list[Any] = []
                start = time.perf_counter()
                for _ in range(reads_newest):
                    got = await store.list_messages("w2", limit=newest)
                elapsed = time.perf_counter() - start
                assert len(got) == newest
                return elapsed

            all_runs[OURS] = ours_all
            newest_runs[OURS] = ours_newest
        await measure(
            ctx.results,
            f"{W2_ALL} {n:,}-msg thread",
            all_runs | ctx.peers.contenders("w2_all", reads_all),
            ops=reads_all,
            reps=ctx.sizes.reps,
            baseline=W2_RAW,
            notes=ctx.peers.notes("w2_all"),
        )
        await measure(
            ctx.results,
            f"{W2_NEWEST} {newest} of {n:,}",
            newest_runs | ctx.peers.contenders("w2_newest", reads_newest),
            ops=reads_newest,
            reps=ctx.sizes.reps,
            baseline=W2_RAW,
            notes=ctx.peers.notes("w2_newest"),
        )


W3_CASE = "W3 archive filter"


async def w3_archive(ctx: Context) -> None:
    """A thread over 5 sessions, 2 archived, read through the default filter, with
    5 and with ~1,000,000 rows in the sessions table."""
    n = ctx.sizes.thread
    ids = [f"w3-s{i}" for i in range(5)]
    archived = {"w3-s1", "w3-s3"}
    wire = make_messages(n, prefix="w3", sessions=ids)
    visible = sum(1 for m in wire if m["session_id"] not in archived)
    big = ctx.sizes.w3_sessions
    with _sync(ctx.dsn) as conn:
        create_tables(conn, "w3_messages", "w3_small_sessions")
        create_tables(conn, "w3_unused", "w3_big_sessions")
        pg_insert_thread(conn, "w3_messages", "w3", wire)
        for sessions in ("w3_small_sessions", "w3_big_sessions"):
            insert_sessions(conn, sessions, "w3", ids, archived)
        start = time.perf_counter()
        fill_other_sessions(conn, "w3_big_sessions", count=big - len(ids))
        conn.execute("vacuum analyze w3_messages, w3_small_sessions, w3_big_sessions")
        ctx.results.note(f"W3: {big:,} sessions generated in {time.perf_counter() - start:.1f} s")
        raw_big = RawStore(ctx.raw_conn, "w3_messages", "w3_big_sessions")
        plan = explain(conn, raw_big.select_all.as_string(conn), ("w3",))
        ctx.plans[f"W3 raw anti-join, {big:,} sessions"] = plan
        if "Seq Scan on w3_big_sessions" in plan:
            ctx.results.note("W3: the raw anti-join plan scans the sessions table")
    raw_small = RawStore(ctx.raw_conn, "w3_messages", "w3_small_sessions")
    reads = 5

    def raw_run(store: RawStore) -> Timed:
        async def run() -> float:
            rows: list[Any] = []
            start = time.perf_counter()
            for _ in range(reads):
                rows = await store.read_all_bytes("w3")  # the fastest raw way found (W2)
            elapsed = time.perf_counter() - start
            assert len(rows) == visible, (len(rows), visible)
            return elapsed

        return run

    def ours_run(store: PersistenceAdapter) -> Timed:
        async def run() -> float:
            got: list[Any] = []
            start = time.perf_counter()
            for _ in range(reads):
                got = await store.list_messages("w3")
            elapsed = time.perf_counter() - start
            assert len(got) == visible, (len(got), visible)
            return elapsed

        return run

    runs: dict[str, Timed] = {
        f"{RAW}, 5 sessions": raw_run(raw_small),
        f"{RAW}, {big:,} sessions": raw_run(raw_big),
    }
    async with (
        ctx.ours("w3_messages", "w3_small_sessions") as small,
        ctx.ours("w3_messages", "w3_big_sessions") as large,
    ):
        if small is not None and large is not None:
            runs[f"{OURS}, 5 sessions"] = ours_run(small)
            runs[f"{OURS}, {big:,} sessions"] = ours_run(large)
        await measure(
            ctx.results,
            f"{W3_CASE} ({n:,} msgs, 5 sessions, 2 archived)",
            runs,
            ops=reads,
            reps=ctx.sizes.reps,
            baseline=f"{RAW}, 5 sessions",
        )


W4_CASE = "W4 read"


async def w4_scale(ctx: Context) -> None:
    """One 100-message thread read from a table of 1,000,000 messages over 10,000
    threads, and from a table of 1,000 messages."""
    per = ctx.sizes.w4_per_thread
    big, small = ctx.sizes.w4_threads, ctx.sizes.w4_small_threads
    wire = make_messages(per, prefix="w4")
    with _sync(ctx.dsn) as conn:
        create_tables(conn, "w4_template", "w4_template_sessions")
        pg_insert_thread(conn, "w4_template", "template", wire)
        start = time.perf_counter()
        clone_threads(conn, "w4_template", "w4_big", "w4_big_sessions", threads=big)
        ctx.results.note(
            f"W4: {big * per:,} messages generated in {time.perf_counter() - start:.1f} s"
        )
        clone_threads(conn, "w4_template", "w4_small", "w4_small_sessions", threads=small)
    thread = "t000005"
    reads = 10

    def raw_run(store: RawStore) -> Timed:
        async def run() -> float:
            rows: list[Any] = []
            start = time.perf_counter()
            for _ in range(reads):
                rows = await store.read_all_bytes(thread)  # the fastest raw way found (W2)
            elapsed = time.perf_counter() - start
            assert len(rows) == per
            return elapsed

        return run

    def ours_run(store: PersistenceAdapter) -> Timed:
        async def run() -> float:
            got: list[Any] = []
            start = time.perf_counter()
            for _ in range(reads):
                got = await store.list_messages(thread)
            elapsed = time.perf_counter() - start
            assert len(got) == per
            return elapsed

        return run

    small_label, big_label = f"{small * per:,}-msg table", f"{big * per:,}-msg table"
    runs: dict[str, Timed] = {
        f"{RAW}, {small_label}": raw_run(RawStore(ctx.raw_conn, "w4_small", "w4_small_sessions")),
        f"{RAW}, {big_label}": raw_run(RawStore(ctx.raw_conn, "w4_big", "w4_big_sessions")),
    }
    async with (
        ctx.ours("w4_small", "w4_small_sessions") as small_store,
        ctx.ours("w4_big", "w4_big_sessions") as big_store,
    ):
        if small_store is not None and big_store is not None:
            runs[f"{OURS}, {small_label}"] = ours_run(small_store)
            runs[f"{OURS}, {big_label}"] = ours_run(big_store)
        await measure(
            ctx.results,
            f"{W4_CASE} one {per}-msg thread",
            runs
            | ctx.peers.contenders("w4_small", reads, f", {small_label}")
            | ctx.peers.contenders("w4_big", reads, f", {big_label}"),
            ops=reads,
            reps=ctx.sizes.reps,
            baseline=f"{RAW}, {small_label}",
            notes=ctx.peers.notes("w4_small", f", {small_label}")
            | ctx.peers.notes("w4_big", f", {big_label}"),
        )
