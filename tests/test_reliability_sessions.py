"""Sessions under concurrent writers: ``save_session(..., expected_updated_at=...)``
is a compare-and-set, so of many workers that read, change and save, every lost
race raises ``ConflictError`` and no update is silently overwritten."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from chat_persistence import ConflictError, PersistenceAdapter, Session
from chat_persistence_memory import MemoryPersistence
from chat_persistence_postgres import PostgresPersistence
from chat_persistence_sqlite import SqlitePersistence
from fix_pg import PgSchema

WORKERS = 8
ROUNDS = 15


@attrs.define
class Ledger:
    """What the workers did: the values their successful saves wrote, and how many
    races they lost."""

    written: list[int] = attrs.field(factory=list)
    stamps: list[datetime] = attrs.field(factory=list)
    conflicts: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock)


async def increment(adapter: PersistenceAdapter, ledger: Ledger, rounds: int) -> None:
    """Read the counter, yield to the others, save counter + 1 with the
    ``updated_at`` that was read; a lost race is a ConflictError, anything else fails."""
    for _ in range(rounds):
        current = await adapter.get_session("s")
        assert current is not None
        await asyncio.sleep(0)  # let the others read the same value
        state: Any = current.state
        value = state["n"] + 1
        lost: ConflictError | None = None
        saved: Session | None = None
        try:
            saved = await adapter.save_session(
                Session("s", "t", "v", state={"n": value}), expected_updated_at=current.updated_at
            )
        except ConflictError as err:
            lost = err
        if lost is not None:
            assert lost.session_id == "s"
            assert lost.expected == current.updated_at
            with ledger.lock:
                ledger.conflicts += 1
            continue
        assert saved is not None
        assert saved.updated_at is not None
        with ledger.lock:
            ledger.written.append(value)
            ledger.stamps.append(saved.updated_at)


async def check(adapter: PersistenceAdapter, ledger: Ledger, attempts: int) -> None:
    final = await adapter.get_session("s")
    assert final is not None
    assert final.state == {"n": len(ledger.written)}, "an update was silently overwritten"
    # Each successful save wrote the next value, exactly once.
    assert sorted(ledger.written) == list(range(1, len(ledger.written) + 1))
    assert len(set(ledger.stamps)) == len(ledger.stamps)
    assert len(ledger.written) + ledger.conflicts == attempts
    assert ledger.conflicts > 0, "the workers never raced: the test proves nothing"


@pytest.fixture(params=["memory", "postgres", "sqlite"])
async def adapter(
    request: pytest.FixtureRequest,
) -> AsyncIterator[PersistenceAdapter]:
    if request.param == "memory":
        async with MemoryPersistence() as memory:
            yield memory
        return
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("sqlite_path")
        async with SqlitePersistence(path=str(path)) as lite:
            yield lite
        return
    schema: PgSchema = request.getfixturevalue("pg_schema")
    tables: dict[str, str] = request.getfixturevalue("pg_tables")
    async with PostgresPersistence(
        conninfo=schema.dsn, tables=tables, max_size=WORKERS
    ) as postgres:
        yield postgres


async def test_compare_and_set_under_concurrent_workers(
    adapter: PersistenceAdapter, tally: Counter[str]
) -> None:
    await adapter.save_session(Session("s", "t", "v", state={"n": 0}))
    ledger = Ledger()
    await asyncio.gather(*(increment(adapter, ledger, ROUNDS) for _ in range(WORKERS)))
    await check(adapter, ledger, WORKERS * ROUNDS)
    name = "postgres" if isinstance(adapter, PostgresPersistence) else "memory"
    name = "sqlite" if isinstance(adapter, SqlitePersistence) else name
    tally[f"session compare-and-set attempts ({name})"] += WORKERS * ROUNDS
    tally[f"session conflicts raised ({name})"] += ledger.conflicts


def test_compare_and_set_across_os_threads_memory(tally: Counter[str]) -> None:
    """The memory store's compare-and-set is atomic across threads too."""
    adapter = MemoryPersistence()
    asyncio.run(adapter.open())
    asyncio.run(adapter.save_session(Session("s", "t", "v", state={"n": 0})))
    ledger = Ledger()

    def worker() -> None:
        asyncio.run(increment(adapter, ledger, ROUNDS))

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for future in [pool.submit(worker) for _ in range(WORKERS)]:
            future.result(timeout=60)
    # Threads may not race (the store is fast): check all but the race count.
    final = asyncio.run(adapter.get_session("s"))
    assert final is not None
    assert final.state == {"n": len(ledger.written)}
    assert sorted(ledger.written) == list(range(1, len(ledger.written) + 1))
    assert len(ledger.written) + ledger.conflicts == WORKERS * ROUNDS
    tally["session compare-and-set attempts (memory, OS threads)"] += WORKERS * ROUNDS


class ReadThenWrite(MemoryPersistence):
    """A broken compare-and-set: checks, yields, then writes unconditionally."""

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        current = await self.get_session(session.id)
        if expected_updated_at is not None and (
            current is None or current.updated_at != expected_updated_at
        ):
            raise ConflictError(session.id, expected=expected_updated_at, actual=None)
        await asyncio.sleep(0)
        return await super().save_session(session)


async def test_the_check_catches_a_compare_and_set_that_is_not_atomic() -> None:
    async with ReadThenWrite() as broken:
        await broken.save_session(Session("s", "t", "v", state={"n": 0}))
        ledger = Ledger()
        await asyncio.gather(*(increment(broken, ledger, ROUNDS) for _ in range(WORKERS)))
        with pytest.raises(AssertionError, match="silently overwritten"):
            await check(broken, ledger, WORKERS * ROUNDS)
