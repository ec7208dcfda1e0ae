"""What the README and the adapter guide tell a new user to run works, as written."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "writing-an-adapter.md"
EXAMPLE = ROOT / "tests" / "example_plugin"


def section(text: str, heading: str) -> str:
    """The body of the markdown section under ``heading``, up to the next one."""
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    end = text.find("\n## ", start)
    return text[start : end if end >= 0 else len(text)]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_readme_use_is_a_program_that_prints_what_its_comments_say(tmp_path: Path) -> None:
    [program] = code_blocks(section(README.read_text(), "## Use"), "python")
    assert "asyncio.run(" in program
    expected = re.findall(r"# prints: (.*)$", program, flags=re.MULTILINE)
    assert len(expected) >= 6  # paging both ways and the archive rules
    script = tmp_path / "use.py"
    script.write_text(program)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_PERSISTENCE_")}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected
    assert done.stderr == ""


def _install_commands() -> list[str]:
    """The guide's install step: the shell block that installs the example's package."""
    for block in code_blocks(GUIDE.read_text(), "sh"):
        lines = [line.split("   #")[0].strip() for line in block.splitlines()]
        if any(line.startswith("pip install") for line in lines):
            return [line for line in lines if line]
    pytest.fail("the guide has no install step")


def test_the_guide_install_step_works_from_a_clone(tmp_path: Path) -> None:
    commands = _install_commands()
    install, run_tests = commands[0], commands[1]
    assert install.startswith("pip install")
    assert "$CLONE/core" in install
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv is not None, "the test drives the guide's commands with uv, the workspace's tool"
    package = tmp_path / "package"
    shutil.copytree(
        EXAMPLE, package, ignore=shutil.ignore_patterns("conftest.py", "__pycache__", ".*")
    )
    venv = tmp_path / "venv"
    subprocess.run(
        [uv, "venv", "--quiet", "--no-config", "--python", sys.executable, str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    # The guide's "uv pip install ..." alternative, its arguments verbatim.
    args = [a.replace("$CLONE", str(ROOT)) for a in shlex.split(install)[2:]]
    installed = subprocess.run(
        [uv, "pip", "install", "--quiet", "--no-config", "--python", str(python), *args],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    [tool, *rest] = shlex.split(run_tests)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CHAT_PERSISTENCE_", "PYTEST_"))
    }
    tested = subprocess.run(
        [str(venv / "bin" / tool), "-q", "-p", "no:cacheprovider", *rest],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert tested.returncode == 0, tested.stdout[-2000:]
    assert re.search(r"\d+ passed", tested.stdout)
