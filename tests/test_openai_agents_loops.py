"""A ``from_url`` session works from every loop and thread the SDK's hosts use, over
every backend: the adapter called on the caller's loop (``Capability.ANY_LOOP``:
memory, SQLite) or on the session's own (PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import uuid
import warnings
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any, cast

import pytest

from agents_sdk.backends import BACKENDS
from chat_persistence import AdapterBase, Capability
from chat_persistence_openai_agents import ChatPersistenceSession
from fix_pg import PgSchema


def texts(n: int, start: int = 0, who: str = "m") -> list[Any]:
    return [{"role": "user", "content": f"{who}{i}"} for i in range(start, start + n)]


@pytest.fixture(params=BACKENDS)
def owned_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of each backend in turn, for sessions that own their adapter."""
    backend: str = request.param
    if backend == "memory":
        return f"memory://loops-{uuid.uuid4().hex}"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'loops.db'}"
    schema = cast(PgSchema, request.getfixturevalue("pg_schema"))
    tables = cast(dict[str, str], request.getfixturevalue("pg_tables"))
    sep = "&" if "?" in schema.dsn else "?"
    # No retries, a short wait for the pool: a pool used off its loop fails, not stalls.
    options = "retries=0&pool_timeout=5"
    names = f"messages_table={tables['messages']}&sessions_table={tables['sessions']}"
    return f"{schema.dsn}{sep}{options}&{names}"


@contextlib.contextmanager
def no_warnings() -> Generator[None]:
    """Fail on any warning raised inside, in any thread: a coroutine never awaited,
    an event loop or a connection left unclosed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    assert [str(w.message) for w in caught] == []


def contents(items: list[Any]) -> list[str]:
    return [cast(dict[str, str], item)["content"] for item in items]


def closed_clean(session: ChatPersistenceSession) -> bool:
    return not cast(AdapterBase, session.adapter).is_open


def in_threads(count: int, work: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    """Run ``work(k)`` under ``asyncio.run`` in ``count`` OS threads started together."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def serve(k: int) -> None:
        try:
            start.wait()
            asyncio.run(work(k))
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=serve, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_memory_and_sqlite_are_free_of_their_loop(tmp_path: Path) -> None:
    """What lets the session skip the hop; PostgreSQL's pool belongs to its loop."""
    memory = ChatPersistenceSession.from_url("t", "memory://").adapter
    sqlite = ChatPersistenceSession.from_url("t", f"sqlite:///{tmp_path / 'a.db'}").adapter
    postgres = ChatPersistenceSession.from_url("t", "postgresql://nobody@nowhere/db").adapter
    assert Capability.ANY_LOOP in memory.capabilities
    assert Capability.ANY_LOOP in sqlite.capabilities
    assert Capability.ANY_LOOP not in postgres.capabilities


def test_one_running_loop(owned_url: str) -> None:
    async def main() -> None:
        session = ChatPersistenceSession.from_url(f"loops-{uuid.uuid4().hex}", owned_url)
        for batch in range(3):
            await session.add_items(texts(2, 2 * batch))
        reads = await asyncio.gather(*(session.get_items() for _ in range(4)))
        assert reads == [texts(6)] * 4
        assert await session.pop_item() == texts(6)[-1]
        assert await session.get_items(limit=2) == texts(5)[-2:]
        await session.aclose()
        assert closed_clean(session)

    with no_warnings():
        asyncio.run(main())


def test_a_new_loop_per_call(owned_url: str) -> None:
    """As ``Runner.run_sync`` does: each call on a loop of its own, closed after it."""
    with no_warnings():
        session = ChatPersistenceSession.from_url(f"loops-{uuid.uuid4().hex}", owned_url)
        for batch in range(4):
            asyncio.run(session.add_items(texts(2, 2 * batch)))
            assert asyncio.run(session.get_items()) == texts(2 * batch + 2)
        session.close()
        assert closed_clean(session)


def test_two_threads_at_once_from_the_first_call(owned_url: str) -> None:
    session = ChatPersistenceSession.from_url(f"loops-{uuid.uuid4().hex}", owned_url)

    async def work(k: int) -> None:
        for batch in range(5):
            await session.add_items(texts(2, 2 * batch, who=f"t{k}-"))
            mine = [c for c in contents(await session.get_items()) if c.startswith(f"t{k}-")]
            assert mine == contents(texts(2 * batch + 2, who=f"t{k}-"))

    with no_warnings():
        in_threads(2, work)
        items = asyncio.run(session.get_items())
        assert sorted(contents(items)) == sorted(
            contents(texts(10, who="t0-")) + contents(texts(10, who="t1-"))
        )
        asyncio.run(session.aclose())
        assert closed_clean(session)


def test_used_after_the_loop_that_opened_it_closed(owned_url: str) -> None:
    with no_warnings():
        session = ChatPersistenceSession.from_url(f"loops-{uuid.uuid4().hex}", owned_url)
        asyncio.run(session.add_items(texts(3)))  # opens it; that loop then closes

        async def later(_: int) -> None:
            assert await session.get_items() == texts(3)
            await session.add_items(texts(2, 3))

        in_threads(1, later)
        again = ChatPersistenceSession.from_url(session.session_id, owned_url)
        assert asyncio.run(again.get_items()) == texts(5)
        again.close()

        async def close() -> None:
            await session.aclose()

        asyncio.run(close())
        assert closed_clean(session)
        assert closed_clean(again)
