"""Every rule the backends share is refused the same way by each of them: one table
of bad inputs, run against the memory, SQLite and Postgres backends and the
example plugin. The rules live once, in core; this proves no backend drifted."""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import attrs
import pytest

from chat_persistence import (
    ConfigError,
    DataPart,
    InvalidArgumentError,
    InvalidMessageError,
    Message,
    PersistenceAdapter,
    PersistenceError,
    Session,
    TextPart,
)
from chat_persistence_memory import MemoryPersistence
from chat_persistence_postgres import PostgresPersistence
from chat_persistence_sqlite import SqlitePersistence

EXAMPLE = Path(__file__).parent / "example_plugin" / "src"
BACKENDS = ["memory", "sqlite", "postgres", "example-dict"]
EAST = timezone(timedelta(hours=1))


def _example() -> type[Any]:
    """The example plugin's adapter class, imported from its source folder; the
    modules are dropped again so that the installed-wheel tests import their own."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        module = importlib.import_module("chat_persistence_example_dict._adapter")
    finally:
        sys.path.remove(str(EXAMPLE))
        for name in [m for m in sys.modules if m.startswith("chat_persistence_example_dict")]:
            del sys.modules[name]
    return cast(type[Any], module.DictPersistence)


def _construct(backend: str, tmp_path: Path, sdk_version: Any) -> PersistenceAdapter:
    """The backend's adapter, built (no I/O) with this ``sdk_version``."""
    if backend == "memory":
        return MemoryPersistence(sdk_version=sdk_version)
    if backend == "sqlite":
        return SqlitePersistence(path=str(tmp_path / "rules.db"), sdk_version=sdk_version)
    if backend == "postgres":
        unused = "postgresql://nobody@127.0.0.1:9/none"  # built only: no I/O happens
        return PostgresPersistence(conninfo=unused, sdk_version=sdk_version)
    return _example()(sdk_version=sdk_version)


def _bad(value: object) -> Any:
    """A value of a type the signature forbids (callers are not all typed)."""
    return value


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "bad", ["", "v\x00", "v\ud800", 7, b"v"], ids=["empty", "nul", "surrogate", "int", "bytes"]
)
def test_a_bad_sdk_version_is_refused_alike(backend: str, bad: object, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _construct(backend, tmp_path, bad)
    assert caught.value.option == "sdk_version"
    assert list(tmp_path.iterdir()) == []  # nothing was created


def _unchecked(**fields: Any) -> Message:
    """A message built with attrs validators off, as a careless caller might."""
    given: dict[str, Any] = {"id": "m", "role": "user", "parts": (), **fields}
    with attrs.validators.disabled():
        return Message(**given)


def _session(**fields: Any) -> Session:
    given: dict[str, Any] = {"id": "rules-s", "thread_id": "rules-t", "sdk_version": "v"}
    return Session(**given, **fields)


Call = Callable[[PersistenceAdapter], Awaitable[object]]
CASES: dict[str, Call] = {
    "empty thread id": lambda a: a.save_messages("", [Message("m", "user", [])]),
    "messages not a sequence": lambda a: a.save_messages("rules-t", _bad("m")),
    "not a message": lambda a: a.save_messages("rules-t", [_bad({"id": "m"})]),
    "one id twice": lambda a: a.save_messages(
        "rules-t", [Message("m", "user", []), Message("m", "user", [])]
    ),
    "empty role": lambda a: a.save_messages("rules-t", [_unchecked(role="")]),
    "NUL in text": lambda a: a.save_messages("rules-t", [_unchecked(parts=(_text("a\x00"),))]),
    "NaN in data": lambda a: a.save_messages("rules-t", [_unchecked(parts=(_data(math.nan),))]),
    "naive created_at": lambda a: a.save_messages(
        "rules-t", [_unchecked(created_at=datetime(2024, 1, 1))]
    ),
    "created_at outside UTC": lambda a: a.save_messages(
        "rules-t", [Message("m", "user", [], created_at=datetime.min.replace(tzinfo=EAST))]
    ),
    "id over 512 bytes": lambda a: a.save_messages("rules-t", [Message("é" * 300, "user", [])]),
    "negative limit": lambda a: a.list_messages("rules-t", limit=-1),
    "bool limit": lambda a: a.list_messages("rules-t", limit=_bad(True)),
    "empty cursor": lambda a: a.list_messages("rules-t", before=""),
    "NUL message id": lambda a: a.get_message("rules-t", "a\x00"),
    "naive expected_updated_at": lambda a: a.save_session(
        _session(), expected_updated_at=datetime(2024, 1, 1)
    ),
    "string expected_updated_at": lambda a: a.save_session(
        _session(),
        expected_updated_at=_bad("2024-01-01"),
    ),
    "session created_at outside UTC": lambda a: a.save_session(
        _session(created_at=datetime.min.replace(tzinfo=EAST))
    ),
    "empty archive thread": lambda a: a.archive_session("rules-s", thread_id=""),
    "delete ids not a sequence": lambda a: a.delete_messages("rules-t", _bad("m")),
    "empty id to delete": lambda a: a.delete_messages("rules-t", ["m", ""]),
}


def _text(value: str) -> TextPart:
    with attrs.validators.disabled():
        return TextPart(value)


def _data(value: object) -> DataPart:
    with attrs.validators.disabled():
        return DataPart(data=_bad(value))


def _outcome(err: BaseException) -> tuple[str, object, object]:
    """What a caller can act on: the error's type and the thing it names."""
    named = getattr(err, "field", None) or getattr(err, "argument", None)
    return (type(err).__name__, named, getattr(err, "message_id", None))


@pytest.fixture
async def memory_adapter() -> AsyncIterator[PersistenceAdapter]:
    async with MemoryPersistence() as adapter:
        yield adapter


@pytest.fixture
async def example_adapter() -> AsyncIterator[PersistenceAdapter]:
    async with _example()() as adapter:
        yield adapter


@pytest.fixture(params=BACKENDS)
def any_adapter(request: pytest.FixtureRequest) -> PersistenceAdapter:
    """An open adapter of each backend (postgres and sqlite from their fix_ modules)."""
    fixture = {
        "memory": "memory_adapter",
        "sqlite": "sqlite_adapter",
        "postgres": "pg_adapter",
        "example-dict": "example_adapter",
    }[request.param]
    return request.getfixturevalue(fixture)


async def _memory_outcome(call: Call) -> tuple[str, object, object]:
    async with MemoryPersistence() as reference:
        with pytest.raises(PersistenceError) as caught:
            await call(reference)
    return _outcome(caught.value)


@pytest.mark.parametrize("case", CASES)
async def test_every_backend_refuses_alike_and_writes_nothing(
    case: str, any_adapter: PersistenceAdapter
) -> None:
    call = CASES[case]
    expected = await _memory_outcome(call)
    assert expected[0] in {InvalidMessageError.__name__, InvalidArgumentError.__name__}
    with pytest.raises(PersistenceError) as caught:
        await call(any_adapter)
    assert _outcome(caught.value) == expected
    assert await any_adapter.list_messages("rules-t") == []
    assert await any_adapter.get_session("rules-s") is None
