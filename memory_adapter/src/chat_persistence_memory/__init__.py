"""The ``memory`` backend of chat-persistence: chat history kept in this process.

``create_adapter("memory://")`` gives an adapter with a private store;
``memory://NAME`` shares a named store across adapters of the process.

Both names load on first use: the registry imports this package to find the
backend, and that costs only the plugin module.
"""

from __future__ import annotations

import typing

from chat_persistence._lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
    from ._adapter import MemoryPersistence
    from ._plugin import MemoryOptions

__all__ = ["MemoryOptions", "MemoryPersistence"]

_LAZY = {"MemoryOptions": "._plugin", "MemoryPersistence": "._adapter"}

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, __all__)
