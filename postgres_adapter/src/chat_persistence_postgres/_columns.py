"""Core's column contract (``chat_persistence.storage.CONTRACT_COLUMNS``) in
PostgreSQL's types, and the types each column works with. No psycopg here (the
plugin and ``ddl`` use it)."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from chat_persistence.storage import (
    CONTRACT_COLUMNS,
    PRIMARY_KEYS,
    RECOMMENDED_INDEXES,
    ColumnKind,
)

__all__ = ["COLUMNS", "PRIMARY_KEYS", "RECOMMENDED_INDEXES", "Column"]


@attrs.frozen
class Column:
    """One column of the contract: its name, its type as ``information_schema``
    spells it, and whether it may hold NULL."""

    name: str
    sql_type: str
    nullable: bool
    default_now: bool = False

    @property
    def data_type(self) -> str:
        """``information_schema.columns.data_type`` for this column."""
        return {"timestamptz": "timestamp with time zone"}.get(self.sql_type, self.sql_type)

    @property
    def compatible_types(self) -> frozenset[str]:
        """The ``data_type`` values this column works with: the contract's and the
        variants the statements handle (``varchar`` for text, ``json`` for jsonb,
        ``timestamp`` for timestamptz). ``char(n)`` pads ids, and ``text`` JSON
        reads back as a string: neither works."""
        return _COMPATIBLE[self.sql_type]


_COMPATIBLE: Mapping[str, frozenset[str]] = {
    "text": frozenset({"text", "character varying"}),
    "jsonb": frozenset({"jsonb", "json"}),
    "timestamptz": frozenset({"timestamp with time zone", "timestamp without time zone"}),
}


_SQL_TYPES: Mapping[ColumnKind, str] = {"text": "text", "time": "timestamptz", "json": "jsonb"}

COLUMNS: Mapping[str, tuple[Column, ...]] = {
    role: tuple(Column(c.name, _SQL_TYPES[c.kind], c.nullable, c.default_now) for c in columns)
    for role, columns in CONTRACT_COLUMNS.items()
}
"""Core's column contract in PostgreSQL's types, per table role."""
