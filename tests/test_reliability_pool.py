"""Pool pressure on PostgreSQL 16: more concurrent callers than connections wait
up to ``pool_timeout``, then fail with a ``StorageUnavailableError`` that names the
option; nothing deadlocks, and the pool serves again once connections come back."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from psycopg_pool import PoolTimeout

from chat_persistence import Message, Session, StorageUnavailableError, TextPart
from chat_persistence_postgres import PostgresPersistence
from fix_faults import Holder, app_dsn, install_gate, new_app
from fix_pg import PgSchema

HolderFactory = Callable[[str, str], Awaitable[Holder]]


def text(message_id: str) -> Message:
    return Message(message_id, "user", [TextPart(message_id)])


@pytest.fixture
def gated(pg_schema: PgSchema, pg_tables: dict[str, str]) -> PgSchema:
    install_gate(pg_schema)
    return pg_schema


async def test_callers_beyond_the_pool_wait_then_fail_typed_and_the_pool_recovers(
    gated: PgSchema, holder_factory: HolderFactory, tally: Counter[str]
) -> None:
    app = new_app()
    holder = await holder_factory(gated.dsn, app)
    timeout = 0.5
    async with PostgresPersistence(
        conninfo=app_dsn(gated.dsn, app),
        tables=gated.tables(),
        min_size=2,
        max_size=2,
        pool_timeout=timeout,
    ) as adapter:
        await adapter.save_session(Session("s", "t", "v"))
        await holder.hold_gate()
        try:
            # Both connections are taken by saves held at the gate.
            held = [
                asyncio.create_task(adapter.save_messages(f"t{i}", [text(f"gate-{i}")]))
                for i in range(2)
            ]
            await holder.wait_for(2, gate=True)
            for call in (
                lambda: adapter.get_session("s"),
                lambda: adapter.save_messages("t", [text("x")]),  # retried ops too: no retry
            ):
                started = time.monotonic()
                with pytest.raises(StorageUnavailableError) as err:
                    await call()
                waited = time.monotonic() - started
                assert timeout <= waited < timeout * 4 + 1
                assert isinstance(err.value.__cause__, PoolTimeout)
                message = str(err.value)
                assert "pool_timeout=0.5" in message
                assert "max_size=2" in message
                tally["pool timeouts surfaced as StorageUnavailableError"] += 1
            assert not any(call.done() for call in held)
        finally:
            await holder.open_gate()
        saved = await asyncio.wait_for(asyncio.gather(*held), timeout=10)
        assert [m.id for s in saved for m in s] == ["gate-0", "gate-1"]
        # The pool is whole again: the same adapter serves every call.
        assert await adapter.get_session("s") is not None
        assert [m.id for m in await adapter.save_messages("t", [text("y")])] == ["y"]
        assert adapter.pool_timeout == timeout
        assert await adapter.list_messages("t") == await adapter.list_messages("t", limit=5)


async def test_many_more_callers_than_connections_all_complete(
    pg_schema: PgSchema, pg_tables: dict[str, str], tally: Counter[str]
) -> None:
    """Sixty callers on two connections: saves that contend for the same threads'
    locks, reads and session writes, with nothing held across the pool: no
    deadlock, every call completes, every message is stored once."""
    callers = 60
    async with PostgresPersistence(
        conninfo=pg_schema.dsn, tables=pg_tables, min_size=2, max_size=2, pool_timeout=30
    ) as adapter:

        async def caller(i: int) -> object:
            kind = i % 4
            if kind == 0:
                return await adapter.list_messages(f"t{i % 3}", limit=5)
            if kind == 1:
                return await adapter.save_session(Session(f"s{i % 5}", "t0", "v"))
            return await adapter.save_messages(f"t{i % 3}", [text(f"m{i}"), text(f"n{i}")])

        results = await asyncio.wait_for(
            asyncio.gather(*(caller(i) for i in range(callers))), timeout=60
        )
        assert len(results) == callers
        stored = [m.id for t in range(3) for m in await adapter.list_messages(f"t{t}")]
        written = [f"{p}{i}" for i in range(callers) if i % 4 >= 2 for p in "mn"]
        assert sorted(stored) == sorted(written)
        pool = adapter._pool
        assert pool is not None
        assert pool.get_stats().get("requests_waiting", 0) == 0
    tally["concurrent callers on a pool of 2 (postgres)"] += callers
