"""Ordering under concurrency: appends to one thread are serialized, so concurrent
writers never interleave and a reader paging forward with ``after=`` sees every
message exactly once, never skipping one that commits late; writes to different
threads run in parallel. On PostgreSQL 16 and on the memory backend."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from psycopg import sql

from chat_persistence import Message, PersistenceAdapter, TextPart
from chat_persistence_memory import MemoryPersistence
from chat_persistence_postgres import PostgresPersistence
from fix_faults import Holder, app_dsn, install_gate, new_app
from fix_pg import PgSchema

HolderFactory = Callable[[str, str], Awaitable[Holder]]

WRITERS = 12
BATCHES = 15
PAGE = 7


def text(message_id: str) -> Message:
    return Message(message_id, "user", [TextPart(message_id)])


def writer_batches(writer: int, seed: int) -> list[list[Message]]:
    """The batches one writer saves: 1 to 3 messages each, ids naming writer and order."""
    rng = random.Random(seed * 1000 + writer)
    batches: list[list[Message]] = []
    n = 0
    for b in range(BATCHES):
        size = rng.randint(1, 3)
        batches.append([text(f"w{writer:02d}-{b:02d}-{n + i:03d}") for i in range(size)])
        n += size
    return batches


class PollingReader:
    """Pages forward with ``after=`` from a first message until told to stop and a
    last pass finds nothing new; keeps everything it saw, in order."""

    def __init__(self, adapter: PersistenceAdapter, thread_id: str, first: str) -> None:
        self.adapter = adapter
        self.thread_id = thread_id
        self.seen: list[Message] = []
        self.cursor = first
        self.pages = 0

    async def read_page(self) -> int:
        page = await self.adapter.list_messages(self.thread_id, after=self.cursor, limit=PAGE)
        self.pages += 1
        self.seen += page
        if page:
            self.cursor = page[-1].id
        return len(page)

    async def run(self, writers_done: Callable[[], bool]) -> None:
        for _ in range(200_000):
            done = writers_done()
            got = await self.read_page()
            if done and not got:
                return
            if not got:
                await asyncio.sleep(0.001)  # poll again; nothing new was committed
        raise AssertionError("the reader never caught up")


def check_order(
    listed: list[Message],
    seen: list[Message],
    results: list[list[Message]],
    expected_batches: list[list[list[Message]]],
) -> None:
    """Every message exactly once, in the listing's order, batches whole and each
    writer's batches in the order it saved them."""
    seen_ids = [m.id for m in seen]
    assert len(seen_ids) == len(set(seen_ids)), "the reader saw a message twice"
    assert seen_ids == [m.id for m in listed[1:]], "the reader skipped or misordered messages"
    assert seen == listed[1:]
    times = [m.created_at for m in listed]
    assert all(a is not None and b is not None and a < b for a, b in pairwise(times))
    position = {m.id: i for i, m in enumerate(listed)}
    for saved in results:
        where = [position[m.id] for m in saved]
        assert where == list(range(where[0], where[0] + len(saved))), "a batch was interleaved"
        assert saved == [listed[i] for i in where]
    for batches in expected_batches:
        starts = [position[batch[0].id] for batch in batches]
        assert starts == sorted(starts), "a writer's batches are out of order"


@pytest.fixture
async def pg(pg_schema: PgSchema, pg_tables: dict[str, str]) -> AsyncIterator[PostgresPersistence]:
    async with PostgresPersistence(
        conninfo=pg_schema.dsn, tables=pg_tables, min_size=WRITERS + 2, max_size=WRITERS + 2
    ) as adapter:
        yield adapter


async def race_writers(adapter: PersistenceAdapter, seed: int) -> PollingReader:
    """``WRITERS`` concurrent writers of ``writer_batches`` into thread ``"t"`` while a
    reader polls it; checks the outcome with ``check_order`` and that every message
    was stored, and returns the reader."""
    await adapter.save_messages("t", [text("start")])
    expected = [writer_batches(w, seed) for w in range(WRITERS)]
    results: list[list[Message]] = []
    finished = 0

    async def write(batches: list[list[Message]]) -> None:
        nonlocal finished
        for batch in batches:
            saved = await adapter.save_messages("t", batch)
            results.append(saved)
        finished += 1

    reader = PollingReader(adapter, "t", "start")
    await asyncio.gather(
        reader.run(lambda: finished == WRITERS), *(write(batches) for batches in expected)
    )
    listed = await adapter.list_messages("t")
    check_order(listed, reader.seen, results, expected)
    assert len(listed) - 1 == sum(len(b) for batches in expected for b in batches)
    return reader


async def test_concurrent_writers_and_a_polling_reader_postgres(
    pg: PostgresPersistence, tally: Counter[str]
) -> None:
    reader = await race_writers(pg, 1)
    tally["concurrent writers to one thread (postgres)"] += WRITERS
    tally["messages checked by a polling reader (postgres)"] += len(reader.seen)


def test_concurrent_writers_and_a_polling_reader_memory(tally: Counter[str]) -> None:
    """Writers in OS threads (each its own event loop), the reader in another."""
    adapter = MemoryPersistence()
    asyncio.run(adapter.open())
    asyncio.run(adapter.save_messages("t", [text("start")]))
    writers = WRITERS * 2
    expected = [writer_batches(w, 2) for w in range(writers)]
    results: list[list[Message]] = []
    lock = threading.Lock()
    go = threading.Barrier(writers + 1)

    def write(batches: list[list[Message]]) -> None:
        go.wait(timeout=30)
        for batch in batches:
            saved = asyncio.run(adapter.save_messages("t", batch))
            with lock:
                results.append(saved)

    reader = PollingReader(adapter, "t", "start")

    async def read(pool: ThreadPoolExecutor) -> None:
        futures = [pool.submit(write, batches) for batches in expected]
        go.wait(timeout=30)
        await reader.run(lambda: all(f.done() for f in futures))
        for future in futures:
            future.result()

    with ThreadPoolExecutor(max_workers=writers) as pool:
        asyncio.run(read(pool))
    listed = asyncio.run(adapter.list_messages("t"))
    check_order(listed, reader.seen, results, expected)
    tally["concurrent writers to one thread (memory, OS threads)"] += writers
    tally["messages checked by a polling reader (memory)"] += len(reader.seen)


@pytest.fixture
def gated(pg_schema: PgSchema, pg_tables: dict[str, str]) -> PgSchema:
    install_gate(pg_schema)
    return pg_schema


@pytest.mark.parametrize("serialized", [True, False], ids=["adapter", "without-thread-lock"])
async def test_a_late_commit_is_never_skipped(
    serialized: bool, gated: PgSchema, holder_factory: HolderFactory, tally: Counter[str]
) -> None:
    """W1 takes its place in the thread and is held before it commits; W2 comes
    later. The thread lock makes W2 wait for W1, so the reader sees W1 then W2.
    Without it (the second case, a deliberately broken adapter) W2 commits first,
    the reader moves past it, and W1, committing late with an earlier time, is
    skipped: the same checks catch it."""
    app = new_app()
    holder = await holder_factory(gated.dsn, app)
    async with PostgresPersistence(
        conninfo=app_dsn(gated.dsn, app), tables=gated.tables(), max_size=4
    ) as adapter:
        if not serialized:
            adapter._q.lock_thread = sql.SQL("SELECT 1").format()
            adapter._single.pause = 10**9  # the one-statement save locks by itself
        await adapter.save_messages("t", [text("start")])
        reader = PollingReader(adapter, "t", "start")
        await holder.hold_gate()
        try:
            w1 = asyncio.create_task(adapter.save_messages("t", [text("gate-w1")]))
            await holder.wait_for(1, gate=True)
            w2 = asyncio.create_task(adapter.save_messages("t", [text("w2")]))
            if serialized:
                await holder.wait_for(2)  # W2 waits for the thread, behind W1
                assert not w2.done()
            else:
                await asyncio.wait_for(w2, timeout=10)
            await reader.read_page()
        finally:
            await holder.open_gate()
        await asyncio.wait_for(asyncio.gather(w1, w2), timeout=10)
        await reader.run(lambda: True)
        listed = await adapter.list_messages("t")
    if serialized:
        assert [m.id for m in listed] == ["start", "gate-w1", "w2"]
        assert [m.id for m in reader.seen] == ["gate-w1", "w2"]
        tally["late commits checked (postgres)"] += 1
    else:
        assert [m.id for m in listed] == ["start", "gate-w1", "w2"]
        assert [m.id for m in reader.seen] == ["w2"], "the broken adapter should skip W1"


@pytest.mark.parametrize("size", [1, 3], ids=["one", "batch"])
@pytest.mark.parametrize("writer_had_an_id", [True, False], ids=["running", "id-after"])
async def test_a_save_in_one_statement_sees_a_writer_that_ends_while_it_waits(
    writer_had_an_id: bool,
    size: int,
    pg_schema: PgSchema,
    pg_tables: dict[str, str],
    holder_factory: HolderFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A save (one message or a batch) is one statement that takes the thread lock
    after its snapshot. A writer holding the lock that commits while the save waits
    is missing from that snapshot; the save must notice (the writer was listed as
    running, or got its transaction id after the snapshot) and place its messages
    after the writer's, here an explicit time an hour ahead, not before it."""
    caplog.set_level(logging.DEBUG, logger="chat_persistence.postgres")
    app = new_app()
    holder = await holder_factory(pg_schema.dsn, app)
    ahead = datetime.now(UTC) + timedelta(hours=1)
    insert = sql.SQL(
        "INSERT INTO {} (thread_id, message_id, role, created_at, parts_json)"
        " VALUES ('t', 'ahead', 'user', %s, '[]')"
    ).format(pg_schema.qualified("chat_messages"))
    async with PostgresPersistence(
        conninfo=app_dsn(pg_schema.dsn, app), tables=pg_tables, max_size=2
    ) as adapter:
        await adapter.save_messages("t", [text("start")])
        assert "saved again" not in caplog.text  # nothing else ran: one statement did
        await holder.hold_thread("t")
        if writer_had_an_id:
            await holder.conn.execute(insert, [ahead])
            # A later transaction ends first, so the snapshot lists the writer as running.
            await holder.watcher.execute("SELECT pg_current_xact_id()")
        late_ids = [f"late{i}" for i in range(size)]
        save = asyncio.create_task(adapter.save_messages("t", [text(i) for i in late_ids]))
        await holder.wait_for(1)
        if not writer_had_an_id:
            await holder.conn.execute(insert, [ahead])
        await holder.conn.execute("COMMIT")
        late = await asyncio.wait_for(save, timeout=10)
        listed = await adapter.list_messages("t")
    assert all(m.created_at is not None and m.created_at > ahead for m in late)
    assert [m.id for m in listed] == ["start", "ahead", *late_ids]
    assert "saved again behind the thread lock" in caplog.text


async def test_writes_to_different_threads_run_in_parallel(
    gated: PgSchema, holder_factory: HolderFactory, tally: Counter[str]
) -> None:
    """Six saves to six threads are all inside the server at once (each holds its
    thread's lock and waits at the gate): nothing in the adapter serializes them.
    A seventh thread, whose lock someone else holds, blocks only its own writer."""
    threads = 6
    app = new_app()
    holder = await holder_factory(gated.dsn, app)
    async with PostgresPersistence(
        conninfo=app_dsn(gated.dsn, app), tables=gated.tables(), max_size=threads + 2
    ) as adapter:
        await holder.hold_gate()
        try:
            calls = [
                asyncio.create_task(adapter.save_messages(f"t{i}", [text(f"gate-{i}")]))
                for i in range(threads)
            ]
            await holder.wait_for(threads, gate=True)
            assert not any(call.done() for call in calls)
        finally:
            await holder.open_gate()
        saved = await asyncio.wait_for(asyncio.gather(*calls), timeout=10)
        assert [[m.id for m in s] for s in saved] == [[f"gate-{i}"] for i in range(threads)]

        await holder.hold_thread("busy")
        try:
            blocked = asyncio.create_task(adapter.save_messages("busy", [text("b")]))
            await holder.wait_for(1)
            free = await asyncio.wait_for(
                asyncio.gather(*(adapter.save_messages(f"t{i}", [text("f")]) for i in range(5))),
                timeout=10,
            )
            assert all(len(f) == 1 for f in free)
            assert not blocked.done()
        finally:
            await holder.release()
        assert [m.id for m in await asyncio.wait_for(blocked, timeout=10)] == ["b"]
    tally["saves to different threads seen in flight at once (postgres)"] += threads


async def test_concurrent_deletes_never_return_a_message_twice(
    pg_schema: PgSchema, pg_tables: dict[str, str], holder_factory: HolderFactory
) -> None:
    """Two ``delete_messages`` calls with overlapping ids both find the rows, wait
    for the lock a third transaction holds on them, then run: every message is
    returned by exactly one of them, as it was, oldest first."""
    app = new_app()
    holder = await holder_factory(pg_schema.dsn, app)
    async with PostgresPersistence(
        conninfo=app_dsn(pg_schema.dsn, app), tables=pg_tables, max_size=4
    ) as adapter:
        saved = await adapter.save_messages("t", [text(f"m{i}") for i in range(6)])
        await holder.conn.execute("BEGIN")
        await holder.conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE thread_id = 't' FOR UPDATE").format(
                pg_schema.qualified("chat_messages")
            )
        )
        try:
            first = asyncio.create_task(
                adapter.delete_messages("t", ["m3", "m0", "m1", "m2", "unknown"])
            )
            second = asyncio.create_task(adapter.delete_messages("t", ["m5", "m2", "m3", "m4"]))
            await holder.wait_for(2)  # both wait for the rows
        finally:
            await holder.release()
        one, other = await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
        assert await adapter.list_messages("t") == []
    ids_one, ids_other = {m.id for m in one}, {m.id for m in other}
    assert not ids_one & ids_other
    assert ids_one | ids_other == {m.id for m in saved}
    assert {"m0", "m1"} <= ids_one
    assert {"m4", "m5"} <= ids_other
    assert one == [m for m in saved if m.id in ids_one]
    assert other == [m for m in saved if m.id in ids_other]
