"""The peers: each installed into its own virtual environment by the benchmark
(never a dependency of our packages), driven through a worker subprocess that
answers one timed run per request, so peer runs interleave with ours."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENVS = HERE.parent / ".peers-venv"
WORKER = HERE / "worker.py"

REQUIREMENTS: dict[str, list[str]] = {
    "langchain-postgres": ["langchain-postgres", "psycopg[binary]"],
    "openai-agents": ["openai-agents[sqlalchemy]", "asyncpg", "psycopg[binary]"],
    "google-adk": ["google-adk[db]", "asyncpg", "psycopg[binary]"],
}


@dataclass
class Install:
    peer: str
    python: Path | None
    seconds: float
    cached: bool
    error: str = ""


def install(peer: str, *, python: str = "3.11") -> Install:
    """Make (or reuse) ``.peers-venv/<peer>`` with the peer installed; never raises."""
    venv = VENVS / peer
    requirements = REQUIREMENTS[peer]
    stamp = venv / ".bench-installed"
    digest = hashlib.sha256(json.dumps(requirements).encode()).hexdigest()
    bin_python = venv / "bin" / "python"
    if stamp.exists() and bin_python.exists():
        recorded = json.loads(stamp.read_text())
        if recorded.get("digest") == digest:
            return Install(peer, bin_python, recorded.get("seconds", 0.0), cached=True)
    uv = shutil.which("uv")
    if uv is None:
        return Install(peer, None, 0.0, False, "not installed: uv is not on PATH")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    start = time.perf_counter()
    try:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run(
            [uv, "venv", "-q", "-p", python, str(venv)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(bin_python), *requirements],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            timeout=1800,
        )
    except subprocess.CalledProcessError as err:
        reason = (err.stderr or err.stdout or str(err)).strip().splitlines()
        return Install(
            peer,
            None,
            time.perf_counter() - start,
            False,
            f"not installed: {reason[-1] if reason else err}",
        )
    except Exception as err:
        return Install(
            peer,
            None,
            time.perf_counter() - start,
            False,
            f"not installed: {type(err).__name__}: {err}",
        )
    seconds = time.perf_counter() - start
    stamp.write_text(json.dumps({"digest": digest, "seconds": seconds}))
    return Install(peer, bin_python, seconds, cached=False)


@dataclass
class Worker:
    """One peer's worker process."""

    peer: str
    name: str
    proc: asyncio.subprocess.Process
    supports: dict[str, str]
    version: str
    setup_seconds: float

    async def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(payload) + "\n").encode())
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.peer} worker exited (see its stderr)")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer


@dataclass
class PeerSet:
    """The peers that installed and set up, and why the others did not."""

    workers: list[Worker] = field(default_factory=list[Worker])
    missing: dict[str, str] = field(default_factory=dict[str, str])
    installs: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])

    def contenders(self, key: str, inner: int = 1, label: str = "") -> dict[str, Any]:
        """Timed runs of worker case ``key`` for every peer that supports it."""
        runs: dict[str, Any] = {}
        for worker in self.workers:
            if key not in worker.supports:
                continue

            async def run(worker: Worker = worker) -> float:
                answer = await worker.call({"op": "run", "key": key, "inner": inner})
                return float(answer["seconds"])

            runs[f"{worker.name}{label}"] = run
        return runs

    def notes(self, key: str, label: str = "") -> dict[str, str]:
        return {f"{w.name}{label}": w.supports[key] for w in self.workers if key in w.supports}

    def unsupported(self, key: str) -> list[str]:
        return [w.name for w in self.workers if key not in w.supports]

    async def close(self) -> None:
        for worker in self.workers:
            try:
                assert worker.proc.stdin is not None
                worker.proc.stdin.write(b'{"op": "quit"}\n')
                await worker.proc.stdin.drain()
                worker.proc.stdin.close()
                await asyncio.wait_for(worker.proc.wait(), 30)
            except Exception:
                worker.proc.kill()


async def start(dsn: str, sizes: dict[str, int], peers: list[str] | None = None) -> PeerSet:
    """Install (or reuse) each peer's venv, start its worker, and set it up on the
    same server and workload; a peer that fails is recorded, never raised."""
    result = PeerSet()
    log_dir = HERE.parent / "results"
    log_dir.mkdir(parents=True, exist_ok=True)
    for peer in peers or list(REQUIREMENTS):
        print(f"- peer {peer}: installing", file=sys.stderr, flush=True)
        done = await asyncio.to_thread(install, peer)
        result.installs.append(
            {
                "peer": peer,
                "seconds": round(done.seconds, 1),
                "cached": done.cached,
                "error": done.error,
            }
        )
        print(
            f"  {'cached venv (installed in' if done.cached else 'installed in'} "
            f"{done.seconds:.1f} s{')' if done.cached else ''}"
            if done.python
            else f"  {done.error}",
            file=sys.stderr,
            flush=True,
        )
        if done.python is None:
            result.missing[peer] = done.error
            continue
        stderr = (log_dir / f"peer-{peer}.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            str(done.python),
            str(WORKER),
            peer,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            limit=2**24,
        )
        worker = Worker(peer, peer, proc, {}, "", 0.0)
        try:
            answer = await asyncio.wait_for(
                worker.call({"op": "setup", "dsn": dsn, "sizes": sizes}), 1800
            )
        except Exception as err:
            result.missing[peer] = f"set-up failed: {err}"
            print(f"  set-up failed: {err}", file=sys.stderr, flush=True)
            proc.kill()
            continue
        worker.name = answer["name"]
        worker.supports = answer["supports"]
        worker.version = answer["version"]
        worker.setup_seconds = answer["setup_seconds"]
        print(
            f"  {worker.name} {worker.version}: set up in {worker.setup_seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        result.workers.append(worker)
    return result
