"""The column contract in SQLite's types, the table names, and the DDL.

The columns are the Postgres contract's, by name. Times are INTEGER microseconds
since 1970-01-01 UTC: they sort as numbers, exactly in time order, and keep every
microsecond (an ISO text would sort wrongly across time zones and years before
1000). JSON is TEXT. Ties of equal ``created_at`` list in save order by the
table's ``rowid``, which an upsert keeps and a new row always gets larger than
every row present.

No sqlite3 here: the plugin module and ``chat-persistence ddl`` use this module
without loading the driver.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from chat_persistence import ConfigError
from chat_persistence.storage import (
    CONTRACT_COLUMNS,
    DEFAULT_TABLES,
    PRIMARY_KEYS,
    RECOMMENDED_INDEXES,
    ColumnKind,
    table_names,
)


@attrs.frozen
class Column:
    """One column: its name, its SQLite type, and whether it may hold NULL."""

    name: str
    sql_type: str
    nullable: bool


_SQL_TYPES: Mapping[ColumnKind, str] = {"text": "TEXT", "time": "INTEGER", "json": "TEXT"}

COLUMNS: Mapping[str, tuple[Column, ...]] = {
    role: tuple(Column(c.name, _SQL_TYPES[c.kind], c.nullable) for c in columns)
    for role, columns in CONTRACT_COLUMNS.items()
}
"""Core's column contract in SQLite's types, per table role."""
_INDEX_SUFFIXES: Mapping[str, tuple[str, ...]] = {
    "messages": ("thread_created", "session"),
    "sessions": ("thread",),
}
INDEXES: Mapping[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    role: tuple(zip(_INDEX_SUFFIXES[role], leads, strict=True))
    for role, leads in RECOMMENDED_INDEXES.items()
}
"""Per table role: (index name suffix, columns). The first serves every listing:
SQLite appends the rowid to it, so it is also in listing order."""


def quote_identifier(name: str) -> str:
    """``name`` as one SQLite identifier, always quoted."""
    return '"' + name.replace('"', '""') + '"'


def _bad(role: str, value: object, reason: str) -> ConfigError:
    return ConfigError(
        f"invalid {role} table name {value!r}: {reason}",
        backend="sqlite",
        option=f"{role}_table",
        valid=sorted(f"{r}_table" for r in DEFAULT_TABLES),
    )


@attrs.frozen
class Tables:
    """The two table names an adapter uses, each one identifier used verbatim."""

    messages: str
    sessions: str

    @classmethod
    def from_mapping(cls, tables: Mapping[str, str] | None) -> Tables:
        """``{"messages": ..., "sessions": ...}``, either key optional, any other
        key a ``ConfigError``."""
        names = table_names(tables, backend="sqlite")
        for role, name in names.items():
            if not isinstance(name, str):
                raise _bad(role, name, f"must be a string, not {type(name).__name__}")
            if name == "":
                raise _bad(role, name, "must not be empty")
            if "\x00" in name:
                raise _bad(role, name, "contains a NUL character")
            if name.lower().startswith("sqlite_"):
                raise _bad(role, name, "names starting with 'sqlite_' are reserved by SQLite")
        if names["messages"].lower() == names["sessions"].lower():
            raise _bad("sessions", names["sessions"], "is the messages table too")
        return cls(messages=names["messages"], sessions=names["sessions"])

    def role(self, role: str) -> str:
        """The table playing ``role`` (``"messages"`` or ``"sessions"``)."""
        return self.messages if role == "messages" else self.sessions


def ddl_statements(tables: Tables, *, if_not_exists: bool) -> list[str]:
    """The statements that create both tables and their indexes."""
    maybe = " IF NOT EXISTS" if if_not_exists else ""
    statements: list[str] = []
    for role in ("messages", "sessions"):
        name = tables.role(role)
        lines = [f"  {_column_sql(c)}," for c in COLUMNS[role]]
        lines.append(f"  PRIMARY KEY ({', '.join(PRIMARY_KEYS[role])})")
        body = "\n".join(lines)
        statements.append(f"CREATE TABLE{maybe} {quote_identifier(name)} (\n{body}\n)")
        for suffix, columns in INDEXES[role]:
            index = quote_identifier(f"{name}_{suffix}")
            statements.append(
                f"CREATE INDEX{maybe} {index} ON {quote_identifier(name)} ({', '.join(columns)})"
            )
    return statements


def _column_sql(column: Column) -> str:
    return f"{column.name} {column.sql_type}" + ("" if column.nullable else " NOT NULL")


def reference_ddl(tables: Mapping[str, str] | None = None) -> str:
    """The SQLite DDL (tables and indexes) for the given table names. Times are
    INTEGER microseconds since the epoch (UTC); JSON is TEXT."""
    statements = ddl_statements(Tables.from_mapping(tables), if_not_exists=False)
    header = "-- created_at, updated_at, archived_at: INTEGER microseconds since 1970-01-01 UTC"
    return header + "\n" + ";\n\n".join(statements) + ";\n"
