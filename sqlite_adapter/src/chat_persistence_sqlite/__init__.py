"""The ``sqlite`` backend of chat-persistence: durable chat history in one SQLite
file, shared safely by the processes of one machine, with nothing to install.

``SqlitePersistence(path="chat.db")``, or ``create_adapter("sqlite:///chat.db")``
(``sqlite:////absolute/path.db``; ``sqlite://`` for a private in-memory database).
``reference_ddl()`` returns the tables and indexes for any names.

sqlite3 loads on first use of ``SqlitePersistence``, not on import: the registry
imports this package to find the backend.
"""

from __future__ import annotations

import importlib
import typing

from ._plugin import SqliteOptions

if typing.TYPE_CHECKING:
    from ._adapter import SqlitePersistence
    from ._contract import reference_ddl

__all__ = ["SqliteOptions", "SqlitePersistence", "reference_ddl"]

_LAZY = {"SqlitePersistence": "._adapter", "reference_ddl": "._contract"}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
