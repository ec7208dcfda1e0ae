"""SQLite fixtures: a database file in a fresh folder, an open adapter on it, and
writer processes (this file is also their script: ``python fix_sqlite.py ...``)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat_persistence import Message, TextPart
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
    """The command line of a writer process (see ``main``)."""
    return [sys.executable, str(HERE / "fix_sqlite.py"), str(path), str(writer), str(rounds), thread_id]


def planned_saves(writer: int, rounds: int) -> list[list[str]]:
    """The ids a writer saves, one list per save: round r is a batch of 20 when r
    is even for even writers (odd for odd ones), else a single message."""
    saves: list[list[str]] = []
    for r in range(rounds):
        size = 20 if (r + writer) % 2 == 0 else 1
        saves.append([f"w{writer}-r{r:05d}-{i:02d}" for i in range(size)])
    return saves


async def _write(path: str, writer: int, rounds: int, thread_id: str) -> None:
    async with SqlitePersistence(path=path) as adapter:
        for ids in planned_saves(writer, rounds):
            await adapter.save_messages(thread_id, [Message(i, "user", [TextPart(i)]) for i in ids])
            # Acknowledged only after save_messages returned: the parent trusts these.
            print(json.dumps(ids), flush=True)


def main(argv: list[str]) -> None:
    """``fix_sqlite.py PATH WRITER ROUNDS THREAD``: save ``planned_saves`` into one thread,
    printing each save's ids once it has returned (``ROUNDS`` 0: go on until killed)."""
    path, writer, rounds, thread_id = argv[0], int(argv[1]), int(argv[2]), argv[3]
    asyncio.run(_write(path, writer, rounds or 10**9, thread_id))


if __name__ == "__main__":
    main(sys.argv[1:])
