"""The memory backend passes the contract suite through the pytest door, declaring
what it must: on a clock as fine as this machine's, and on a coarse one."""

import time
import uuid
from collections.abc import AsyncIterator

import pytest

import chat_persistence_memory._adapter as memory_adapter
from chat_persistence import Capability, PersistenceAdapter, create_adapter
from chat_persistence_contract import AdapterFactory, PersistenceAdapterContract

TICK_US = 15_625
"""A clock tick of 15.625 ms, as Windows' default timer has."""


@pytest.fixture
def store_url() -> str:
    """A named memory store of its own: durable across adapters, so nothing is skipped."""
    return f"memory://contract-{uuid.uuid4().hex}"


class TestMemoryContract(PersistenceAdapterContract):
    """Every check against ``memory://NAME``, reopened on the same store for durability."""

    required_capabilities = frozenset({Capability.DURABLE, Capability.TIES_IN_SAVE_ORDER})

    @pytest.fixture
    async def adapter(self, store_url: str) -> AsyncIterator[PersistenceAdapter]:
        async with create_adapter(store_url) as adapter:
            yield adapter

    @pytest.fixture
    def reopen_adapter(self, store_url: str) -> AdapterFactory:
        return lambda: create_adapter(store_url)


def _coarse_now_us() -> int:
    return time.time_ns() // 1000 // TICK_US * TICK_US


class TestMemoryContractOnACoarseClock(TestMemoryContract):
    """The same checks while the backend's clock ticks every 15.625 ms, so many saves
    fall within one tick: times the store assigns must still strictly increase."""

    @pytest.fixture(autouse=True)
    def _coarse_clock(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(memory_adapter, "_now_us", _coarse_now_us)
