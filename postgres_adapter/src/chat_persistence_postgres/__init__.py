"""The ``postgres`` backend of chat-persistence: the seed's bring-your-own-table
column contract on psycopg 3 (async, pooled).

``PostgresPersistence(pool=...)`` or ``PostgresPersistence(conninfo=...)``, or
``create_adapter("postgresql://user@host/db?messages_table=app.m&sessions_table=app.s")``.
``reference_ddl()`` returns the tables and recommended indexes for any names.

psycopg loads on first use of a name that needs it (``PostgresPersistence`` and
the schema report), not on import: the registry imports this package to find the
backend, and ``create_adapter("memory://")`` must not pay for the driver.
"""

from __future__ import annotations

import importlib
import typing

from ._ddl import reference_ddl
from ._options import PostgresOptions

if typing.TYPE_CHECKING:
    from ._adapter import PostgresPersistence
    from ._schema import ColumnProblem, SchemaReport, StrictSchemaMismatchError

__all__ = [
    "ColumnProblem",
    "PostgresOptions",
    "PostgresPersistence",
    "SchemaReport",
    "StrictSchemaMismatchError",
    "reference_ddl",
]

_LAZY = {
    "PostgresPersistence": "._adapter",
    "ColumnProblem": "._schema",
    "SchemaReport": "._schema",
    "StrictSchemaMismatchError": "._schema",
}


def __getattr__(name: str) -> typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
