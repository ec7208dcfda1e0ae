"""The memory backend's own rules: UTC times, named stores, the plugin, the cost of a
page, threads. The rules every backend shares are the contract suite's
(tests/test_contract_memory.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from chat_persistence import (
    Capability,
    ConfigError,
    ConflictError,
    Message,
    PersistenceAdapter,
    Session,
    TextPart,
    create_adapter,
)
from chat_persistence_memory import MemoryOptions, MemoryPersistence
from chat_persistence_memory._store import Key, MessageRow, NewMessage, to_micros

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def msg(
    message_id: str,
    text: str = "hi",
    *,
    role: str = "user",
    session_id: str | None = None,
    created_at: datetime | None = None,
) -> Message:
    return Message(message_id, role, (TextPart(text),), session_id, created_at)


def ids(messages: list[Message]) -> list[str]:
    return [m.id for m in messages]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def adapter() -> AsyncIterator[MemoryPersistence]:
    async with MemoryPersistence(sdk_version="test/1") as opened:
        yield opened


# -- times: UTC, +1 µs after the newest ---------------------------------------------


async def test_times_come_back_in_utc(adapter: MemoryPersistence):
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=plus_two)
    saved = await adapter.save_messages("t", [msg("a", created_at=local), msg("b")])
    session = await adapter.save_session(Session("s", "t", "v", created_at=local))
    listed = await adapter.list_messages("t")
    times = [m.created_at for m in saved + listed]
    times += [session.created_at, session.updated_at]
    assert all(t is not None and t.tzinfo is UTC for t in times)
    assert listed[0].created_at == local


async def test_store_assigned_time_follows_an_explicit_future_time(adapter: MemoryPersistence):
    future = datetime.now(UTC) + timedelta(days=365)
    await adapter.save_messages("t", [msg("future", created_at=future)])
    [later, next_one] = await adapter.save_messages("t", [msg("x"), msg("y")])
    assert later.created_at == future + US
    assert next_one.created_at == future + 2 * US
    assert ids(await adapter.list_messages("t")) == ["future", "x", "y"]


# -- the index: pages cost O(page), not O(thread) ------------------------------------


class _CountingRows(dict[Key, MessageRow]):
    """The thread's row map, counting how many stored entries are read."""

    reads = 0

    def __getitem__(self, key: Key) -> MessageRow:
        self.reads += 1
        return super().__getitem__(key)


class _CountingMemory(MemoryPersistence):
    decoded = 0

    def _message(self, thread_id: str, row: MessageRow) -> Message:
        self.decoded += 1
        return super()._message(thread_id, row)


async def test_pages_of_a_long_thread_touch_only_the_page():
    size = 200_000
    async with _CountingMemory() as adapter:
        part = '[{"type":"text","text":"x"}]'
        start = to_micros(T0)
        # Filled below the public API for speed; every 4th message is in a session
        # that gets archived, so the default listing has entries to skip.
        rows = [
            NewMessage(f"m{i}", "user", part, "old" if i % 4 == 0 else None, start + i)
            for i in range(size)
        ]
        adapter._store.save_messages("t", rows, start)
        await adapter.archive_session("old", thread_id="t")
        await adapter.save_messages("t", [msg("last")])
        thread = adapter._store._threads["t"]
        counting = _CountingRows(thread.rows)
        thread.rows = counting
        adapter.decoded = 0

        newest = await adapter.list_messages("t", limit=50)
        assert newest[-1].id == "last"
        assert len(newest) == 50
        assert counting.reads <= 50 * 4 // 3 + 2
        assert adapter.decoded == 50

        counting.reads = adapter.decoded = 0
        middle = await adapter.list_messages("t", limit=50, before="m100001")
        assert ids(middle)[-1] == "m99999"
        assert len(middle) == 50
        assert counting.reads <= 50 * 4 // 3 + 2
        assert adapter.decoded == 50

        counting.reads = adapter.decoded = 0
        forward = await adapter.list_messages("t", limit=50, after="m100000")
        assert ids(forward)[:3] == ["m100001", "m100002", "m100003"]
        assert counting.reads <= 50 * 4 // 3 + 2

        counting.reads = 0
        archived = await adapter.list_messages("t", session_id="old", limit=20, before="m100001")
        assert ids(archived)[-1] == "m100000"
        assert counting.reads == 20

        counting.reads = 0
        assert await adapter.get_message("t", "m123456") is not None
        assert counting.reads == 1


# -- named stores and capabilities ---------------------------------------------------


async def test_private_stores_are_private():
    async with MemoryPersistence() as one, MemoryPersistence() as two:
        await one.save_messages("t", [msg("a")])
        assert await two.list_messages("t") == []
    assert Capability.DURABLE not in one.capabilities


async def test_named_store_is_shared_and_survives_reopen():
    name = unique("shared")
    writer = MemoryPersistence(store=name)
    assert writer.capabilities == {
        Capability.DURABLE,
        Capability.TIES_IN_SAVE_ORDER,
        Capability.ANY_LOOP,
    }
    async with writer:
        await writer.save_messages("t", [msg("a")])
        async with MemoryPersistence(store=name) as reader:
            assert ids(await reader.list_messages("t")) == ["a"]
    async with create_adapter(f"memory://{name}") as reopened:
        assert ids(await reopened.list_messages("t")) == ["a"]
    async with MemoryPersistence(store=unique("other")) as other:
        assert await other.list_messages("t") == []


async def test_a_private_store_survives_closing_and_reopening_its_adapter():
    memory = MemoryPersistence()
    async with memory:
        await memory.save_messages("t", [msg("a")])
    await memory.open()
    assert ids(await memory.list_messages("t")) == ["a"]
    await memory.aclose()
    assert Capability.DURABLE not in memory.capabilities  # a new adapter would not see it


def test_default_sdk_version_is_the_installed_core_version():
    from importlib.metadata import version

    assert MemoryPersistence().sdk_version == f"chat-persistence/{version('chat-persistence')}"


@pytest.mark.parametrize("bad", ["", "a\x00b", 5])
def test_bad_constructor_options_are_config_errors(bad: Any):
    with pytest.raises(ConfigError) as caught:
        MemoryPersistence(store=bad)
    assert caught.value.option == "store"
    with pytest.raises(ConfigError):
        MemoryPersistence(sdk_version=bad)


# -- the plugin through the registry ------------------------------------------------


async def test_registry_finds_the_memory_backend():
    by_url = create_adapter("memory://")
    by_mapping = create_adapter({"backend": "memory", "sdk_version": "app/2"})
    assert isinstance(by_url, MemoryPersistence)
    assert isinstance(by_mapping, MemoryPersistence)
    assert isinstance(by_url, PersistenceAdapter)
    assert by_url.store_name is None
    assert by_mapping.sdk_version == "app/2"
    async with by_mapping:
        archived = await by_mapping.archive_session("s", thread_id="t")
    assert archived.sdk_version == "app/2"


def test_url_options_reach_the_adapter():
    name = unique("url")
    adapter = create_adapter(f"memory://{name}?sdk_version=host%2F3")
    assert isinstance(adapter, MemoryPersistence)
    assert adapter.store_name == name
    assert adapter.sdk_version == "host/3"
    by_query = create_adapter(f"memory://?store={name}")
    assert isinstance(by_query, MemoryPersistence)
    assert by_query.store_name == name
    from_mapping = create_adapter({"backend": "memory", "store": name})
    assert isinstance(from_mapping, MemoryPersistence)
    assert from_mapping._store is adapter._store


@pytest.mark.parametrize(
    ("config", "option"),
    [
        ("memory://?sdk_versoin=x", "sdk_versoin"),
        ({"backend": "memory", "stor": "x"}, "stor"),
    ],
)
def test_unknown_options_are_named_by_the_registry(config: Any, option: str):
    with pytest.raises(ConfigError) as caught:
        create_adapter(config)
    assert caught.value.option == option
    assert caught.value.backend == "memory"
    assert caught.value.valid == [f.name for f in attrs.fields(MemoryOptions)]
    assert "did you mean" in str(caught.value)


@pytest.mark.parametrize(
    "url", ["memory://a?store=b", "memory://?sdk_version=1&sdk_version=2", "memory://a#frag"]
)
def test_ambiguous_urls_are_config_errors(url: str):
    with pytest.raises(ConfigError):
        create_adapter(url)


def test_the_memory_plugin_never_imports_psycopg():
    # Only the memory plugin is loaded: whether other plugins import cheaply is
    # their own tests' business.
    code = (
        "import sys\n"
        "from chat_persistence import create_adapter\n"
        "adapter = create_adapter('memory://')\n"
        "assert type(adapter).__name__ == 'MemoryPersistence'\n"
        "assert 'psycopg' not in sys.modules, 'psycopg was imported'\n"
    )
    env = {**os.environ, "CHAT_PERSISTENCE_PLUGINS": "memory"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 0, done.stderr


# -- concurrency --------------------------------------------------------------------


async def test_many_tasks_lose_nothing(adapter: MemoryPersistence):
    async def writer(task: int) -> None:
        for i in range(20):
            await adapter.save_messages("t", [msg(f"{task}-{i}-a"), msg(f"{task}-{i}-b")])
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(task) for task in range(50)))
    listed = await adapter.list_messages("t")
    assert len(listed) == 50 * 20 * 2
    times = [m.created_at for m in listed]
    assert len(set(times)) == len(times)
    for task in range(50):
        own = [m.id for m in listed if m.id.startswith(f"{task}-")]
        assert own == [f"{task}-{i}-{x}" for i in range(20) for x in "ab"]


async def test_compare_and_set_has_one_winner_per_version(adapter: MemoryPersistence):
    await adapter.save_session(Session("s", "t", "v", state=0))

    async def increment() -> int:
        conflicts = 0
        while True:
            current = await adapter.get_session("s")
            assert current is not None
            assert isinstance(current.state, int)
            await asyncio.sleep(0)
            try:
                await adapter.save_session(
                    attrs.evolve(current, state=current.state + 1),
                    expected_updated_at=current.updated_at,
                )
            except ConflictError:
                conflicts += 1
                continue
            return conflicts

    conflicts = await asyncio.gather(*(increment() for _ in range(30)))
    final = await adapter.get_session("s")
    assert final is not None
    assert final.state == 30
    assert sum(conflicts) > 0


def test_threads_with_their_own_loops_lose_nothing():
    name = unique("threads")
    workers, tasks, per_task = 4, 10, 25
    start = threading.Barrier(workers)

    async def run_worker(worker: int) -> None:
        async with MemoryPersistence(store=name) as adapter:
            start.wait()

            async def task(n: int) -> None:
                for i in range(per_task):
                    await adapter.save_messages("t", [msg(f"w{worker}-t{n}-{i}")])
                    await adapter.save_session(Session(f"w{worker}-t{n}", "t", "v", state=i))
                    await asyncio.sleep(0)

            await asyncio.gather(*(task(n) for n in range(tasks)))

    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(asyncio.run, run_worker(w)) for w in range(workers)]:
            future.result()

    async def check() -> None:
        async with MemoryPersistence(store=name) as adapter:
            listed = await adapter.list_messages("t")
            assert len(listed) == workers * tasks * per_task
            assert len({m.created_at for m in listed}) == len(listed)
            sessions = await adapter.list_sessions("t")
            assert len(sessions) == workers * tasks
            assert all(s.state == per_task - 1 for s in sessions)
            page = await adapter.list_messages("t", limit=10, before=listed[500].id)
            assert page == listed[490:500]

    asyncio.run(check())
