"""Print a run's JSON as the Markdown that ``docs/performance.md`` quotes.

uv run python benchmarks/report.py [benchmarks/results/latest.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from harness import Figure, Results, Target, render_table

ROOT = Path(__file__).resolve().parent


def load(path: Path) -> tuple[Results, dict[str, Any]]:
    data = json.loads(path.read_text())
    results = Results()
    for f in data["figures"]:
        results.figures.append(
            Figure(
                f["case"],
                f["contender"],
                f["ops"],
                f["samples"],
                f["baseline"],
                f["ratio"],
                f["ratio_min"],
                f["ratio_max"],
                f["note"],
            )
        )
    results.targets = [Target(**t) for t in data["targets"]]
    results.notes = data["notes"]
    return results, data


def markdown(path: Path) -> str:
    results, data = load(path)
    m, s = data["machine"], data.get("server", {})
    lines = [
        f"Run of {m['when']} at commit `{m['commit']}`"
        f"{' plus uncommitted changes' if m.get('uncommitted_changes') else ''} "
        f"({'quick' if data['args'].get('quick') == 'True' else 'full'} sizes, "
        f"{data['sizes']['reps']} rounds per figure, {data['seconds']} s in all).",
        "",
        f"- Machine: {m['nproc']} CPUs, {m['cpu']}, {m['memory']}, {m['platform']}, "
        f"Python {m['python']}.",
    ]
    if s:
        lines.append(
            f"- Server: {s['version'].split(' on ')[0]}, started by the benchmark "
            f"(shared_buffers {s['shared_buffers']}, fsync {s['fsync']}, "
            f"synchronous_commit {s['synchronous_commit']}, jit {s['jit']})."
        )
    peers = data.get("peers")
    if peers:
        versions = ", ".join(f"{k} {v}" for k, v in peers["versions"].items())
        lines.append(f"- Peers: {versions}.")
        for peer, why in peers["missing"].items():
            lines.append(f"- Peer {peer}: {why}.")
    lines += ["", render_table(results), ""]
    lines += [f"- {n}" for n in results.notes]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "results" / "latest.json"))
