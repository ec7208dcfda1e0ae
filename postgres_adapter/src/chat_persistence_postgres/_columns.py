"""The seed's column contract: the columns of both tables, their keys and the
recommended indexes. No psycopg here (the plugin and ``ddl`` use it)."""

from __future__ import annotations

from collections.abc import Mapping

import attrs


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


MESSAGE_COLUMNS: tuple[Column, ...] = (
    Column("thread_id", "text", nullable=False),
    Column("message_id", "text", nullable=False),
    Column("session_id", "text", nullable=True),
    Column("user_id", "text", nullable=True),
    Column("role", "text", nullable=False),
    Column("created_at", "timestamptz", nullable=False, default_now=True),
    Column("parts_json", "jsonb", nullable=False),
)
SESSION_COLUMNS: tuple[Column, ...] = (
    Column("session_id", "text", nullable=False),
    Column("thread_id", "text", nullable=False),
    Column("sdk_version", "text", nullable=False),
    Column("state_json", "jsonb", nullable=True),
    Column("metadata_json", "jsonb", nullable=True),
    Column("created_at", "timestamptz", nullable=False, default_now=True),
    Column("updated_at", "timestamptz", nullable=False, default_now=True),
    Column("archived_at", "timestamptz", nullable=True),
)
COLUMNS: Mapping[str, tuple[Column, ...]] = {
    "messages": MESSAGE_COLUMNS,
    "sessions": SESSION_COLUMNS,
}
PRIMARY_KEYS: Mapping[str, tuple[str, ...]] = {
    "messages": ("thread_id", "message_id"),
    "sessions": ("session_id",),
}
RECOMMENDED_INDEXES: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "messages": (("thread_id", "created_at"), ("session_id",)),
    "sessions": (("thread_id",),),
}
"""Leading columns of the indexes the seed recommends, per table role."""
