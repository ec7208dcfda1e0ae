"""The benchmark never rots: a smoke run of every workload (small sizes, one round,
no peers) completes and reports every figure. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_runs_every_workload(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--no-peers",
            "--reps",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    failed = [f for f in report["figures"] if f["note"].startswith("failed")]
    assert failed == []
    cases = {f["case"].split(" (")[0] for f in report["figures"]}
    for prefix in (
        "W1 batch",
        "W1 single save",
        "W2 read whole",
        "W2 read newest",
        "W3",
        "W4",
        "SQLite: batch",
        "SQLite: read whole",
        "Agents SDK session over sqlite",
        "Agents SDK session over pg16",
    ):
        assert any(c.startswith(prefix) for c in cases), (prefix, sorted(cases))
    assert not [n for n in report["notes"] if " failed: " in n]
    ours = [f for f in report["figures"] if f["contender"] == "chat-persistence postgres"]
    assert ours
    assert all(f["ratio"] is not None for f in ours)
