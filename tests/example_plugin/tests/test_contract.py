"""The shared contract suite, run against the example-dict backend."""

from collections.abc import AsyncIterator

import pytest_asyncio

from chat_persistence import PersistenceAdapter, create_adapter
from chat_persistence_contract import PersistenceAdapterContract


class TestExampleDictContract(PersistenceAdapterContract):
    """One test per contract check; what needs a capability we lack is skipped."""

    @pytest_asyncio.fixture
    async def adapter(self) -> AsyncIterator[PersistenceAdapter]:
        async with create_adapter("example-dict://") as adapter:
            yield adapter
