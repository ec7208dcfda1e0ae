"""The workloads that need no server: the memory backend on a long thread, and
start-up time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any

from harness import Results, Target, Timed, measure
from ours import memory_adapter, to_message
from workload import make_messages

from chat_persistence import Message, unstructure_parts

MEMORY_NEWEST_CASE = "Memory: newest 50"
STARTUP_CASE = "Start-up"
BARE = "bare interpreter"
IMPORT = "+ import chat_persistence"
CREATE = "+ import + create_adapter('memory://')"
CREATE_AS_RUN = "+ import + create_adapter('memory://'), the environment's bytecode settings"


def _long_thread(count: int) -> list[Message]:
    """``count`` messages cycling through 1,000 generated ones (parts are frozen,
    so sharing them between messages is safe)."""
    template = [to_message(m) for m in make_messages(1000, prefix="mem")]
    return [
        Message(id=f"x{i:08d}", role=template[i % 1000].role, parts=template[i % 1000].parts)
        for i in range(count)
    ]


async def memory_backend(results: Results, *, long: int, reps: int) -> None:
    """Save and page on a 1,000-message and a ``long``-message thread."""
    factory, reason = memory_adapter()
    if factory is None:
        results.note(f"memory backend skipped: {reason}")
        return
    short = 1000
    threads = {
        f"memory, {short:,}-msg thread": ("short", short),
        f"memory, {long:,}-msg thread": ("long", long),
    }
    start = time.perf_counter()
    messages = {key: _long_thread(size) for key, size in threads.values()}
    built = time.perf_counter() - start
    extra = iter(range(10**9))
    async with factory() as store:
        start = time.perf_counter()
        for key, items in messages.items():
            for i in range(0, len(items), 10_000):
                await store.save_messages(key, items[i : i + 10_000])
        results.note(
            f"memory: {long + short:,} messages built in {built:.1f} s, "
            f"saved in batches of 10,000 in {time.perf_counter() - start:.1f} s"
        )
        middle = {key: items[len(items) // 2].id for key, items in messages.items()}
        template = messages["short"][:100]
        calls = 200

        def newest(key: str) -> Timed:
            async def run() -> float:
                start = time.perf_counter()
                for _ in range(calls):
                    await store.list_messages(key, limit=50)
                return time.perf_counter() - start

            return run

        def middle_page(key: str) -> Timed:
            async def run() -> float:
                cursor = middle[key]
                start = time.perf_counter()
                for _ in range(calls):
                    await store.list_messages(key, before=cursor, limit=50)
                return time.perf_counter() - start

            return run

        def new_messages(n: int) -> list[Message]:
            return [
                Message(id=f"new{next(extra):09d}", role=m.role, parts=m.parts)
                for m in (template * (n // 100 + 1))[:n]
            ]

        def save_one(key: str) -> Timed:
            async def run() -> float:
                fresh = new_messages(100)
                start = time.perf_counter()
                for message in fresh:
                    await store.save_messages(key, [message])
                return time.perf_counter() - start

            return run

        def save_batch(key: str) -> Timed:
            async def run() -> float:
                fresh = new_messages(100)
                start = time.perf_counter()
                await store.save_messages(key, fresh)
                return time.perf_counter() - start

            return run

        base = next(iter(threads))
        for case, make, ops in (
            (MEMORY_NEWEST_CASE, newest, calls),
            ("Memory: 50 before the middle message", middle_page, calls),
            ("Memory: save 1 message", save_one, 100),
            ("Memory: save a batch of 100", save_batch, 1),
        ):
            await measure(
                results,
                case,
                {label: make(key) for label, (key, _) in threads.items()},
                ops=ops,
                reps=reps,
                baseline=base,
            )


def _python(code: str, env: dict[str, str] | None = None) -> Timed:
    async def run() -> float:
        start = time.perf_counter()
        # Blocking on purpose: the clock covers exactly the child's life.
        subprocess.run([sys.executable, "-c", code], check=True, env=env)  # noqa: ASYNC221
        return time.perf_counter() - start

    return run


def _with_bytecode(cache: str) -> dict[str, str]:
    """The environment with bytecode written to and read from ``cache`` (the warm-up
    runs fill it), as an installed package has it: pip compiles at install, and the
    bare interpreter's standard library is compiled. Without it, under
    PYTHONDONTWRITEBYTECODE in a venv whose installer compiled nothing, every run
    would compile attrs, pluggy and our sources again."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


async def startup(results: Results, *, reps: int) -> dict[str, Any]:
    """Interpreter start, + import, + create_adapter('memory://'); whether psycopg
    got imported; the slowest imports by ``-X importtime``."""
    create = "import chat_persistence as c; c.create_adapter('memory://')"
    as_run = os.environ.get("PYTHONDONTWRITEBYTECODE")
    with tempfile.TemporaryDirectory(prefix="cp-bench-pyc-") as cache:
        env = _with_bytecode(cache)
        await measure(
            results,
            STARTUP_CASE,
            {
                BARE: _python("pass", env),
                IMPORT: _python("import chat_persistence", env),
                CREATE: _python(create, env),
                CREATE_AS_RUN: _python(create),
            },
            ops=1,
            reps=reps,
            baseline=BARE,
            warmup=2,
            notes={
                CREATE_AS_RUN: "PYTHONDONTWRITEBYTECODE="
                + (f"{as_run}: no bytecode written" if as_run else "unset: bytecode as found"),
            },
        )
        probe = subprocess.run(  # noqa: ASYNC221 - a one-off probe, nothing else runs
            [
                sys.executable,
                "-X",
                "importtime",
                "-c",
                "import sys, chat_persistence as c\n"
                "try:\n    c.create_adapter('memory://')\nexcept Exception as e:\n"
                "    print('create_adapter failed:', type(e).__name__, e)\n"
                "print('psycopg loaded:',\n"
                "      sorted(m for m in sys.modules if m.startswith('psycopg')))",
            ],
            capture_output=True,
            text=True,
            check=False,
            env=env,  # the bytecode the timed rows had: times of imports, not of compiling
        )
    loaded = [line for line in probe.stdout.splitlines() if line.startswith("psycopg loaded:")]
    psycopg_modules = loaded[0].split(":", 1)[1].strip() if loaded else "unknown"
    failed = [
        line for line in probe.stdout.splitlines() if line.startswith("create_adapter failed")
    ]
    top: list[tuple[int, str]] = []
    for line in probe.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package", nesting by indent
        parts = line.split("|")
        if len(parts) == 3 and parts[0].startswith("import time:") and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2
            if depth <= 1:  # top-level imports and what they import directly
                top.append((int(parts[1]), "  " * depth + name.strip()))
    top.sort(reverse=True)
    info = {
        "psycopg_modules_after_memory_create": psycopg_modules,
        "create_adapter_error": failed[0] if failed else None,
        "slowest_top_level_imports_us": top[:12],
    }
    results.targets.append(
        Target(
            "Start-up: psycopg never imported for memory://",
            None,
            0,
            "modules",
            None if failed else psycopg_modules == "[]",
            f"psycopg modules loaded: {psycopg_modules}" + (f"; {failed[0]}" if failed else ""),
        )
    )
    return info


async def memory_footprint(results: Results, *, count: int = 20_000) -> None:
    """Bytes the memory backend keeps per stored message (tracemalloc, the store
    alone), next to the size of the message's JSON."""
    factory, reason = memory_adapter()
    if factory is None:
        results.note(f"memory footprint skipped: {reason}")
        return
    wire = [to_message(m) for m in make_messages(count, prefix="fp")]
    json_bytes = (
        sum(
            len(json.dumps(unstructure_parts(m.parts), separators=(",", ":")).encode())
            for m in wire
        )
        / count
    )
    async with factory() as store:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(0, count, 1000):
            await store.save_messages("footprint", wire[i : i + 1000])
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    per = (after - before) / count
    results.note(
        f"memory backend: {per:,.0f} bytes per stored message (tracemalloc, {count:,} "
        f"messages); their parts' JSON is {json_bytes:,.0f} bytes on average "
        f"({per / json_bytes:.2f}x)"
    )
