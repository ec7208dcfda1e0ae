"""The ``memory`` backend of chat-persistence: chat history kept in this process.

``create_adapter("memory://")`` gives an adapter with a private store;
``memory://NAME`` shares a named store across adapters of the process.
"""

from ._adapter import MemoryPersistence
from ._plugin import MemoryOptions

__all__ = ["MemoryOptions", "MemoryPersistence"]
