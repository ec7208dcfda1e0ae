"""Mutation testing of a backend under the contract suite alone (docs/mutation-testing.md).

    uv run python mutation/run.py memory            # mutate, run the suite per mutant, summarize
    uv run python mutation/run.py memory results    # any other mutmut command, run in place
    uv run python mutation/run.py memory show NAME

mutmut derives a mutant's module name from its file's path below the folder it runs
in, and finds the code to mutate only in ``src/`` there; a backend here lives in
``<folder>/src/<package>``, with its tests in the root ``tests/``. So each backend
gets a work folder, ``mutation/work/<backend>/`` (not committed), holding a copy of
its package in ``src/``, the test files its table in ``[tool.mutation]`` of the root
``pyproject.toml`` names, and a ``pyproject.toml`` with mutmut's and pytest's
settings. Results stay there between runs: mutmut re-tests only what changed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "mutation" / "work"
SUPPORT = ("conftest.py", "fix_*.py", "agents_sdk")
"""What every test file of ours needs beside it (the fixture modules and packages
that conftest.py loads)."""


def _tables() -> dict[str, dict[str, Any]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return cast(dict[str, dict[str, Any]], data["tool"]["mutation"])


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _pytest_settings() -> str:
    """The root ``[tool.pytest.ini_options]`` table, as TOML text."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^\[tool\.pytest\.ini_options\]\n(?:(?!^\[).*\n?)*", text, re.MULTILINE)
    if match is None:
        raise SystemExit("pyproject.toml has no [tool.pytest.ini_options]")
    return match.group()


def prepare(name: str, table: dict[str, Any]) -> Path:
    """Lay out (or refresh) the backend's work folder; returns it."""
    source = ROOT / str(table["source"])
    if not source.is_dir():
        raise SystemExit(f"{source.relative_to(ROOT)} does not exist (yet): nothing to mutate")
    folder = WORK / name
    tests: list[str] = list(table["tests"])
    shutil.rmtree(folder / "src", ignore_errors=True)
    shutil.rmtree(folder / "tests", ignore_errors=True)
    shutil.copytree(source, folder / "src" / source.name)
    (folder / "tests").mkdir(parents=True)
    for pattern in (*SUPPORT, *(Path(t).name for t in tests)):
        for path in (ROOT / "tests").glob(pattern):
            if path.is_dir():
                shutil.copytree(path, folder / "tests" / path.name)
            else:
                shutil.copy2(path, folder / "tests" / path.name)
    selection = _toml_list([f"tests/{Path(t).name}" for t in tests])
    settings = [
        "# Written by mutation/run.py from the root pyproject.toml; do not edit.",
        "[tool.mutmut]",
        f'source_paths = ["src/{source.name}"]',
        f"pytest_add_cli_args_test_selection = {selection}",
        *(
            f"{key} = {_toml_list(list(table[key]))}"
            for key in ("do_not_mutate", "do_not_mutate_patterns")
            if key in table
        ),
        "",
        _pytest_settings(),
    ]
    (folder / "pyproject.toml").write_text("\n".join(settings), encoding="utf-8")
    return folder


def main(argv: list[str]) -> int:
    """``run.py BACKEND [mutmut command ...]``; the command defaults to a run."""
    tables = _tables()
    if not argv or argv[0] not in tables:
        print(f"usage: run.py {{{','.join(tables)}}} [mutmut command ...]", file=sys.stderr)
        return 2
    name, command = argv[0], argv[1:] or ["run"]
    folder = prepare(name, tables[name]) if command[0] == "run" else WORK / name
    if not folder.is_dir():
        raise SystemExit(f"no mutation run of {name!r} yet: run 'run.py {name}' first")
    mutmut = [sys.executable, "-m", "mutmut"]
    done = subprocess.run([*mutmut, *command], cwd=folder, check=False)
    if command[0] == "run" and done.returncode == 0:
        return subprocess.run([*mutmut, "results"], cwd=folder, check=False).returncode
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
