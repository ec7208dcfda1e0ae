"""Fixtures of the bridge's tests: an open adapter per backend of ``BACKENDS``.

``adapter`` runs a test over every backend; ``delete_adapter`` over those that have
``delete_messages`` (``pop_item`` needs it). A new backend is one more branch here
and one more name in ``agents_sdk.backends.BACKENDS``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from agents_sdk.backends import BACKENDS, DELETE_BACKENDS
from chat_persistence import PersistenceAdapter
from chat_persistence_memory import MemoryPersistence
from chat_persistence_openai_agents import ChatPersistenceSession


@pytest.fixture(autouse=True, scope="session")
def _no_trace_export() -> Iterator[None]:
    """The SDK's tracing would try to upload runs at exit: there is no network here."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
        yield


@pytest.fixture
async def memory_adapter() -> AsyncIterator[MemoryPersistence]:
    """An open memory adapter with a private store."""
    async with MemoryPersistence() as adapter:
        yield adapter


def _backend_adapter(request: pytest.FixtureRequest) -> PersistenceAdapter:
    backend: str = request.param
    if backend == "memory":
        return request.getfixturevalue("memory_adapter")
    if backend == "postgres":
        return request.getfixturevalue("pg_adapter")
    if backend == "sqlite":
        return request.getfixturevalue("sqlite_adapter")  # tests/fix_sqlite.py
    raise ValueError(f"no fixture for backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def adapter(request: pytest.FixtureRequest) -> PersistenceAdapter:
    """An open adapter of each backend in turn (host-owned: the fixture closes it)."""
    return _backend_adapter(request)


@pytest.fixture(params=DELETE_BACKENDS)
def delete_adapter(request: pytest.FixtureRequest) -> PersistenceAdapter:
    """An open adapter of each backend that implements ``delete_messages``."""
    return _backend_adapter(request)


@pytest.fixture
def thread_id() -> str:
    """A fresh thread id, which is the SDK session id."""
    return f"agents-{uuid.uuid4().hex}"


@pytest.fixture
def session(adapter: PersistenceAdapter, thread_id: str) -> ChatPersistenceSession:
    """A session on ``adapter``."""
    return ChatPersistenceSession(thread_id, adapter)


@pytest.fixture
def pop_session(delete_adapter: PersistenceAdapter, thread_id: str) -> ChatPersistenceSession:
    """A session on an adapter that can pop."""
    return ChatPersistenceSession(thread_id, delete_adapter)
