"""The memory backend: its own rules (named stores, plugin, index cost, threads) and
the main adapter rules, checked directly so the backend stands on its own."""

from __future__ import annotations

import asyncio
import itertools
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
    AdapterNotOpenError,
    Capability,
    ConfigError,
    ConflictError,
    DataPart,
    InvalidArgumentError,
    InvalidMessageError,
    Message,
    NotFoundError,
    PersistenceAdapter,
    Session,
    TextPart,
    ToolCallPart,
    UnknownPart,
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


# -- ordering and created_at --------------------------------------------------------


async def test_store_assigned_times_increase_across_and_within_batches(
    adapter: MemoryPersistence,
):
    first = await adapter.save_messages("t", [msg("a"), msg("b"), msg("c")])
    second = await adapter.save_messages("t", [msg("d")])
    times = [m.created_at for m in first + second if m.created_at is not None]
    assert len(times) == 4
    assert all(t.tzinfo is UTC for t in times)
    assert times == sorted(times)
    assert len(set(times)) == 4
    assert ids(await adapter.list_messages("t")) == ["a", "b", "c", "d"]


async def test_store_assigned_time_follows_an_explicit_future_time(adapter: MemoryPersistence):
    future = datetime.now(UTC) + timedelta(days=365)
    await adapter.save_messages("t", [msg("future", created_at=future)])
    [later, next_one] = await adapter.save_messages("t", [msg("x"), msg("y")])
    assert later.created_at == future + US
    assert next_one.created_at == future + 2 * US
    assert ids(await adapter.list_messages("t")) == ["future", "x", "y"]


async def test_ties_list_in_save_order_not_by_id(adapter: MemoryPersistence):
    assert Capability.TIES_IN_SAVE_ORDER in adapter.capabilities
    await adapter.save_messages("t", [msg("z", created_at=T0), msg("b", created_at=T0)])
    await adapter.save_messages("t", [msg("a", created_at=T0), msg("early", created_at=T0 - US)])
    assert ids(await adapter.list_messages("t")) == ["early", "z", "b", "a"]


async def test_explicit_times_are_returned_in_utc(adapter: MemoryPersistence):
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=plus_two)
    [saved] = await adapter.save_messages("t", [msg("a", created_at=local)])
    assert saved.created_at == local
    assert saved.created_at is not None
    assert saved.created_at.utcoffset() == timedelta(0)
    got = await adapter.get_message("t", "a")
    assert got is not None
    assert got.created_at == local


# -- upsert -------------------------------------------------------------------------


async def test_resave_updates_content_and_keeps_position(adapter: MemoryPersistence):
    await adapter.save_messages("t", [msg("a"), msg("b", "old", session_id="s1"), msg("c")])
    before = await adapter.get_message("t", "b")
    assert before is not None
    [stored] = await adapter.save_messages(
        "t",
        [msg("b", "new", role="assistant", session_id="s2", created_at=T0 + timedelta(days=9999))],
    )
    assert stored.created_at == before.created_at
    assert stored == Message("b", "assistant", (TextPart("new"),), "s2", before.created_at)
    assert ids(await adapter.list_messages("t")) == ["a", "b", "c"]
    assert await adapter.list_messages("t", session_id="s1") == []
    assert ids(await adapter.list_messages("t", session_id="s2")) == ["b"]


async def test_batch_mixing_new_and_existing_returns_all_in_batch_order(
    adapter: MemoryPersistence,
):
    await adapter.save_messages("t", [msg("a", created_at=T0)])
    result = await adapter.save_messages("t", [msg("new"), msg("a", "edited")])
    assert ids(result) == ["new", "a"]
    assert result[1].created_at == T0
    assert result[0].created_at is not None
    assert result[0].created_at > T0


async def test_same_id_in_two_threads_is_two_messages(adapter: MemoryPersistence):
    await adapter.save_messages("t1", [msg("a", "one")])
    await adapter.save_messages("t2", [msg("a", "two")])
    one = await adapter.get_message("t1", "a")
    two = await adapter.get_message("t2", "a")
    assert one is not None
    assert one.parts == (TextPart("one"),)
    assert two is not None
    assert two.parts == (TextPart("two"),)
    assert await adapter.get_message("t3", "a") is None


# -- atomicity ----------------------------------------------------------------------


async def test_a_failing_batch_writes_nothing(adapter: MemoryPersistence):
    await adapter.save_messages("t", [msg("keep", "original")])
    with attrs.validators.disabled():
        broken = Message("bad", "", (TextPart("x"),))
    batch = [msg("keep", "changed"), msg("fresh"), broken]
    with pytest.raises(InvalidMessageError) as caught:
        await adapter.save_messages("t", batch)
    assert caught.value.message_id == "bad"
    assert ids(await adapter.list_messages("t")) == ["keep"]
    kept = await adapter.get_message("t", "keep")
    assert kept is not None
    assert kept.parts == (TextPart("original"),)
    with pytest.raises(InvalidMessageError):
        await adapter.save_messages("t", [msg("dup"), msg("dup")])
    assert await adapter.get_message("t", "dup") is None


async def test_a_batch_that_cannot_get_timestamps_writes_nothing(adapter: MemoryPersistence):
    last = datetime.max.replace(tzinfo=UTC)
    await adapter.save_messages("t", [msg("end", created_at=last)])
    with pytest.raises(InvalidMessageError) as caught:
        await adapter.save_messages("t", [msg("x", created_at=T0), msg("y")])
    assert caught.value.message_id == "y"
    assert ids(await adapter.list_messages("t")) == ["end"]
    west = timezone(timedelta(hours=-5))
    with pytest.raises(InvalidMessageError):
        await adapter.save_messages("u", [msg("far", created_at=datetime.max.replace(tzinfo=west))])
    assert await adapter.list_messages("u") == []


# -- aliasing -----------------------------------------------------------------------


async def test_nothing_passed_in_or_returned_aliases_the_store(adapter: MemoryPersistence):
    payload: dict[str, Any] = {"args": [1, 2], "nested": {"k": "v"}}
    extra: dict[str, Any] = {"meta": {"x": 1}}
    call = Message("m", "assistant", (ToolCallPart("c1", "search", payload, extra=extra),))
    [returned] = await adapter.save_messages("t", [call])
    payload["args"].append(3)
    extra["meta"]["x"] = 2
    returned_part = returned.parts[0]
    assert isinstance(returned_part, ToolCallPart)
    assert isinstance(returned_part.input, dict)
    returned_part.input["nested"] = "mutated"
    returned_part.extra["meta"] = None
    listed = (await adapter.list_messages("t"))[0].parts[0]
    assert isinstance(listed, ToolCallPart)
    listed.extra.clear()
    got = await adapter.get_message("t", "m")
    assert got is not None
    assert got.parts == (
        ToolCallPart(
            "c1", "search", {"args": [1, 2], "nested": {"k": "v"}}, extra={"meta": {"x": 1}}
        ),
    )

    state: dict[str, Any] = {"turn": 1, "list": [1]}
    session = await adapter.save_session(Session("s", "t", "v", state=state, metadata={"a": [1]}))
    state["list"].append(2)
    assert isinstance(session.metadata, dict)
    session.metadata["a"] = "changed"
    stored = await adapter.get_session("s")
    assert stored is not None
    assert stored.state == {"turn": 1, "list": [1]}
    assert stored.metadata == {"a": [1]}


async def test_unknown_and_data_parts_round_trip(adapter: MemoryPersistence):
    parts = (
        UnknownPart({"type": "future-thing", "payload": [1.5, None, True]}),
        DataPart({"rows": [{"a": 1}]}, name="table"),
    )
    await adapter.save_messages("t", [Message("m", "tool", parts)])
    got = await adapter.get_message("t", "m")
    assert got is not None
    assert got.parts == parts


# -- archive rules ------------------------------------------------------------------


async def test_default_listing_hides_archived_sessions_only(adapter: MemoryPersistence):
    await adapter.save_messages(
        "t",
        [
            msg("loose"),
            msg("live", session_id="live"),
            msg("old", session_id="old"),
            msg("no-row", session_id="never-saved"),
        ],
    )
    await adapter.save_session(Session("live", "t", "v"))
    await adapter.save_session(Session("old", "t", "v"))
    await adapter.archive_session("old", thread_id="t")
    assert ids(await adapter.list_messages("t")) == ["loose", "live", "no-row"]
    assert ids(await adapter.list_messages("t", session_id="old")) == ["old"]
    assert ids(await adapter.list_messages("t", session_id="live")) == ["live"]


async def test_archive_creates_a_missing_session_with_the_adapter_sdk_version(
    adapter: MemoryPersistence,
):
    archived = await adapter.archive_session("s", thread_id="t")
    assert archived.sdk_version == "test/1"
    assert archived.thread_id == "t"
    assert archived.state is None
    assert archived.metadata is None
    assert archived.archived_at is not None
    assert archived.created_at == archived.updated_at == archived.archived_at
    assert await adapter.get_session("s") == archived


async def test_archive_keeps_the_first_archived_at_and_the_stored_thread(
    adapter: MemoryPersistence,
):
    saved = await adapter.save_session(Session("s", "t", "v", state={"n": 1}))
    first = await adapter.archive_session("s", thread_id="other-thread")
    assert first.thread_id == "t"
    assert first.state == {"n": 1}
    assert first.archived_at is not None
    assert saved.updated_at is not None
    assert first.updated_at is not None
    assert first.updated_at > saved.updated_at
    again = await adapter.archive_session("s", thread_id="t")
    assert again == first
    resaved = await adapter.save_session(Session("s", "t", "v2", archived_at=None))
    assert resaved.archived_at == first.archived_at
    assert resaved.sdk_version == "v2"


async def test_list_sessions_order_and_archived_filter(adapter: MemoryPersistence):
    await adapter.save_session(Session("b", "t", "v", created_at=T0))
    await adapter.save_session(Session("a", "t", "v", created_at=T0))
    await adapter.save_session(Session("first", "t", "v", created_at=T0 - US))
    await adapter.save_session(Session("elsewhere", "t2", "v"))
    await adapter.archive_session("b", thread_id="t")
    assert [s.id for s in await adapter.list_sessions("t")] == ["first", "a"]
    listed = await adapter.list_sessions("t", include_archived=True)
    assert [s.id for s in listed] == ["first", "a", "b"]
    moved = await adapter.save_session(Session("a", "t2", "v"))
    assert moved.created_at == T0
    assert [s.id for s in await adapter.list_sessions("t2")] == ["a", "elsewhere"]


# -- sessions -----------------------------------------------------------------------


async def test_save_session_timestamps_and_compare_and_set(adapter: MemoryPersistence):
    created = await adapter.save_session(
        Session("s", "t", "v", created_at=T0, updated_at=T0, archived_at=T0)
    )
    assert created.created_at == T0
    assert created.archived_at is None
    assert created.updated_at is not None
    assert created.updated_at != T0
    updated = await adapter.save_session(
        Session("s", "t", "v", state={"step": 2}, created_at=T0 + US),
        expected_updated_at=created.updated_at,
    )
    assert updated.created_at == T0
    assert updated.updated_at is not None
    assert updated.updated_at > created.updated_at
    with pytest.raises(ConflictError) as caught:
        await adapter.save_session(
            Session("s", "t", "v", state={"step": 3}), expected_updated_at=created.updated_at
        )
    assert caught.value.actual == updated.updated_at
    assert caught.value.expected == created.updated_at
    assert await adapter.get_session("s") == updated
    with pytest.raises(ConflictError) as missing:
        await adapter.save_session(Session("nope", "t", "v"), expected_updated_at=T0)
    assert missing.value.actual is None
    assert await adapter.get_session("nope") is None
    with pytest.raises(InvalidArgumentError):
        await adapter.save_session(
            Session("s", "t", "v"),
            expected_updated_at=datetime(2024, 1, 1),
        )


async def test_updated_at_strictly_increases_on_rapid_saves(adapter: MemoryPersistence):
    stamps: list[datetime] = []
    for step in range(200):
        saved = await adapter.save_session(Session("s", "t", "v", state=step))
        assert saved.updated_at is not None
        stamps.append(saved.updated_at)
    assert all(a < b for a, b in itertools.pairwise(stamps))


async def test_delete_thread_drops_its_messages_and_sessions(adapter: MemoryPersistence):
    await adapter.save_messages("t", [msg("a", session_id="s")])
    await adapter.save_messages("keep", [msg("b", session_id="s")])
    await adapter.save_session(Session("s", "t", "v"))
    await adapter.save_session(Session("other", "keep", "v"))
    await adapter.archive_session("s", thread_id="t")
    assert await adapter.list_messages("keep") == []
    await adapter.delete_thread("t")
    await adapter.delete_thread("never-existed")
    assert await adapter.list_messages("t") == []
    assert await adapter.get_session("s") is None
    assert await adapter.get_session("other") is not None
    # Its session row is gone, so the other thread's message is visible again.
    assert ids(await adapter.list_messages("keep")) == ["b"]


# -- paging -------------------------------------------------------------------------


@pytest.fixture
async def ten(adapter: MemoryPersistence) -> MemoryPersistence:
    await adapter.save_messages("t", [msg(f"m{i}") for i in range(10)])
    return adapter


async def test_limit_keeps_the_newest_oldest_first(ten: MemoryPersistence):
    assert ids(await ten.list_messages("t", limit=3)) == ["m7", "m8", "m9"]
    assert ids(await ten.list_messages("t", limit=50)) == [f"m{i}" for i in range(10)]
    assert await ten.list_messages("t", limit=0) == []
    with pytest.raises(InvalidArgumentError):
        await ten.list_messages("t", limit=-1)


async def test_cursors(ten: MemoryPersistence):
    assert ids(await ten.list_messages("t", before="m3")) == ["m0", "m1", "m2"]
    assert ids(await ten.list_messages("t", before="m5", limit=2)) == ["m3", "m4"]
    assert ids(await ten.list_messages("t", after="m7")) == ["m8", "m9"]
    assert ids(await ten.list_messages("t", after="m2", limit=2)) == ["m3", "m4"]
    assert ids(await ten.list_messages("t", after="m2", before="m8", limit=3)) == [
        "m3",
        "m4",
        "m5",
    ]
    assert ids(await ten.list_messages("t", after="m2", before="m5")) == ["m3", "m4"]
    assert await ten.list_messages("t", after="m6", before="m3") == []
    assert await ten.list_messages("t", before="m0") == []
    assert await ten.list_messages("t", after="m9", limit=5) == []


async def test_unknown_cursor_is_not_found(ten: MemoryPersistence):
    with pytest.raises(NotFoundError) as caught:
        await ten.list_messages("t", before="missing", limit=3)
    assert caught.value.key == "missing"
    assert caught.value.thread_id == "t"
    with pytest.raises(NotFoundError):
        await ten.list_messages("t", after="missing", limit=0)
    with pytest.raises(NotFoundError):
        await ten.list_messages("other-thread", after="m1")


async def test_paging_backwards_and_forwards_visits_each_message_once(
    adapter: MemoryPersistence,
):
    # Equal timestamps, ids in no order, archived sessions interleaved.
    batch = [
        msg(f"{(i * 7919) % 1000:03d}", session_id="gone" if i % 3 == 0 else None, created_at=T0)
        for i in range(100)
    ]
    await adapter.save_messages("t", batch)
    await adapter.archive_session("gone", thread_id="t")
    expected = [m.id for m in batch if m.session_id is None]
    seen: list[str] = []
    page = await adapter.list_messages("t", limit=7)
    while page:
        seen[:0] = ids(page)
        page = await adapter.list_messages("t", limit=7, before=page[0].id)
    assert seen == expected
    seen = []
    page = await adapter.list_messages("t", limit=7, after=batch[0].id)
    while page:
        seen += ids(page)
        page = await adapter.list_messages("t", limit=7, after=page[-1].id)
    assert seen == expected  # batch[0] is archived: as a cursor it still works


async def test_cursor_hidden_by_the_filter_keeps_its_position(adapter: MemoryPersistence):
    await adapter.save_messages(
        "t",
        [msg("a"), msg("b", session_id="s"), msg("c", session_id="x"), msg("d", session_id="s")],
    )
    await adapter.archive_session("x", thread_id="t")
    assert ids(await adapter.list_messages("t", after="c")) == ["d"]
    assert ids(await adapter.list_messages("t", session_id="s", before="c")) == ["b"]
    assert ids(await adapter.list_messages("t", session_id="s", after="a", limit=1)) == ["b"]
    assert ids(await adapter.list_messages("t", session_id="x")) == ["c"]


async def test_ids_are_validated(adapter: MemoryPersistence):
    with pytest.raises(InvalidMessageError):
        await adapter.list_messages("")
    with pytest.raises(InvalidMessageError):
        await adapter.list_messages("t", before="a\x00b")
    with pytest.raises(InvalidMessageError):
        await adapter.get_message("t", "")
    with pytest.raises(InvalidMessageError):
        await adapter.archive_session("s", thread_id="")
    with pytest.raises(InvalidMessageError):
        await adapter.save_messages("t\x00", [msg("a")])


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
    assert writer.capabilities == {Capability.DURABLE, Capability.TIES_IN_SAVE_ORDER}
    async with writer:
        await writer.save_messages("t", [msg("a")])
        async with MemoryPersistence(store=name) as reader:
            assert ids(await reader.list_messages("t")) == ["a"]
    async with create_adapter(f"memory://{name}") as reopened:
        assert ids(await reopened.list_messages("t")) == ["a"]
    async with MemoryPersistence(store=unique("other")) as other:
        assert await other.list_messages("t") == []


async def test_operations_need_an_open_adapter():
    memory = MemoryPersistence()
    with pytest.raises(AdapterNotOpenError):
        await memory.list_messages("t")
    async with memory:
        await memory.save_messages("t", [msg("a")])
        await memory.validate_schema()
    with pytest.raises(AdapterNotOpenError):
        await memory.get_message("t", "a")
    with pytest.raises(AdapterNotOpenError):
        await memory.validate_schema()
    await memory.open()
    assert ids(await memory.list_messages("t")) == ["a"]
    await memory.aclose()
    await memory.aclose()


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
