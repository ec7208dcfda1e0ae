"""mutation/run.py lays out a work folder that mutmut reads as intended: the backend's
package under src/, its contract test beside our fixtures, and the settings from the
root pyproject.toml (the measurement itself is not part of the test run)."""

import importlib.util
import os
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_run", ROOT / "mutation" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_work_folder_holds_the_package_the_tests_and_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _runner()
    monkeypatch.setattr(run, "WORK", tmp_path)
    tables = run._tables()
    assert set(tables) >= {"memory", "sqlite"}
    folder: Path = run.prepare("memory", tables["memory"])
    assert (folder / "src" / "chat_persistence_memory" / "_store.py").is_file()
    fixtures = sorted(p.name for p in (run.ROOT / "tests").glob("fix_*.py"))
    assert "fix_pg.py" in fixtures
    assert sorted(p.name for p in (folder / "tests").iterdir()) == sorted(
        ["conftest.py", "agents_sdk", *fixtures, "test_contract_memory.py"]
    )
    settings = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    assert settings["tool"]["mutmut"] == {
        "source_paths": ["src/chat_persistence_memory"],
        "pytest_add_cli_args_test_selection": ["tests/test_contract_memory.py"],
        "do_not_mutate": ["*/_plugin.py", "*/__init__.py"],
    }
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert settings["tool"]["pytest"] == root["tool"]["pytest"]
    again: Path = run.prepare("memory", tables["memory"])  # a second run refreshes in place
    assert again == folder


def test_mutmut_reads_the_work_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _runner()
    monkeypatch.setattr(run, "WORK", tmp_path)
    folder: Path = run.prepare("memory", run._tables()["memory"])
    from mutmut import configuration

    monkeypatch.chdir(folder)
    monkeypatch.setattr(configuration, "_config", None)
    config = configuration.config()
    assert config.source_paths == [Path("src/chat_persistence_memory")]
    assert config.should_mutate("src/chat_persistence_memory/_store.py")
    assert not config.should_mutate("src/chat_persistence_memory/_plugin.py")
    assert Path(os.getcwd()) == folder
    monkeypatch.setattr(configuration, "_config", None)


def test_a_backend_not_there_yet_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _runner()
    monkeypatch.setattr(run, "WORK", tmp_path)
    with pytest.raises(SystemExit, match="does not exist"):
        run.prepare("ghost", {"source": "ghost_adapter/src/ghost", "tests": []})
    assert run.main(["no-such-backend"]) == 2
