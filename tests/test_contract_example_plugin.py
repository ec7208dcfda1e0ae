"""A third-party author's path, proven.

The example plugin in tests/example_plugin (the package docs/writing-an-adapter.md
walks through) is built into a wheel and installed into a temporary folder, exactly
as pip would; the registry then finds it by name through its entry point, and it
passes the contract suite through both doors, in this process and in a fresh one.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import distributions
from pathlib import Path

import pytest

from chat_persistence import Capability, ConfigError, Registry
from chat_persistence_contract import arun_contract, ordered_checks

EXAMPLE = Path(__file__).parent / "example_plugin"
GUIDE = Path(__file__).parent.parent / "docs" / "writing-an-adapter.md"
FILES = {
    "pyproject.toml": "toml",
    "src/chat_persistence_example_dict/__init__.py": "python",
    "src/chat_persistence_example_dict/_plugin.py": "python",
    "src/chat_persistence_example_dict/_adapter.py": "python",
    "tests/test_contract.py": "python",
}
"""Every file of the example package, with the language of its block in the guide."""


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("building the example plugin needs uv, the workspace's own tool")
    return uv


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example, its wheel (built offline) and a folder it is installed in."""
    root = tmp_path_factory.mktemp("example")
    shutil.copytree(
        EXAMPLE,
        root / "source",
        ignore=shutil.ignore_patterns("conftest.py", "__pycache__", ".*"),
    )
    uv = _uv()
    build = [uv, "build", "--offline", "--no-config", "--wheel", "--out-dir", str(root / "dist")]
    subprocess.run([*build, str(root / "source")], check=True, capture_output=True, timeout=120)
    (wheel,) = (root / "dist").glob("chat_persistence_example_dict-0.1.0-*.whl")
    install = [uv, "pip", "install", "--offline", "--no-config", "--no-deps", "--quiet"]
    install += ["--target", str(root / "site"), "--python", sys.executable, str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=120)
    return root


@pytest.fixture
def on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installed example importable in this process, for this test only."""
    site = installed / "site"
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m.startswith("chat_persistence_example_dict")]:
        del sys.modules[name]


def test_the_installed_example_carries_its_entry_point(installed: Path) -> None:
    (dist,) = distributions(path=[str(installed / "site")])
    assert dist.metadata["Name"] == "chat-persistence-example-dict"
    (entry_point,) = dist.entry_points.select(group="chat_persistence")
    assert (entry_point.name, entry_point.value) == (
        "example-dict",
        "chat_persistence_example_dict._plugin",
    )


async def test_the_registry_finds_the_example_by_name_and_it_passes(on_path: Path) -> None:
    registry = Registry()
    (info,) = [i for i in registry.available_backends() if i.name == "example-dict"]
    assert info.ok
    assert (info.distribution, info.version) == ("chat-persistence-example-dict", "0.1.0")
    adapter = registry.create_adapter({"backend": "example-dict"})
    module = sys.modules[type(adapter).__module__]
    assert Path(str(module.__file__)).is_relative_to(on_path)
    tuned = registry.create_adapter("example-dict://?sdk_version=mine/2")
    assert getattr(tuned, "sdk_version", None) == "mine/2"
    with pytest.raises(ConfigError, match="colour"):
        registry.create_adapter("example-dict://?colour=red")
    report = await arun_contract(
        lambda: registry.create_adapter({"backend": "example-dict"}),
        required_capabilities={Capability.TIES_IN_SAVE_ORDER},
    )
    assert report.passed, report.format()
    assert {r.name for r in report.skipped} == {
        "data_survives_reopening",
        "other_loops_and_threads_share_the_adapter",
    }


def _fresh_env(installed: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CHAT_PERSISTENCE_", "PYTEST_"))
    }
    env["PYTHONPATH"] = str(installed / "site")
    env.pop("HYPOTHESIS_STORAGE_DIRECTORY", None)
    return env


def test_the_example_contract_file_passes_in_a_fresh_interpreter(installed: Path) -> None:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs"]
    done = subprocess.run(
        [*command, "tests/test_contract.py"],
        cwd=installed / "source",
        env=_fresh_env(installed),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(ordered_checks()) - 2} passed, 2 skipped" in done.stdout
    assert "the adapter does not declare capability durable" in done.stdout


def test_run_contract_on_the_example_url_in_a_fresh_interpreter(installed: Path) -> None:
    script = (
        "import sys\n"
        "from chat_persistence_contract import run_contract\n"
        "report = run_contract('example-dict://', required_capabilities=['ties-in-save-order'])\n"
        "print(report.format())\n"
        "sys.exit(0 if report.passed else 1)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=installed,
        env=_fresh_env(installed),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("chat-persistence contract: example-dict://\n")
    assert not (installed / ".hypothesis").exists()


def test_the_guide_shows_every_file_of_the_example_as_it_is() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    for relative, language in FILES.items():
        text = (EXAMPLE / relative).read_text(encoding="utf-8")
        assert f"```{language}\n{text}```" in guide, f"{relative} differs from the guide"


def test_the_guide_names_every_check() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    missing = [c.name for c in ordered_checks() if f"`{c.name}`" not in guide]
    assert not missing
