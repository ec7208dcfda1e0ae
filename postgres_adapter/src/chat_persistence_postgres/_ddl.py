"""The reference DDL: the seed's tables and recommended indexes for any names."""

from __future__ import annotations

from collections.abc import Mapping

from ._columns import COLUMNS, PRIMARY_KEYS, RECOMMENDED_INDEXES, Column
from ._tables import Tables, quote_identifier


def reference_ddl(tables: Mapping[str, str] | None = None) -> str:
    """The reference DDL (schemas, tables and recommended indexes) for the given
    table names: the seed's column contract, with every identifier quoted as
    needed. Two names for one table are a ``ConfigError``."""
    names = Tables.from_mapping(tables)
    # Runs as is on a fresh database: each schema named is created first.
    schemas = dict.fromkeys(t.schema for t in (names.messages, names.sessions) if t.schema)
    creates = [f"create schema if not exists {quote_identifier(s)};" for s in schemas]
    blocks = ["\n".join(creates)] if creates else []
    for role in ("messages", "sessions"):
        table = str(names.role(role))
        lines = [f"  {_column_sql(c)}," for c in COLUMNS[role]]
        keys = ", ".join(PRIMARY_KEYS[role])
        lines.append(f"  primary key ({keys})")
        block = [f"create table {table} (", *lines, ");"]
        block += [
            f"create index on {table} ({', '.join(cols)});" for cols in RECOMMENDED_INDEXES[role]
        ]
        blocks.append("\n".join(block))
    return "\n\n".join(blocks) + "\n"


def _column_sql(column: Column) -> str:
    sql = f"{column.name} {column.sql_type}"
    if not column.nullable:
        sql += " not null"
    if column.default_now:
        sql += " default now()"
    return sql
