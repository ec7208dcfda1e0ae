"""Every package says what is public: an explicit, sorted ``__all__`` that matches
its public names (the habit of httpx's test of the same name)."""

from __future__ import annotations
import __future__

import importlib
import types
from typing import cast

import pytest

PACKAGES = [
    "chat_persistence",
    "chat_persistence_memory",
    "chat_persistence_postgres",
    "chat_persistence_contract",
    "chat_persistence_sqlite",
    "chat_persistence_openai_agents",
]


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    if name.isupper() and len(name) > 1:
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


@pytest.fixture(params=PACKAGES)
def package(request: pytest.FixtureRequest) -> types.ModuleType:
    return importlib.import_module(request.param)


def test_all_is_an_explicit_list_of_strings(package: types.ModuleType) -> None:
    exported: object = vars(package).get("__all__")
    assert isinstance(exported, list), f"{package.__name__} has no __all__ list"
    assert all(type(name) is str for name in cast(list[object], exported))


def test_all_is_sorted_without_duplicates(package: types.ModuleType) -> None:
    exported: list[str] = package.__all__
    assert exported == sorted(set(exported), key=isort_key)


def test_every_exported_name_exists(package: types.ModuleType) -> None:
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert missing == []


def test_every_public_name_is_exported(package: types.ModuleType) -> None:
    # Submodules are reached as modules, and `from __future__ import annotations`
    # binds a compiler directive, not an API.
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and not isinstance(value, (types.ModuleType, __future__._Feature))
    }
    assert public - set(package.__all__) == set()
