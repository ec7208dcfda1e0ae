"""The OpenAI Agents SDK's own session tests, run with ``ChatPersistenceSession``
standing in for ``SQLiteSession``, over every backend that has ``delete_messages``.

The suite comes from the sdist of the installed (pinned) version; the plugin
``agents_sdk.rebind`` rebinds the names and lists, with reasons, the tests of
``SQLiteSession``'s own machinery it deselects. Everything else must pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents_sdk.backends import DELETE_BACKENDS
from agents_sdk.rebind import DESELECTED, DESELECTED_PREFIXES
from agents_sdk.sdist import SUITE_FILES, sdk_source
from fix_pg import PgServer, make_schema

TESTS_DIR = Path(__file__).parent

EXPECTED_PASSED = 54
"""The SDK 0.24.0 suite files hold 73 tests; 19 are deselected (16 names, one of
them parametrized three ways)."""


@pytest.fixture(scope="session")
def sdk_tree() -> Path:
    return sdk_source()


@pytest.fixture(params=DELETE_BACKENDS)
def backend_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    backend: str = request.param
    env = {"CP_AGENTS_SDK_BACKEND": backend}
    if backend == "postgres":
        server: PgServer = request.getfixturevalue("pg16")
        for schema in make_schema(server):
            yield {
                **env,
                "CP_AGENTS_SDK_PG_DSN": server.dsn,
                "CP_AGENTS_SDK_PG_SCHEMA": schema.name,
            }
        return
    if backend == "sqlite":
        folder: Path = request.getfixturevalue("tmp_path")
        env["CP_AGENTS_SDK_SQLITE_DIR"] = str(folder)
    yield env


def run_suite(tree: Path, env: dict[str, str], report: Path) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    environ.pop("OPENAI_API_KEY", None)  # the suite never reaches a model
    environ |= env | {
        "CP_AGENTS_SDK_REPORT": str(report),
        "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "agents_sdk.rebind",
            *SUITE_FILES,
        ],
        cwd=tree,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert report.exists(), done.stdout[-4000:] + done.stderr[-4000:]
    result: dict[str, Any] = json.loads(report.read_text())
    result["exit"] = done.returncode
    result["output"] = done.stdout[-6000:]
    return result


def test_sdk_session_suite_passes(
    sdk_tree: Path, backend_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_suite(sdk_tree, backend_env, tmp_path / "report.json")
    tests: dict[str, dict[str, Any]] = result["tests"]
    outcomes = {nodeid: t["outcome"] for nodeid, t in tests.items()}
    not_passed = {n: o for n, o in outcomes.items() if o != "passed"}
    assert not_passed == {}, result["output"]
    assert result["exit"] == 0, result["output"]
    assert len(outcomes) == EXPECTED_PASSED
    # Every deselection is listed with a reason, and nothing else was left out.
    deselected = {n.split("[")[0] for n in result["deselected"]}
    assert deselected == set(DESELECTED) | set(DESELECTED_PREFIXES)
    assert len(result["deselected"]) == 19
    # The rebinding took: each test that makes a session made ours.
    users = [n for n, t in tests.items() if t.get("uses_rebound")]
    assert len(users) >= 45
    assert [n for n in users if tests[n].get("sessions_made", 0) < 1] == []
