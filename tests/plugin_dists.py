"""Plugins for registry and CLI tests: real objects with real hook implementations
(no mocks of pluggy), and real installed distributions written to a folder on
``sys.path`` (a ``.dist-info`` with ``entry_points.txt``), as pip would leave them."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from chat_persistence import Backend, PersistenceAdapter, hookimpl
from chat_persistence_memory import MemoryPersistence


@attrs.frozen
class FakeOptions:
    """Options of the test backends: one of each type the registry converts."""

    level: int = 1
    label: str = "plain"
    verbose: bool = False
    ratio: float = 0.5


@attrs.frozen
class NeedsPathOptions:
    """Options with a required field."""

    path: str


class RecordingMemory(MemoryPersistence):
    """A real memory adapter that remembers the options it was built from."""

    def __init__(self, options: object) -> None:
        super().__init__()
        self.options = options


def recording_factory(options: Any) -> PersistenceAdapter:
    return RecordingMemory(options)


def query_options(url: str) -> Mapping[str, Any]:
    """``scheme://anything?k=v&...`` -> ``{"k": "v", ...}``."""
    _, _, query = url.partition("?")
    return dict(pair.split("=", 1) for pair in query.split("&") if pair)


def backend(name: str, **changes: Any) -> Backend:
    """A backend called ``name`` that builds a ``RecordingMemory``."""
    fields: dict[str, Any] = {
        "name": name,
        "factory": recording_factory,
        "options": FakeOptions,
        "schemes": (name,),
        "description": f"The {name} test backend. It keeps messages in memory.",
        "url_options": query_options,
    }
    fields.update(changes)
    return Backend(**fields)


class Provides:
    """A plugin object whose hook returns the given backends."""

    def __init__(self, *backends: Backend) -> None:
        self.backends = list(backends)

    @hookimpl
    def chat_persistence_backends(self) -> list[Backend]:
        return self.backends


class Raises:
    """A plugin whose hook raises."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    @hookimpl
    def chat_persistence_backends(self) -> list[Backend]:
        raise self.error


class Misspelled:
    """A plugin whose hook name has a typo: pluggy's ``check_pending`` catches it."""

    @hookimpl
    def chat_persistence_backend(self) -> list[Backend]:
        return [backend("never-seen")]


def write_distribution(
    root: Path,
    name: str,
    *,
    entry_points: Mapping[str, str],
    modules: Mapping[str, str],
    version: str = "1.0",
) -> None:
    """Write an installed distribution into ``root``: its modules, and a
    ``.dist-info`` declaring ``entry_points`` in the ``chat_persistence`` group."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[chat_persistence]\n{lines}", encoding="utf-8")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")


BROKEN_MODULE = """\
raise RuntimeError("broken plugin: this module fails at import")
"""


def install_broken_plugin(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put ``broken-plugin-dist 1.0`` on ``sys.path``: entry point ``brokenplug``,
    whose module raises on import."""
    write_distribution(
        root,
        "broken-plugin-dist",
        entry_points={"brokenplug": "cp_test_broken_plugin"},
        modules={"cp_test_broken_plugin": BROKEN_MODULE},
    )
    monkeypatch.syspath_prepend(str(root))
