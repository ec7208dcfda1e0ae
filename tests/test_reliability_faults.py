"""Connection faults against a real PostgreSQL 16 of this module's own: backends
terminated mid-operation, replies and requests lost on the wire, the server
stopped and restarted under a live adapter.

After each fault the next call works on the same adapter; a batch is stored whole
or not at all; idempotent operations are retried so the fault is invisible; the
rest fail with a ``StorageUnavailableError`` whose cause is the driver's error.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import psycopg
import pytest

from chat_persistence import (
    ConfigError,
    Message,
    Session,
    StorageUnavailableError,
    TextPart,
    create_adapter,
)
from chat_persistence_postgres import PostgresPersistence
from chat_persistence_postgres._plugin import postgres_url_options
from chat_persistence_postgres._resilience import RETRY_BACKOFF_CAP, RetryPolicy
from fix_faults import (
    FaultProxy,
    Holder,
    OwnServer,
    app_dsn,
    data_rows,
    install_gate,
    new_app,
)
from fix_pg import PgSchema

HolderFactory = Callable[[str, str], Awaitable[Holder]]
Operation = Callable[[PostgresPersistence], Coroutine[Any, Any, Any]]
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def text(message_id: str, **kwargs: Any) -> Message:
    return Message(message_id, "user", [TextPart(message_id)], **kwargs)


def ids(messages: list[Message]) -> list[str]:
    return [m.id for m in messages]


@pytest.fixture
def app() -> str:
    return new_app()


@pytest.fixture
async def adapter(own_schema: PgSchema, app: str) -> AsyncIterator[PostgresPersistence]:
    """An adapter on the module's own server, retrying twice, quickly."""
    async with PostgresPersistence(
        conninfo=app_dsn(own_schema.dsn, app),
        tables=own_schema.tables(),
        max_size=3,
        retries=2,
        retry_backoff=0.01,
    ) as opened:
        yield opened


@pytest.fixture
async def holder(own_schema: PgSchema, app: str, holder_factory: HolderFactory) -> Holder:
    return await holder_factory(own_schema.dsn, app)


async def seed(adapter: PostgresPersistence) -> list[Message]:
    saved = await adapter.save_messages("t", [text("a"), text("b", session_id="s")])
    await adapter.save_session(Session("s", "t", "v", state={"n": 0}))
    return saved


async def state(adapter: PostgresPersistence) -> tuple[list[Message], list[Session]]:
    return await adapter.list_messages("t"), await adapter.list_sessions("t", include_archived=True)


RETRIED: dict[str, Operation] = {
    "save_messages": lambda a: a.save_messages("t", [text("c"), text("d")]),
    "list_messages": lambda a: a.list_messages("t"),
    "list_messages after": lambda a: a.list_messages("t", after="a", limit=5),
    "get_message": lambda a: a.get_message("t", "b"),
    "save_session": lambda a: a.save_session(Session("s", "t", "v2", state={"n": 1})),
    "get_session": lambda a: a.get_session("s"),
    "list_sessions": lambda a: a.list_sessions("t"),
    "archive_session": lambda a: a.archive_session("s", thread_id="t"),
}


@pytest.mark.parametrize("name", list(RETRIED))
async def test_a_backend_killed_mid_operation_is_retried_invisibly(
    name: str,
    adapter: PostgresPersistence,
    holder: Holder,
    own_schema: PgSchema,
    tally: Counter[str],
) -> None:
    await seed(adapter)
    await holder.hold_tables(
        own_schema.qualified("chat_messages"), own_schema.qualified("chat_sessions")
    )
    call = asyncio.create_task(RETRIED[name](adapter))
    try:
        (first,) = await holder.wait_for(1)
        await holder.terminate(first)
        tally["faults injected: backend terminated mid-operation"] += 1
        # The retry runs on a new connection and waits for the same lock.
        (second,) = await holder.wait_for(1, exclude=first)
        assert second != first
    finally:
        await holder.release()
    result: Any = await asyncio.wait_for(call, timeout=30)
    tally["faults survived: retried, invisible to the caller"] += 1
    messages, sessions = await state(adapter)
    if name == "save_messages":
        assert ids(result) == ["c", "d"]
        assert ids(messages) == ["a", "b", "c", "d"]  # stored once
        assert result == messages[2:]
    elif name.startswith("list_messages"):
        assert ids(result) == ["b"] if "after" in name else ["a", "b"]
    elif name == "get_message":
        assert result == messages[1]
    elif name == "save_session":
        assert result == sessions[0]
        assert result.state == {"n": 1}
    elif name == "archive_session":
        assert result == sessions[0]
        assert result.archived_at is not None
    elif name == "get_session":
        assert result == sessions[0]
    else:
        assert result == sessions
    # The same adapter goes on working.
    assert ids(await adapter.save_messages("t", [text("z")])) == ["z"]


@pytest.mark.parametrize("name", ["delete_thread", "save_session with expected_updated_at"])
async def test_operations_that_are_not_idempotent_fail_typed_and_are_not_retried(
    name: str,
    adapter: PostgresPersistence,
    holder: Holder,
    own_schema: PgSchema,
    tally: Counter[str],
) -> None:
    await seed(adapter)
    before = await state(adapter)
    stored = before[1][0]

    async def operation() -> object:
        if name == "delete_thread":
            return await adapter.delete_thread("t")
        return await adapter.save_session(
            Session("s", "t", "v", state={"n": 1}), expected_updated_at=stored.updated_at
        )

    await holder.hold_tables(
        own_schema.qualified("chat_messages"), own_schema.qualified("chat_sessions")
    )
    call = asyncio.create_task(operation())
    try:
        (pid,) = await holder.wait_for(1)
        await holder.terminate(pid)
        tally["faults injected: backend terminated mid-operation"] += 1
        with pytest.raises(StorageUnavailableError) as err:
            await asyncio.wait_for(call, timeout=30)
        tally["faults surfaced as StorageUnavailableError"] += 1
        assert await holder.waiting() == []  # no second attempt
    finally:
        await holder.release()
    assert isinstance(err.value.__cause__, psycopg.OperationalError)
    assert "not retried" in str(err.value)
    assert "may or may not have been applied" in str(err.value)
    # Killed while it waited for the lock: nothing was applied, and the adapter works.
    assert await state(adapter) == before
    if name == "delete_thread":
        await adapter.delete_thread("t")
        assert await state(adapter) == ([], [])
    else:
        saved = await adapter.save_session(
            Session("s", "t", "v", state={"n": 1}), expected_updated_at=stored.updated_at
        )
        assert saved.state == {"n": 1}


async def test_a_kill_in_the_middle_of_a_batch_stores_all_or_nothing(
    own_schema: PgSchema, app: str, holder: Holder, tally: Counter[str]
) -> None:
    install_gate(own_schema)
    batch = [text("m1"), text("m2"), text("gate-3"), text("m4"), text("m5")]
    dsn = app_dsn(own_schema.dsn, app)
    tables = own_schema.tables()
    async with (
        PostgresPersistence(conninfo=dsn, tables=tables, retries=0) as once,
        PostgresPersistence(conninfo=dsn, tables=tables, retries=2, retry_backoff=0.01) as twice,
    ):
        seeded = await once.save_messages("t", [text("a")])
        await holder.hold_gate()
        try:
            # Without retries: m1 and m2 are inserted, gate-3 waits; the kill loses all.
            call = asyncio.create_task(once.save_messages("t", batch))
            (pid,) = await holder.wait_for(1, gate=True)
            await holder.terminate(pid)
            tally["faults injected: backend terminated mid-batch"] += 1
            with pytest.raises(StorageUnavailableError) as err:
                await asyncio.wait_for(call, timeout=30)
            tally["faults surfaced as StorageUnavailableError"] += 1
            assert isinstance(err.value.__cause__, psycopg.OperationalError)
            assert await once.list_messages("t") == seeded

            # With retries: the same fault, then the whole batch, once.
            call = asyncio.create_task(twice.save_messages("t", batch))
            (pid,) = await holder.wait_for(1, gate=True)
            await holder.terminate(pid)
            tally["faults injected: backend terminated mid-batch"] += 1
            await holder.wait_for(1, gate=True, exclude=pid)
        finally:
            await holder.open_gate()
        saved = await asyncio.wait_for(call, timeout=30)
        tally["faults survived: retried, invisible to the caller"] += 1
    async with PostgresPersistence(conninfo=dsn, tables=tables) as check:
        listed = await check.list_messages("t")
    assert ids(listed) == ["a", *ids(batch)]
    assert listed[1:] == saved
    times = [m.created_at for m in listed]
    assert all(x is not None and y is not None and x < y for x, y in pairwise(times))


@pytest.fixture
async def proxied(fault_proxy: FaultProxy, own_schema: PgSchema) -> AsyncIterator[Any]:
    """An adapter whose one connection goes through the fault proxy."""
    async with PostgresPersistence(
        conninfo=fault_proxy.dsn,
        tables=own_schema.tables(),
        min_size=1,
        max_size=1,
        retries=2,
        retry_backoff=0.01,
    ) as adapter:
        yield adapter


async def test_a_reply_lost_after_the_commit_keeps_the_assigned_times(
    proxied: PostgresPersistence, fault_proxy: FaultProxy, tally: Counter[str]
) -> None:
    await proxied.save_messages("t", [text("a")])
    lost = fault_proxy.lose_next_reply()
    saved = await proxied.save_messages("t", [text("b"), text("c"), text("d")])
    tally["faults injected: reply lost after commit"] += 1
    tally["faults survived: retried, invisible to the caller"] += 1
    swallowed = lost.result()
    assert b"INSERT 0 3\x00" in b"".join(m for m in swallowed if m[:1] == b"C")
    # The first attempt committed these times; its reply never arrived. The retry
    # re-saved the same rows, which keep the created_at they were given.
    committed: dict[str, datetime] = {}
    for row in data_rows(swallowed):
        if len(row) == 2 and row[0] is not None and row[1] is not None:
            micros = int.from_bytes(row[1], "big", signed=True)
            committed[row[0].decode()] = PG_EPOCH + timedelta(microseconds=micros)
    assert committed == {m.id: m.created_at for m in saved}
    listed = await proxied.list_messages("t")
    assert ids(listed) == ["a", "b", "c", "d"]
    assert listed[1:] == saved


READS_AND_UPSERTS: dict[str, Operation] = {
    "list_messages": lambda a: a.list_messages("t"),
    "get_session": lambda a: a.get_session("s"),
    "save_session": lambda a: a.save_session(Session("s", "t", "v2", state={"n": 2})),
    "archive_session": lambda a: a.archive_session("s", thread_id="t"),
    "validate_schema": lambda a: a.validate_schema(),
}


@pytest.mark.parametrize("loss", ["request", "reply"])
@pytest.mark.parametrize("name", list(READS_AND_UPSERTS))
async def test_reads_and_upserts_survive_a_lost_request_or_reply(
    name: str,
    loss: str,
    proxied: PostgresPersistence,
    fault_proxy: FaultProxy,
    tally: Counter[str],
) -> None:
    await seed(proxied)
    lost = fault_proxy.lose_next_request() if loss == "request" else fault_proxy.lose_next_reply()
    result: Any = await READS_AND_UPSERTS[name](proxied)
    assert lost.done()
    tally[f"faults injected: {loss} lost"] += 1
    tally["faults survived: retried, invisible to the caller"] += 1
    assert fault_proxy.accepted == 2  # the lost connection, and its replacement
    messages, sessions = await state(proxied)
    if name == "list_messages":
        assert result == messages
    elif name == "validate_schema":
        assert result is None
    else:
        assert result == sessions[0]
    if name == "archive_session" and loss == "reply":
        # Archived by the lost attempt; the retry found it archived and kept it so.
        assert isinstance(result, Session)
        assert result.archived_at is not None
        assert result.updated_at == result.archived_at


async def test_a_compare_and_set_whose_reply_is_lost_is_reported_not_repeated(
    proxied: PostgresPersistence, fault_proxy: FaultProxy, tally: Counter[str]
) -> None:
    await seed(proxied)
    stored = await proxied.get_session("s")
    assert stored is not None
    new = Session("s", "t", "v", state={"n": 1})
    fault_proxy.lose_next_request()
    with pytest.raises(StorageUnavailableError, match="may or may not have been applied") as err:
        await proxied.save_session(new, expected_updated_at=stored.updated_at)
    assert isinstance(err.value.__cause__, psycopg.OperationalError)
    assert await proxied.get_session("s") == stored  # the request never arrived
    fault_proxy.lose_next_reply()
    with pytest.raises(StorageUnavailableError, match="may or may not have been applied"):
        await proxied.save_session(new, expected_updated_at=stored.updated_at)
    tally["faults injected: request lost"] += 1
    tally["faults injected: reply lost after commit"] += 1
    tally["faults surfaced as StorageUnavailableError"] += 2
    # This time it was applied: the caller reads again to learn so, as the error says.
    after = await proxied.get_session("s")
    assert after is not None
    assert after.state == {"n": 1}
    assert after.updated_at != stored.updated_at


async def test_the_server_stops_and_restarts_under_a_live_adapter(
    own_pg: OwnServer, own_schema: PgSchema, app: str, tally: Counter[str]
) -> None:
    async with PostgresPersistence(
        conninfo=app_dsn(own_schema.dsn, app),
        tables=own_schema.tables(),
        max_size=3,
        pool_timeout=1.5,
        retries=2,
        retry_backoff=0.01,
    ) as adapter:
        saved = await adapter.save_messages("t", [text("a"), text("b")])
        own_pg.stop()
        tally["faults injected: server stopped and restarted"] += 1
        try:
            with pytest.raises(StorageUnavailableError) as err:
                await adapter.list_messages("t")
            assert isinstance(err.value.__cause__, psycopg.OperationalError)
            assert "pool_timeout=1.5" in str(err.value)
            with pytest.raises(StorageUnavailableError):
                await adapter.save_messages("t", [text("lost-1"), text("lost-2")])
            tally["faults surfaced as StorageUnavailableError"] += 2
        finally:
            own_pg.start()
        # The same adapter, no reopening: the pool reconnects, nothing half-written.
        assert await adapter.list_messages("t") == saved
        assert ids(await adapter.save_messages("t", [text("c")])) == ["c"]
        assert ids(await adapter.list_messages("t")) == ["a", "b", "c"]


async def test_a_restart_between_calls_costs_no_retry(
    own_pg: OwnServer,
    own_schema: PgSchema,
    app: str,
    caplog: pytest.LogCaptureFixture,
    tally: Counter[str],
) -> None:
    async with PostgresPersistence(
        conninfo=app_dsn(own_schema.dsn, app),
        tables=own_schema.tables(),
        min_size=3,
        max_size=3,
        retries=0,  # any connection error would surface
    ) as adapter:
        saved = await adapter.save_messages("t", [text("a")])
        own_pg.stop()
        own_pg.start()
        tally["faults injected: server stopped and restarted"] += 1
        with caplog.at_level(logging.INFO, logger="chat_persistence.postgres"):
            # Three idle connections died; each is found dead without a round trip.
            results = await asyncio.gather(*(adapter.list_messages("t") for _ in range(3)))
        tally["faults survived: retried, invisible to the caller"] += 1
        assert results == [saved] * 3
        discarded = [r for r in caplog.records if "died while idle" in r.getMessage()]
        assert discarded, "the dead connections were not noticed before use"
        assert not [r for r in caplog.records if "connection lost" in r.getMessage()]


async def test_a_restart_shorter_than_pool_timeout_is_invisible(
    own_pg: OwnServer, own_schema: PgSchema, app: str, tally: Counter[str]
) -> None:
    async with PostgresPersistence(
        conninfo=app_dsn(own_schema.dsn, app),
        tables=own_schema.tables(),
        pool_timeout=15,
    ) as adapter:
        saved = await adapter.save_messages("t", [text("a")])
        pool = adapter._pool
        assert pool is not None
        own_pg.stop()
        tally["faults injected: server stopped and restarted"] += 1
        try:
            call = asyncio.create_task(adapter.list_messages("t"))
            for _ in range(2000):
                if pool.get_stats().get("requests_waiting", 0) or call.done():
                    break
                await asyncio.sleep(0.01)
            assert not call.done()
        finally:
            own_pg.start()
        assert await asyncio.wait_for(call, timeout=30) == saved
        tally["faults survived: retried, invisible to the caller"] += 1


def test_retry_options() -> None:
    options = postgres_url_options("postgresql://h/db?retries=5&retry_backoff=0.2&pool_timeout=3")
    assert options == {
        "conninfo": "postgresql://h/db",
        "retries": "5",
        "retry_backoff": "0.2",
        "pool_timeout": "3",
    }
    adapter = create_adapter("postgresql://h/db?retries=0&retry_backoff=0&pool_timeout=0.5")
    assert isinstance(adapter, PostgresPersistence)
    assert adapter.retry == RetryPolicy(retries=0, backoff=0.0)
    assert adapter.pool_timeout == 0.5
    defaults = PostgresPersistence(conninfo="dbname=x")
    assert defaults.retry == RetryPolicy(retries=2, backoff=0.05)
    bad_retries: list[Any] = [-1, 1.5, True]
    for retries in bad_retries:
        with pytest.raises(ConfigError) as err:
            PostgresPersistence(conninfo="dbname=x", retries=retries)
        assert err.value.option == "retries"
    for option, value in (
        ("retry_backoff", -1),
        ("retry_backoff", float("nan")),
        ("pool_timeout", 0),
        ("pool_timeout", float("inf")),
    ):
        wrong: dict[str, Any] = {option: value}
        with pytest.raises(ConfigError) as err:
            PostgresPersistence(conninfo="dbname=x", **wrong)
        assert err.value.option == option
    with pytest.raises(ConfigError):
        create_adapter("postgresql://h/db?retries=many")


def test_retry_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(retries=20, backoff=0.1)
    for retry in range(1, 21):
        ceiling = min(RETRY_BACKOFF_CAP, 0.1 * 2 ** (retry - 1))
        delays = {policy.delay(retry) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
    assert RetryPolicy(retries=1, backoff=0).delay(1) == 0
