"""``ChatPersistenceSession`` behaves as the SDK's own sessions do, over every backend:
limits, pop, clear, settings, and the lifecycle of an owned adapter."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from agents.memory.session import Session as SdkSession
from agents.memory.session_settings import SessionSettings
from psycopg import sql

from chat_persistence import (
    AdapterBase,
    ConfigError,
    InvalidArgumentError,
    InvalidMessageError,
    Message,
    OperationNotSupportedError,
    PersistenceAdapter,
    StorageUnavailableError,
    StoredPartsWarning,
    TextPart,
)
from chat_persistence_memory import MemoryPersistence
from chat_persistence_openai_agents import ChatPersistenceSession, SessionClosedError
from fix_pg import PgSchema


def texts(n: int, start: int = 0) -> list[Any]:
    return [{"role": "user", "content": f"m{i}"} for i in range(start, start + n)]


def test_it_is_an_sdk_session() -> None:
    session = ChatPersistenceSession("t", MemoryPersistence())
    assert isinstance(session, SdkSession)
    assert session.session_id == "t"
    assert session.session_settings == SessionSettings()


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(InvalidMessageError, match="session_id"):
        ChatPersistenceSession("", MemoryPersistence())
    with pytest.raises(TypeError, match="limitt"):
        ChatPersistenceSession("t", MemoryPersistence(), session_settings={"limitt": 1})
    with pytest.raises(InvalidArgumentError, match="from_url") as caught:
        ChatPersistenceSession("t", cast(Any, "postgresql://u:s3cret@db/chat"))
    assert caught.value.argument == "adapter"
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError, match="nosuch"):
        ChatPersistenceSession.from_url("t", "memory://?nosuch=1")


async def test_get_items_limit_is_the_newest_oldest_first(session: ChatPersistenceSession) -> None:
    await session.add_items(texts(5))
    await session.add_items(texts(5, start=5))
    assert await session.get_items() == texts(10)
    assert await session.get_items(limit=3) == texts(3, start=7)
    assert await session.get_items(limit=10) == texts(10)
    assert await session.get_items(limit=50) == texts(10)
    assert await session.get_items(limit=0) == []
    assert await session.get_items(limit=-1) == texts(10)  # as SQLiteSession: no limit


async def test_session_settings_limit_is_the_default(
    adapter: PersistenceAdapter, thread_id: str
) -> None:
    session = ChatPersistenceSession(thread_id, adapter, session_settings=SessionSettings(limit=2))
    await session.add_items(texts(6))
    assert await session.get_items() == texts(2, start=4)
    assert await session.get_items(limit=4) == texts(4, start=2)
    from_dict = ChatPersistenceSession(thread_id, adapter, session_settings={"limit": 3})
    assert from_dict.session_settings == SessionSettings(limit=3)
    assert await from_dict.get_items() == texts(3, start=3)


async def test_sessions_are_threads(adapter: PersistenceAdapter, thread_id: str) -> None:
    one = ChatPersistenceSession(thread_id, adapter)
    other = ChatPersistenceSession(thread_id + "-other", adapter)
    await one.add_items(texts(2))
    await other.add_items(texts(1, start=7))
    assert await ChatPersistenceSession(thread_id, adapter).get_items() == texts(2)
    assert await other.get_items() == texts(1, start=7)
    messages = await adapter.list_messages(thread_id)
    assert [m.role for m in messages] == ["user", "user"]


async def test_clear_session_deletes_the_thread(
    session: ChatPersistenceSession, adapter: PersistenceAdapter
) -> None:
    await session.add_items(texts(3))
    await session.clear_session()
    assert await session.get_items() == []
    assert await adapter.list_messages(session.session_id) == []
    assert await adapter.list_sessions(session.session_id, include_archived=True) == []
    await session.add_items(texts(1))
    assert await session.get_items() == texts(1)


async def test_pop_item_removes_and_returns_the_newest(pop_session: ChatPersistenceSession) -> None:
    assert await pop_session.pop_item() is None
    await pop_session.add_items(texts(3))
    assert await pop_session.pop_item() == texts(1, start=2)[0]
    assert await pop_session.get_items() == texts(2)
    assert await pop_session.pop_item() == texts(1, start=1)[0]
    assert await pop_session.pop_item() == texts(1)[0]
    assert await pop_session.pop_item() is None


async def test_concurrent_pops_never_return_one_item_twice(
    delete_adapter: PersistenceAdapter, thread_id: str
) -> None:
    await ChatPersistenceSession(thread_id, delete_adapter).add_items(texts(20))
    sessions = [ChatPersistenceSession(thread_id, delete_adapter) for _ in range(4)]
    popped = await asyncio.gather(*(sessions[i % 4].pop_item() for i in range(30)))
    got = [cast(dict[str, Any], item)["content"] for item in popped if item is not None]
    assert sorted(got) == sorted(f"m{i}" for i in range(20))
    assert popped.count(None) == 10
    assert await sessions[0].get_items() == []


class WrappedMemory(MemoryPersistence):
    """An adapter on the template that never implemented ``_delete_messages`` (0.1)."""

    _delete_messages = AdapterBase._delete_messages


async def test_pop_needs_delete_messages_and_names_the_adapter(thread_id: str) -> None:
    async with WrappedMemory() as old:  # written against 0.1: no delete_messages
        session = ChatPersistenceSession(thread_id, old)
        await session.add_items(texts(1))
        with pytest.raises(OperationNotSupportedError, match="WrappedMemory") as caught:
            await session.pop_item()
        assert (caught.value.adapter, caught.value.operation) == (
            "WrappedMemory",
            "delete_messages",
        )
        assert await session.get_items() == texts(1)


async def test_from_url_owns_its_adapter_and_does_no_io_until_used(thread_id: str) -> None:
    session = ChatPersistenceSession.from_url(thread_id, "memory://agents-owned")
    adapter = cast(MemoryPersistence, session.adapter)
    assert not adapter.is_open
    await session.add_items(texts(2))
    assert adapter.is_open
    again = ChatPersistenceSession.from_url(thread_id, "memory://agents-owned")
    assert await again.get_items() == texts(2)
    await session.aclose()
    assert not adapter.is_open
    await again.aclose()


async def test_an_unreachable_store_fails_on_first_use_not_before(
    thread_id: str, tmp_path: Path
) -> None:
    session = ChatPersistenceSession.from_url(
        thread_id, f"postgresql://nobody@/none?host={tmp_path}&connect_timeout=2&pool_timeout=1"
    )
    with pytest.raises(StorageUnavailableError):
        await session.get_items()
    await session.aclose()


def test_sync_close_releases_an_owned_adapter_without_a_loop(thread_id: str) -> None:
    session = ChatPersistenceSession.from_url(thread_id, "memory://")
    asyncio.run(session.add_items(texts(1)))
    adapter = cast(MemoryPersistence, session.adapter)
    assert adapter.is_open
    session.close()
    assert not adapter.is_open


async def test_sync_close_in_a_running_loop_releases_it_before_returning(thread_id: str) -> None:
    async with ChatPersistenceSession.from_url(thread_id, "memory://") as session:
        await session.add_items(texts(1))
        adapter = cast(MemoryPersistence, session.adapter)
        session.close()
        assert not adapter.is_open


async def test_a_host_owned_adapter_stays_open(adapter: PersistenceAdapter, thread_id: str) -> None:
    session = ChatPersistenceSession(thread_id, adapter)
    await session.add_items(texts(1))
    await session.aclose()
    session.close()
    assert await adapter.list_messages(thread_id) != []


async def test_closed_session_rejects_every_operation(thread_id: str) -> None:
    session = ChatPersistenceSession.from_url(thread_id, "memory://")
    session.close()
    for call in (
        session.add_items([]),
        session.add_items(texts(1)),
        session.get_items(),
        session.pop_item(),
        session.clear_session(),
    ):
        with pytest.raises(SessionClosedError, match="is closed"):
            await call
    await session.aclose()  # idempotent


def test_an_owned_adapter_left_open_is_closed_at_exit(
    pg_schema: PgSchema, pg_tables: dict[str, str], tmp_path: Path
) -> None:
    url = (
        f"{pg_schema.dsn}{'&' if '?' in pg_schema.dsn else '?'}"
        f"messages_table={pg_tables['messages']}&sessions_table={pg_tables['sessions']}"
    )
    script = tmp_path / "left_open.py"
    script.write_text(
        "import asyncio, sys\n"
        "from chat_persistence_openai_agents import ChatPersistenceSession\n"
        "session = ChatPersistenceSession.from_url('left-open', sys.argv[1])\n"
        "asyncio.run(session.add_items([{'role': 'user', 'content': 'hi'}]))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), url], capture_output=True, text=True, timeout=120
    )
    # Without the exit hook the pool's tasks die pending, and Python says so on stderr.
    assert (done.returncode, done.stderr) == (0, "")
    with pg_schema.server.connect() as conn:
        rows = conn.execute(
            sql.SQL("select count(*) from {}").format(pg_schema.qualified("chat_messages"))
        ).fetchone()
    assert rows == (1,)


class PausingMemory(MemoryPersistence):
    """A memory adapter whose writes wait for ``release`` once ``paused`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.release = asyncio.Event()

    async def _save_messages(self, thread_id: str, messages: tuple[Any, ...]) -> list[Any]:
        self.writing.set()
        await self.release.wait()
        return await super()._save_messages(thread_id, messages)

    async def _delete_messages(self, thread_id: str, message_ids: tuple[str, ...]) -> list[Any]:
        self.writing.set()
        await self.release.wait()
        return await super()._delete_messages(thread_id, message_ids)

    async def _delete_thread(self, thread_id: str) -> None:
        self.writing.set()
        await self.release.wait()
        await super()._delete_thread(thread_id)


@pytest.mark.parametrize("operation", ["add", "pop", "clear"])
async def test_a_cancelled_write_finishes_before_the_cancellation_goes_through(
    thread_id: str, operation: str
) -> None:
    async with PausingMemory() as adapter:
        session = ChatPersistenceSession(thread_id, adapter)
        if operation != "add":
            adapter.release.set()
            await session.add_items(texts(2))
            adapter.release.clear()
            adapter.writing.clear()
        write = {
            "add": lambda: session.add_items(texts(1, start=2)),
            "pop": session.pop_item,
            "clear": session.clear_session,
        }[operation]
        task = asyncio.ensure_future(write())
        await adapter.writing.wait()
        task.cancel()
        await asyncio.sleep(0)
        task.cancel()  # twice: the write still runs to its end
        adapter.release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        expected = {"add": texts(3)[2:], "pop": texts(1), "clear": []}[operation]
        assert await session.get_items() == expected


async def test_foreign_rows_read_through_stored_parts_as_through_messages(
    tmp_path: Path,
) -> None:
    """Rows another program wrote (an element without "type" beside "text", a value
    that is no array, text that is no JSON) read back through ``list_stored_parts``
    as they do through ``list_messages``, and never fail."""
    import sqlite3

    from chat_persistence_openai_agents._decode import decode
    from chat_persistence_sqlite import SqlitePersistence

    path = tmp_path / "foreign.db"
    async with SqlitePersistence(path=str(path)) as adapter:
        await adapter.save_messages("t", [Message(id="m0", role="user", parts=[TextPart("hi")])])
    foreign = ['[{"text": "a", "note": 1}]', '{"type": "text", "text": "b"}', "not json", "[]"]
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO chat_messages (thread_id, message_id, role, created_at, parts_json)"
            " VALUES ('t', ?, 'assistant', ?, ?)",
            [(f"m{i + 1}", 3 * 10**15 + i, text) for i, text in enumerate(foreign)],
        )
    async with SqlitePersistence(path=str(path)) as adapter:
        rows = await adapter.list_stored_parts("t")
        assert [row[2] for row in rows[1:]] == [
            [{"text": "a", "note": 1}],
            {"type": "text", "text": "b"},
            "not json",
            [],
        ]
        session = ChatPersistenceSession("t", adapter)
        with pytest.warns(StoredPartsWarning):
            items = await session.get_items()
        with pytest.warns(StoredPartsWarning):
            expected = [i for m in await adapter.list_messages("t") for i in decode(m)]
        assert items == expected
        assert items[0] == {"role": "user", "content": "hi"}
