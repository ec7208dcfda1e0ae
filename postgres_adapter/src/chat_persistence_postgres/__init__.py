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

import typing

from chat_persistence._lazy import lazy_exports as _lazy_exports

from ._options import PostgresOptions

if typing.TYPE_CHECKING:
    from ._adapter import PostgresPersistence
    from ._ddl import reference_ddl
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
    "reference_ddl": "._ddl",
}


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, __all__)
