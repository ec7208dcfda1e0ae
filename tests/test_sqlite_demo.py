"""The demo runs on ``sqlite:///...``, and a kept thread is still there for the
next process: history that survives a restart, as README says."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

from chat_persistence_sqlite import SqlitePersistence


def demo(url: str, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "chat_persistence", "demo", url, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "Traceback" not in done.stderr
    return done.stdout


async def _history(path: Path, thread_id: str) -> tuple[int, int]:
    """Messages of every session (archived ones too), and sessions, in the thread."""
    async with SqlitePersistence(path=str(path)) as adapter:
        sessions = await adapter.list_sessions(thread_id, include_archived=True)
        messages = [
            m for s in sessions for m in await adapter.list_messages(thread_id, session_id=s.id)
        ]
    return len(messages), len(sessions)


def test_the_demo_keeps_history_in_a_file_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    kept = demo(f"sqlite:///{path}", "--keep")
    found = re.search(r"Kept thread (demo-[0-9a-f]{12})", kept)
    assert found, kept
    messages, sessions = asyncio.run(_history(path, found.group(1)))
    assert messages >= 4
    assert sessions == 2

    deleted = demo(f"sqlite:///{path}")
    gone = re.search(r"Deleted thread (demo-[0-9a-f]{12})", deleted)
    assert gone, deleted
    assert asyncio.run(_history(path, gone.group(1))) == (0, 0)
    assert asyncio.run(_history(path, found.group(1))) == (messages, sessions)
