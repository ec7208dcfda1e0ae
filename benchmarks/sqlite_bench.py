"""The SQLite backend against raw sqlite3 and the OpenAI Agents SDK's SQLiteSession.

    uv run --locked python benchmarks/sqlite_bench.py            # ~1 minute
    uv run --locked python benchmarks/sqlite_bench.py --no-peers --reps 3

Two cases, on files in a temporary folder of the disk: a 1,000-message thread
written in batches of 100 (per batch), and a whole-thread read of 1,000 messages
(per read). Every contender uses WAL and ``synchronous=FULL``. The baselines are
raw sqlite3 on the loop's thread (no thread hop, no objects beyond dicts, orjson
bytes bound as they are), running what our adapter must: under ``BEGIN
IMMEDIATE``, the thread's newest time, then the insert, as one ``executemany``
or as one multi-row ``INSERT`` (the faster of the two is the baseline); the
listing's SELECT with the archive rule. Our side takes and returns typed
``Message`` objects. The peer runs in its own venv (``peers.install``) as a
subprocess answering one timed run per request, so its runs interleave with ours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from harness import Results, Target, Timed, measure, render_table
from ours import to_message
from workload import batches, make_messages

from chat_persistence import Message
from chat_persistence_sqlite import SqlitePersistence, reference_ddl

HERE = Path(__file__).resolve().parent
RAW = "raw sqlite3"
RAW_MULTI = "raw sqlite3, one multi-row INSERT"
OURS = "chat-persistence sqlite"
PEER = "openai-agents SQLiteSession"
READS = 5
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RawSqlite:
    """The same rows as our adapter, written and read by hand."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self._multi: dict[int, str] = {}

    def _begin(self, thread: str) -> int:
        """``BEGIN IMMEDIATE``, then the first time to assign: after the thread's newest."""
        self.conn.execute("BEGIN IMMEDIATE")
        newest = self.conn.execute(
            "SELECT max(created_at) FROM chat_messages WHERE thread_id = ?", (thread,)
        ).fetchone()[0]
        now = time.time_ns() // 1000
        return now if newest is None else max(now, newest + 1)

    def insert_batch(self, thread: str, batch: list[dict[str, Any]]) -> None:
        conn = self.conn
        start = self._begin(thread)
        conn.executemany(
            "INSERT INTO chat_messages (thread_id, message_id, session_id, user_id, role,"
            " created_at, parts_json) VALUES (?, ?, ?, NULL, ?, ?, ?)",
            [
                (thread, m["id"], m["session_id"], m["role"], start + i, orjson.dumps(m["parts"]))
                for i, m in enumerate(batch)
            ],
        )
        conn.execute("COMMIT")

    def insert_batch_multi(self, thread: str, batch: list[dict[str, Any]]) -> None:
        """``insert_batch`` as one multi-row INSERT (its text made once per size)."""
        conn = self.conn
        start = self._begin(thread)
        sql = self._multi.get(len(batch))
        if sql is None:
            sql = self._multi[len(batch)] = (
                "INSERT INTO chat_messages (thread_id, message_id, session_id, user_id, role,"
                " created_at, parts_json) VALUES "
                + ", ".join(["(?, ?, ?, NULL, ?, ?, ?)"] * len(batch))
            )
        params: list[object] = []
        for i, m in enumerate(batch):
            params += (thread, m["id"], m["session_id"], m["role"], start + i)
            params.append(orjson.dumps(m["parts"]))
        conn.execute(sql, params)
        conn.execute("COMMIT")

    def read_thread(self, thread: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT m.message_id, m.role, m.session_id, m.created_at, m.parts_json"
            " FROM chat_messages m WHERE m.thread_id = ? AND (m.session_id IS NULL OR NOT"
            " EXISTS (SELECT 1 FROM chat_sessions s WHERE s.session_id = m.session_id"
            " AND s.archived_at IS NOT NULL)) ORDER BY m.created_at, m.rowid",
            (thread,),
        ).fetchall()
        return [
            {
                "id": r[0],
                "role": r[1],
                "session_id": r[2],
                "created_at": _EPOCH + timedelta(microseconds=r[3]),
                "parts": orjson.loads(r[4]),
            }
            for r in rows
        ]


class AgentsPeer:
    """The peer's worker subprocess."""

    def __init__(self, proc: asyncio.subprocess.Process, info: dict[str, Any]) -> None:
        self.proc = proc
        self.info = info

    @classmethod
    async def start(cls, folder: str, thread: int, batch: int) -> AgentsPeer | str:
        sys.path.insert(0, str(HERE))
        from peers import install

        done = install("openai-agents")
        if done.python is None:
            return done.error
        proc = await asyncio.create_subprocess_exec(
            str(done.python),
            str(HERE / "sqlite_peer.py"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        peer = cls(proc, {})
        peer.info = await peer.call(
            {"op": "setup", "dir": folder, "thread": thread, "batch": batch}
        )
        return peer

    async def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(payload) + "\n").encode())
        await self.proc.stdin.drain()
        answer = json.loads(await self.proc.stdout.readline() or b'{"error": "worker exited"}')
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def timed(self, key: str) -> Timed:
        async def run() -> float:
            return (await self.call({"op": "run", "key": key}))["seconds"]

        return run

    async def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b'{"op": "quit"}\n')
        await self.proc.stdin.drain()
        await self.proc.wait()


def _fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


async def run(args: argparse.Namespace) -> Results:
    """Every case, and the targets."""
    results = Results()
    wire = make_messages(args.thread, prefix="sq")
    typed: list[Message] = [to_message(m) for m in wire]
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = str(Path(folder) / "bench.db")
        async with SqlitePersistence(path=path) as store:  # creates the tables
            raw = RawSqlite(path)
            read_thread = _fresh("read")
            for batch in batches(typed, args.batch):
                await store.save_messages(read_thread, batch)
            peer: AgentsPeer | str | None = None
            if args.peers:
                peer = await AgentsPeer.start(folder, args.thread, args.batch)
                if isinstance(peer, str):
                    results.note(f"{PEER}: {peer}")
                    peer = None
                else:
                    results.note(f"{PEER} {peer.info}")
            try:
                await _cases(args, results, raw, store, wire, typed, read_thread, peer)
            finally:
                if peer is not None:
                    await peer.close()
                raw.conn.close()
    targets(results)
    return results


async def _cases(
    args: argparse.Namespace,
    results: Results,
    raw: RawSqlite,
    store: SqlitePersistence,
    wire: list[dict[str, Any]],
    typed: list[Message],
    read_thread: str,
    peer: AgentsPeer | None,
) -> None:
    wire_batches, typed_batches = batches(wire, args.batch), batches(typed, args.batch)

    async def raw_batches() -> float:
        thread = _fresh("raw")
        start = time.perf_counter()
        for batch in wire_batches:
            raw.insert_batch(thread, batch)
        return time.perf_counter() - start

    async def raw_multi_batches() -> float:
        thread = _fresh("raw")
        start = time.perf_counter()
        for batch in wire_batches:
            raw.insert_batch_multi(thread, batch)
        return time.perf_counter() - start

    async def ours_batches() -> float:
        thread = _fresh("ours")
        start = time.perf_counter()
        for batch in typed_batches:
            await store.save_messages(thread, batch)
        return time.perf_counter() - start

    async def raw_reads() -> float:
        start = time.perf_counter()
        for _ in range(READS):
            assert len(raw.read_thread(read_thread)) == args.thread
        return time.perf_counter() - start

    async def ours_reads() -> float:
        start = time.perf_counter()
        for _ in range(READS):
            assert len(await store.list_messages(read_thread)) == args.thread
        return time.perf_counter() - start

    writes: dict[str, Timed] = {RAW: raw_batches, RAW_MULTI: raw_multi_batches, OURS: ours_batches}
    reads: dict[str, Timed] = {RAW: raw_reads, OURS: ours_reads}
    if peer is not None:
        writes[PEER] = peer.timed("batch")
        reads[PEER] = peer.timed("read")
    notes = {PEER: "add_items / get_items; a message with a tool call is 2 items"}
    n, size = args.thread, args.batch
    await measure(
        results,
        f"batch of {size} ({n:,}-msg thread, per batch)",
        writes,
        ops=len(wire_batches),
        reps=args.reps,
        baseline=[RAW, RAW_MULTI],
        notes=notes,
    )
    await measure(
        results,
        f"read whole thread of {n:,} (per read)",
        reads,
        ops=READS,
        reps=args.reps,
        baseline=RAW,
        notes=notes,
    )


def targets(results: Results) -> None:
    """The issue's goals: our batch and whole read at most 1.5x the fastest raw way
    (the ratio of the same rounds), and faster than the SDK's SQLiteSession."""
    for f in results.figures:
        if f.contender != OURS:
            continue
        if f.ratio is not None:
            met = f.ratio <= 1.5
            name = f"SQLite {f.case}, ours / fastest raw ({f.baseline})"
            results.targets.append(Target(name, f.ratio, 1.5, "x", met))
        peer = results.find(f.case, PEER)
        if peer is not None and peer.samples and f.samples:
            value = f.median / peer.median
            name = f"SQLite {f.case}, ours / {PEER}"
            results.targets.append(Target(name, value, 1.0, "x", value < 1.0))


def fastest_baselines(results: Results) -> list[str]:
    """Which raw way was the baseline of each case."""
    return sorted({f"{f.case}: {f.baseline}" for f in results.figures if f.baseline})


def main(argv: list[str] | None = None) -> int:
    """Run the cases, print the table; 0 when every target is met."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--thread", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--no-peers", dest="peers", action="store_false")
    parser.add_argument("--dir", default=None, help="where the temporary files go")
    args = parser.parse_args(argv)
    assert "created_at INTEGER" in reference_ddl()
    results = asyncio.run(run(args))
    for line in fastest_baselines(results):
        print(f"fastest baseline: {line}")
    print(render_table(results))
    return 0 if all(t.met for t in results.targets) else 1


if __name__ == "__main__":
    sys.exit(main())
