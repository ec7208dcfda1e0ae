"""The example in docs/openai-agents.md runs offline, twice, each run a process of
its own sharing only the SQLite file, and prints what the page says each run prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parent.parent / "docs" / "openai-agents.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_example_runs_offline_and_prints_what_the_page_says(tmp_path: Path) -> None:
    (example,) = [b for b in blocks("python") if "asyncio.run(main())" in b]
    printed = blocks("text")
    assert len(printed) == 2
    script = tmp_path / "example.py"
    script.write_text(example)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTEST_"))}
    env["OPENAI_AGENTS_DISABLE_TRACING"] = "1"  # tracing would try to upload: no network
    for expected in printed:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == expected
        assert done.stderr == ""
    assert (tmp_path / "agents.db").is_file()
