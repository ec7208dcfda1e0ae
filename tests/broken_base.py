"""The base of the deliberately broken adapters (tests/broken_adapters.py): the memory
backend on a store class of its own, correct until a subclass breaks one thing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

from chat_persistence import (
    Capability,
)
from chat_persistence_memory import MemoryPersistence
from chat_persistence_memory._store import (
    Store,
)

LAST = datetime.max.replace(tzinfo=UTC)
US = timedelta(microseconds=1)
TWENTY_DAYS_US = 20 * 24 * 3600 * 1_000_000


class BrokenMemory(MemoryPersistence):
    """The memory backend on a private store of ``store_class``: correct as it is."""

    broken_rule: ClassVar[str] = ""
    caught_by: ClassVar[frozenset[str]] = frozenset()
    required: ClassVar[frozenset[Capability]] = frozenset({Capability.TIES_IN_SAVE_ORDER})
    """What the teeth test requires of it (``required_capabilities``)."""
    store_class: ClassVar[type[Store]] = Store

    def __init__(self) -> None:
        super().__init__()
        self._store = self.store_class()
