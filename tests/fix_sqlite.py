"""SQLite fixtures: a database file in a fresh folder, an open adapter on it, and
writer processes (this file is also their script: ``python fix_sqlite.py ...``)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest

from chat_persistence import ConflictError, Message, TextPart
from chat_persistence_sqlite import SqlitePersistence

HERE = Path(__file__).resolve().parent


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """A database file that does not exist yet, in a folder of its own."""
    return tmp_path / "chat.db"


@pytest.fixture
async def sqlite_adapter(sqlite_path: Path) -> AsyncIterator[SqlitePersistence]:
    """An open adapter on ``sqlite_path``."""
    async with SqlitePersistence(path=str(sqlite_path)) as adapter:
        yield adapter


def writer_command(path: Path, writer: int, rounds: int, thread_id: str) -> list[str]:
    """The command line of a process saving ``planned_saves`` (see ``main``)."""
    script = str(HERE / "fix_sqlite.py")
    return [sys.executable, script, "save", str(path), str(writer), str(rounds), thread_id]


def counter_command(path: Path, rounds: int, session_id: str) -> list[str]:
    """The command line of a process incrementing a session's counter by compare-and-set."""
    script = str(HERE / "fix_sqlite.py")
    return [sys.executable, script, "count", str(path), str(rounds), session_id]


def planned_save(writer: int, round_: int) -> list[str]:
    """The ids a writer saves in one round: a batch of 20 when ``round + writer`` is
    even, else a single message."""
    size = 20 if (round_ + writer) % 2 == 0 else 1
    return [f"w{writer}-r{round_:05d}-{i:02d}" for i in range(size)]


def planned_saves(writer: int, rounds: int) -> list[list[str]]:
    """The ids a writer saves, one list per round."""
    return [planned_save(writer, r) for r in range(rounds)]


async def _save(path: str, writer: int, rounds: int, thread_id: str) -> None:
    async with SqlitePersistence(path=path) as adapter:
        for round_ in range(rounds):
            ids = planned_save(writer, round_)
            await adapter.save_messages(thread_id, [Message(i, "user", [TextPart(i)]) for i in ids])
            # Acknowledged only after save_messages returned: the parent trusts these.
            print(json.dumps(ids), flush=True)


async def _count(path: str, rounds: int, session_id: str) -> None:
    wins = 0
    async with SqlitePersistence(path=path) as adapter:
        for _ in range(rounds):
            seen = await adapter.get_session(session_id)
            assert seen is not None
            assert isinstance(seen.state, int)
            try:
                await adapter.save_session(
                    attrs.evolve(seen, state=seen.state + 1), expected_updated_at=seen.updated_at
                )
            except ConflictError:
                continue
            wins += 1
    print(json.dumps(wins), flush=True)


def main(argv: list[str]) -> None:
    """``fix_sqlite.py save PATH WRITER ROUNDS THREAD``: save ``planned_saves`` into one
    thread, printing each save's ids once it has returned (ROUNDS 0: until killed).
    ``fix_sqlite.py count PATH ROUNDS SESSION``: try ROUNDS compare-and-set increments
    of the session's integer state; print how many won."""
    if argv[0] == "save":
        path, writer, rounds, thread_id = argv[1], int(argv[2]), int(argv[3]), argv[4]
        asyncio.run(_save(path, writer, rounds or 10**9, thread_id))
    else:
        asyncio.run(_count(argv[1], int(argv[2]), argv[3]))


if __name__ == "__main__":
    main(sys.argv[1:])
