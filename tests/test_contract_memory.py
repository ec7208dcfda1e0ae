"""The memory backend passes the contract suite through the pytest door."""

import uuid
from collections.abc import AsyncIterator

import pytest

from chat_persistence import PersistenceAdapter, create_adapter
from chat_persistence_contract import AdapterFactory, PersistenceAdapterContract


@pytest.fixture
def store_url() -> str:
    """A named memory store of its own: durable across adapters, so nothing is skipped."""
    return f"memory://contract-{uuid.uuid4().hex}"


class TestMemoryContract(PersistenceAdapterContract):
    """Every check against ``memory://NAME``, reopened on the same store for durability."""

    @pytest.fixture
    async def adapter(self, store_url: str) -> AsyncIterator[PersistenceAdapter]:
        async with create_adapter(store_url) as adapter:
            yield adapter

    @pytest.fixture
    def reopen_adapter(self, store_url: str) -> AdapterFactory:
        return lambda: create_adapter(store_url)
