"""The OpenAI Agents SDK's ``SQLiteSession``, driven for ``sqlite_bench.py``.

Run with the peer venv's Python (``peers.install("openai-agents")``); reads one
JSON command per line on stdin and answers one JSON line on stdout:
``{"op": "setup", "dir": ..., "thread": N, "batch": B}`` (fills a session with the
items of an N-message thread, untimed), ``{"op": "run", "key": "batch" | "read"}``
(one timed run: seconds), ``{"op": "quit"}``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import sqlite3
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / "peers")]

from worker import OpenAIAgents  # noqa: E402 - the same items the Postgres peer stores
from workload import batches, make_messages  # noqa: E402

READS = 5


class Peer:
    def __init__(self, folder: str, thread: int, batch: int) -> None:
        from agents import SQLiteSession

        self.Session = SQLiteSession
        self.db = str(Path(folder) / "agents.db")
        as_items = OpenAIAgents.__new__(OpenAIAgents).native
        wire = make_messages(thread, prefix="sa")
        self.batches = [
            [item for items in as_items(b) for item in items] for b in batches(wire, batch)
        ]
        self.read_session = self.Session("read-thread", self.db)

    async def setup(self) -> dict[str, Any]:
        for items in self.batches:
            await self.read_session.add_items(items)
        with sqlite3.connect(self.db) as conn:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        sync = self.read_session._get_connection().execute("PRAGMA synchronous").fetchone()[0]
        return {"journal_mode": mode, "synchronous": sync}

    async def run(self, key: str) -> float:
        if key == "batch":
            session = self.Session(f"batch-{uuid.uuid4().hex}", self.db)
            start = time.perf_counter()
            for items in self.batches:
                await session.add_items(items)
            seconds = time.perf_counter() - start
            session.close()
            return seconds
        start = time.perf_counter()
        for _ in range(READS):
            items = await self.read_session.get_items()
            assert items
        return time.perf_counter() - start


def _answer(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def main() -> None:
    peer: Peer | None = None
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["op"] == "setup":
                peer = Peer(cmd["dir"], cmd["thread"], cmd["batch"])
                settings = await peer.setup()
                _answer({"version": importlib.metadata.version("openai-agents"), **settings})
            elif cmd["op"] == "run":
                assert peer is not None
                _answer({"seconds": await peer.run(cmd["key"])})
            else:
                break
        except Exception as err:
            traceback.print_exc(file=sys.stderr)
            _answer({"error": f"{type(err).__name__}: {err}"})


if __name__ == "__main__":
    asyncio.run(main())
