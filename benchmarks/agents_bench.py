"""The OpenAI Agents SDK bridge: ``ChatPersistenceSession`` against the bare adapter
and the SDK's own sessions.

    uv run python benchmarks/agents_bench.py [--quick] [--pg 16|18] [--json PATH]

Cases: ``add_items`` of 1 item and of 100 items, and ``get_items()`` of a
1,000-item session. Contenders, over memory and over PostgreSQL (a server this run
starts): our session on a host's adapter, our session from ``from_url`` (its
adapter on the bridge's own loop), the bare adapter doing the same work (build
``TextPart`` messages and ``save_messages``; ``list_messages``), the bare adapter's
store work alone (``save_messages`` of messages built outside the clock, with the
bridge's clock-ordered ids; ``list_stored_parts`` where the adapter has it), and the
SDK's ``SQLiteSession`` on a file (the same file as our SQLite backend, when it is
installed) and ``SQLAlchemySession`` on the same PostgreSQL. Each figure is the
median per operation of interleaved rounds (``harness.measure``); ratios are to the
fastest bare way of each case (the table names it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import psycopg
from agents import SQLiteSession
from harness import Results, Target, Timed, measure, render_table, to_json
from pg import create_tables, server_facts, start_server
from workload import make_messages

from chat_persistence import (
    Message,
    PersistenceAdapter,
    TextPart,
    create_adapter,
    supports_stored_parts,
)
from chat_persistence_openai_agents import ChatPersistenceSession
from chat_persistence_openai_agents._encode import new_message_ids

ROOT = Path(__file__).resolve().parent
BARE = "bare adapter"
PREBUILT = "bare adapter, messages built outside the clock"
STORED_PARTS = "bare adapter, list_stored_parts"
BARES = (BARE, PREBUILT, STORED_PARTS)
HOSTED = "our session (host's adapter)"
OWNED = "our session (from_url)"
SQLITE = "SDK SQLiteSession (file)"
SQLALCHEMY = "SDK SQLAlchemySession (same server)"


def items(count: int, seed: str) -> list[Any]:
    """Text items of ~300 characters, alternating user and assistant, from the
    benchmark's fixed-seed workload."""
    texts = [
        part["text"]
        for message in make_messages(max(count, 10), prefix=seed)
        for part in message["parts"]
        if part.get("type") == "text"
    ]
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": texts[i % len(texts)]}
        for i in range(count)
    ]


def bare_messages(batch: list[Any]) -> list[Message]:
    """What a host writes without the bridge: one text message per item."""
    return [
        Message(id=uuid.uuid4().hex, role=item["role"], parts=[TextPart(item["content"])])
        for item in batch
    ]


def prebuilt(batch: list[Any]) -> list[Message]:
    """``bare_messages`` with the ids the bridge gives (clock-ordered)."""
    ids = new_message_ids(len(batch))
    return [
        Message(id=i, role=item["role"], parts=[TextPart(item["content"])])
        for i, item in zip(ids, batch, strict=True)
    ]


def timed_prebuilt(calls: int, adapter: PersistenceAdapter, thread: str, batch: list[Any]) -> Timed:
    """``save_messages`` alone: each call's messages are built before the clock starts."""

    async def run() -> float:
        ready = [prebuilt(batch) for _ in range(calls)]
        start = time.perf_counter()
        for messages in ready:
            await adapter.save_messages(thread, messages)
        return time.perf_counter() - start

    return run


def timed(calls: int, work: Callable[[], Awaitable[Any]]) -> Timed:
    async def run() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            await work()
        return time.perf_counter() - start

    return run


class Contenders:
    """The sessions and adapter of one backend, each on a thread of its own."""

    def __init__(self, url: str, adapter: PersistenceAdapter) -> None:
        self.url, self.adapter = url, adapter
        self.sdk: dict[str, Any] = {}
        self.owned: list[ChatPersistenceSession] = []

    def own(self, name: str) -> ChatPersistenceSession:
        session = ChatPersistenceSession.from_url(self.thread(name), self.url)
        self.owned.append(session)
        return session

    async def aclose(self) -> None:
        for session in self.owned:
            await session.aclose()

    def thread(self, name: str) -> str:
        return f"{name}-{uuid.uuid4().hex[:8]}"

    def adders(self, batch: list[Any]) -> dict[str, Callable[[], Awaitable[Any]]]:
        hosted = ChatPersistenceSession(self.thread("hosted"), self.adapter)
        owned = self.own("owned")
        bare_thread = self.thread("bare")
        work: dict[str, Callable[[], Awaitable[Any]]] = {
            BARE: lambda: self.adapter.save_messages(bare_thread, bare_messages(batch)),
            HOSTED: lambda: hosted.add_items(batch),
            OWNED: lambda: owned.add_items(batch),
        }
        for name, make in self.sdk.items():
            session = make(self.thread("sdk"))
            work[name] = lambda s=session: s.add_items(batch)
        return work

    async def readers(self, batch: list[Any]) -> dict[str, Callable[[], Awaitable[Any]]]:
        hosted = ChatPersistenceSession(self.thread("hosted"), self.adapter)
        owned = self.own("owned")
        await hosted.add_items(batch)
        await owned.add_items(batch)
        assert await hosted.get_items() == batch
        assert await owned.get_items() == batch
        work: dict[str, Callable[[], Awaitable[Any]]] = {
            BARE: lambda: self.adapter.list_messages(hosted.session_id),
            HOSTED: hosted.get_items,
            OWNED: owned.get_items,
        }
        if supports_stored_parts(self.adapter):
            work[STORED_PARTS] = lambda: self.adapter.list_stored_parts(hosted.session_id)
        for name, make in self.sdk.items():
            session = make(self.thread("sdk"))
            await session.add_items(batch)
            work[name] = session.get_items
        return work


async def run_backend(
    results: Results, label: str, contenders: Contenders, *, reps: int, quick: bool
) -> None:
    one, hundred, thousand = items(1, "a1"), items(100, "a100"), items(1000, "g1000")
    few = 3 if quick else 5
    cases = [
        (f"{label}: add_items(1 item)", contenders.adders(one), 20 if quick else 50, one),
        (f"{label}: add_items(100 items)", contenders.adders(hundred), few, hundred),
        (f"{label}: get_items() of 1,000", await contenders.readers(thousand), few, None),
    ]
    for case, work, calls, batch in cases:
        runs = {name: timed(calls, fn) for name, fn in work.items()}
        if batch is not None:
            runs[PREBUILT] = timed_prebuilt(
                calls, contenders.adapter, contenders.thread("pre"), batch
            )
        await measure(
            results,
            case,
            runs,
            ops=calls,
            reps=reps,
            baseline=[name for name in BARES if name in runs],
        )


def sqlalchemy_factory(dsn: str) -> Callable[[str], Any] | None:
    try:
        from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    except Exception as err:  # its async driver is an optional install
        print(f"  note: SQLAlchemySession skipped: {type(err).__name__}: {err}", file=sys.stderr)
        return None
    return lambda sid: SQLAlchemySession(sid, engine=engine, create_tables=True)


def targets(results: Results) -> None:
    """The issue's goals: our session's overhead over the bare adapter at most 1.2x
    (PostgreSQL, SQLite), and faster than the SDK's session on the same store
    (SQLAlchemySession on the same server, SQLiteSession on the same file; memory has
    no SDK counterpart, so its SQLiteSession figures are for reading, not goals)."""
    for f in results.figures:
        on_disk = f.case.startswith(("pg", "sqlite"))
        if f.contender in (HOSTED, OWNED) and f.ratio is not None and on_disk:
            results.targets.append(
                Target(f"{f.case}, {f.contender} / {f.baseline}", f.ratio, 1.2, "x", f.ratio <= 1.2)
            )
    for f in results.figures:
        if f.case.startswith("memory"):
            continue
        sdk = results.find(f.case, SQLALCHEMY if f.case.startswith("pg") else SQLITE)
        if f.contender == HOSTED and sdk is not None and sdk.samples and f.samples:
            value = f.median / sdk.median
            results.targets.append(
                Target(f"{f.case}, {HOSTED} / {sdk.contender}", value, 1.0, "x", value < 1.0)
            )


async def collect(args: argparse.Namespace) -> tuple[Results, dict[str, Any]]:
    """Every case and the targets, and the run's facts (for the JSON record)."""
    reps = args.reps or (3 if args.quick else 15)
    results = Results()
    meta: dict[str, Any] = {"benchmark": "agents", "reps": reps}
    with tempfile.TemporaryDirectory(prefix="agents-bench-") as scratch:
        folder = Path(scratch)
        sqlite_file = folder / "sdk.db"
        sqlite: dict[str, Callable[[str], Any]] = {
            SQLITE: partial(SQLiteSession, db_path=sqlite_file)
        }
        async with create_adapter("memory://agents-bench") as memory:
            memory_side = Contenders("memory://agents-bench", memory)
            memory_side.sdk = dict(sqlite)
            await run_backend(results, "memory", memory_side, reps=reps, quick=args.quick)
            await memory_side.aclose()
        if find_spec("chat_persistence_sqlite") is not None:
            # Our SQLite backend and the SDK's SQLiteSession on the same file.
            shared = folder / "shared.db"
            url = f"sqlite:///{shared}"
            async with create_adapter(url) as lite:
                lite_side = Contenders(url, lite)
                lite_side.sdk = {SQLITE: partial(SQLiteSession, db_path=shared)}
                await run_backend(results, "sqlite", lite_side, reps=reps, quick=args.quick)
                await lite_side.aclose()
        else:
            results.note("sqlite: chat_persistence_sqlite is not installed")
        with start_server(args.pg) as (dsn, _server):
            meta["server"] = server_facts(dsn)
            with psycopg.connect(dsn, autocommit=True) as conn:
                create_tables(conn, "chat_messages", "chat_sessions")
            async with create_adapter(dsn) as pg:
                pg_side = Contenders(dsn, pg)
                pg_side.sdk = dict(sqlite)
                alchemy = sqlalchemy_factory(dsn)
                if alchemy is not None:
                    pg_side.sdk[SQLALCHEMY] = alchemy
                await run_backend(results, f"pg{args.pg}", pg_side, reps=reps, quick=args.quick)
                await pg_side.aclose()
    targets(results)
    return results, meta


def fastest_baselines(results: Results) -> list[str]:
    """Which baseline was the fastest of each case."""
    return sorted({f"{f.case}: {f.baseline}" for f in results.figures if f.baseline})


async def run(args: argparse.Namespace) -> int:
    """Measure, print the table (and the fastest baselines), write the JSON; 0 when
    every target is met."""
    results, meta = await collect(args)
    for line in fastest_baselines(results):
        print(f"fastest baseline: {line}")
    print(render_table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(to_json(results, meta), indent=1))
    return 0 if all(t.met for t in results.targets) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pg", type=int, choices=(16, 18), default=16)
    parser.add_argument("--quick", action="store_true", help="fewer calls, 3 rounds")
    parser.add_argument("--reps", type=int)
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "agents.json")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
