"""Checking live tables against the column contract."""

from __future__ import annotations

from typing import Any

import attrs
import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import tuple_row

from chat_persistence import SchemaMismatchError

from ._columns import COLUMNS, PRIMARY_KEYS, RECOMMENDED_INDEXES, Column
from ._tables import Tables

# Both tables, resolved the way the server resolves them: a qualified name as
# given, a bare one through the search path (to_regclass), so a table in a
# schema that is not on the path is not mistaken for ours.
_RESOLVED = """
WITH wanted(role, schema_name, table_name) AS (
    VALUES ('messages', %(ms)s::text, %(mt)s::text), ('sessions', %(ss)s::text, %(st)s::text)
),
resolved AS (
    SELECT w.role, w.table_name,
           to_regclass(CASE WHEN w.schema_name IS NULL THEN quote_ident(w.table_name)
                            ELSE quote_ident(w.schema_name) || '.' || quote_ident(w.table_name)
                       END) AS oid
    FROM wanted w
),
found AS (
    SELECT r.role, r.table_name, r.oid, n.nspname AS schema_name
    FROM resolved r
    LEFT JOIN pg_class c ON c.oid = r.oid
    LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
)
"""

PROBE_COLUMNS = (
    _RESOLVED
    + """
SELECT f.role, f.oid IS NOT NULL, c.column_name::text, c.data_type::text, c.is_nullable = 'YES'
FROM found f
LEFT JOIN information_schema.columns c
       ON c.table_schema = f.schema_name AND c.table_name = f.table_name
ORDER BY f.role, c.ordinal_position
"""
)

PROBE_INDEXES = (
    _RESOLVED
    + """
SELECT f.role, i.indisprimary, i.indisunique,
       i.indpred IS NULL AND i.indisvalid AND i.indimmediate,
       am.amname::text,
       array(SELECT a.attname::text
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             ORDER BY k.ord)
FROM found f
JOIN pg_index i ON i.indrelid = f.oid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
"""
)


@attrs.frozen
class ColumnProblem:
    """A contract column that exists with the wrong type or nullability."""

    table: str
    column: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column} is {self.found}, expected {self.expected}"


@attrs.frozen
class SchemaReport:
    """What differs between the live tables and the column contract.

    Always checked: ``missing_tables``, ``missing_columns``, ``missing_keys`` (no
    primary key or unique index on the contract's key columns: the upserts need
    one) and, in ``wrong_columns``, types the statements cannot work with
    (``integer`` for ``sdk_version``, ``char(n)`` ids, ``text`` JSON). A strict
    report also names every other type and nullability that differs from the
    contract (``varchar``, ``json``, ``timestamp``) and fills ``missing_indexes``
    (the recommended indexes: advice, not an error). Tables are named as configured.
    """

    strict: bool
    missing_tables: list[str] = attrs.field(factory=list)
    missing_columns: dict[str, list[str]] = attrs.field(factory=dict)
    wrong_columns: list[ColumnProblem] = attrs.field(factory=list)
    missing_keys: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    missing_indexes: dict[str, list[tuple[str, ...]]] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (missing recommended indexes do not count)."""
        return not self.problems()

    def problems(self) -> list[str]:
        """Every problem, one sentence each."""
        found = [f"missing table {t}" for t in self.missing_tables]
        found += [
            f"table {t} is missing column(s): {', '.join(cols)}"
            for t, cols in self.missing_columns.items()
        ]
        found += [str(p) for p in self.wrong_columns]
        found += [
            f"table {t} has no primary key (or unique index) on ({', '.join(cols)})"
            for t, cols in self.missing_keys.items()
        ]
        return found

    def index_advice(self) -> str:
        """The missing recommended indexes, as DDL to run (empty when none)."""
        return "\n".join(
            f"recommended index missing: create index on {t} ({', '.join(cols)});"
            for t, indexes in self.missing_indexes.items()
            for cols in indexes
        )

    def raise_for_problems(self) -> None:
        """Raise ``SchemaMismatchError`` (``StrictSchemaMismatchError`` when more
        than tables and columns are wrong) unless the report is clean."""
        if self.wrong_columns or self.missing_keys:
            raise StrictSchemaMismatchError(self)
        if self.missing_tables or self.missing_columns:
            raise SchemaMismatchError(self.missing_tables, self.missing_columns)


class StrictSchemaMismatchError(SchemaMismatchError):
    """A schema check found more than missing tables and columns:
    ``wrong_columns`` and ``missing_keys`` say what else differs; ``report`` has it all."""

    def __init__(self, report: SchemaReport) -> None:
        self.report = report
        self.wrong_columns = list(report.wrong_columns)
        self.missing_keys = dict(report.missing_keys)
        basic = len(report.missing_tables) + len(report.missing_columns)
        super().__init__(
            report.missing_tables,
            report.missing_columns,
            other_problems=report.problems()[basic:],
        )


# What the server says when a table cannot take our statements: no unique index
# for ON CONFLICT, a column of a type our values cannot become.
_SCHEMA_ERRORS = (
    psycopg.errors.InvalidColumnReference,
    psycopg.errors.DatatypeMismatch,
    psycopg.errors.InvalidTextRepresentation,
)


def schema_error(err: psycopg.Error, operation: str) -> SchemaMismatchError | None:
    """The ``SchemaMismatchError`` for a statement the tables refused, or None
    when ``err`` is something else."""
    if not isinstance(err, _SCHEMA_ERRORS):
        return None
    said = (err.diag.message_primary or str(err)).strip()
    problem = f"{operation} failed on the tables: {said} (run chat-persistence check)"
    return SchemaMismatchError([], {}, other_problems=[problem])


async def inspect_schema(
    conn: AsyncConnection[Any], tables: Tables, *, strict: bool
) -> SchemaReport:
    """Probe both tables: two queries in one pipeline, one round trip."""
    params = {
        "ms": tables.messages.schema,
        "mt": tables.messages.name,
        "ss": tables.sessions.schema,
        "st": tables.sessions.name,
    }
    # Cursors of our own: the host's connections may have another row factory or
    # cursor class.
    columns_cur = AsyncCursor(conn, row_factory=tuple_row)
    indexes_cur = AsyncCursor(conn, row_factory=tuple_row)
    async with conn.pipeline():  # one round trip for both queries
        await columns_cur.execute(PROBE_COLUMNS, params)
        await indexes_cur.execute(PROBE_INDEXES, params)
    report = SchemaReport(strict=strict)
    present: dict[str, dict[str, tuple[str, bool]]] = {"messages": {}, "sessions": {}}
    exists: dict[str, bool] = {}
    for role, table_exists, column, data_type, nullable in await columns_cur.fetchall():
        exists[role] = table_exists
        if column is not None:
            present[role][column] = (data_type, nullable)
    for role in ("messages", "sessions"):
        if exists.get(role):
            _check_columns(report, str(tables.role(role)), COLUMNS[role], present[role], strict)
        else:
            report.missing_tables.append(str(tables.role(role)))
    indexes: dict[str, list[_Index]] = {}
    for role, primary, unique, usable, method, cols in await indexes_cur.fetchall():
        indexes.setdefault(role, []).append((primary, unique, usable, method, cols))
    for role in ("messages", "sessions"):
        if exists.get(role):
            _check_indexes(report, role, str(tables.role(role)), indexes.get(role, []), strict)
    return report


_Index = tuple[bool, bool, bool, str, list[str | None]]
"""primary, unique, usable, access method, columns."""


def _check_columns(
    report: SchemaReport,
    label: str,
    contract: tuple[Column, ...],
    present: dict[str, tuple[str, bool]],
    strict: bool,
) -> None:
    missing = [c.name for c in contract if c.name not in present]
    if missing:
        report.missing_columns[label] = missing
    for c in contract:
        if c.name not in present:
            continue
        data_type, nullable = present[c.name]
        # A type the statements cannot work with always counts; one of the
        # compatible variants only in a strict check. A user-defined type
        # (citext, an enum) may work: only strict names it.
        works = data_type in c.compatible_types or data_type == "USER-DEFINED"
        if data_type != c.data_type and (strict or not works):
            report.wrong_columns.append(ColumnProblem(label, c.name, c.data_type, data_type))
        if not strict:
            continue
        if nullable != c.nullable:
            want = "nullable" if c.nullable else "not null"
            have = "nullable" if nullable else "not null"
            report.wrong_columns.append(ColumnProblem(label, c.name, want, have))


def _check_indexes(
    report: SchemaReport, role: str, label: str, mine: list[_Index], strict: bool
) -> None:
    key = PRIMARY_KEYS[role]
    # The upserts' ON CONFLICT (key) needs a unique index on exactly these columns,
    # valid, not partial and not deferrable: without one every save fails.
    if not any(
        (primary or unique) and usable and sorted(map(str, cols)) == sorted(key)
        for primary, unique, usable, _, cols in mine
    ):
        report.missing_keys[label] = key
    if not strict:
        return
    wanted = [
        lead
        for lead in RECOMMENDED_INDEXES[role]
        if not any(
            usable and method == "btree" and tuple(cols[: len(lead)]) == lead
            for _, _, usable, method, cols in mine
        )
    ]
    if wanted:
        report.missing_indexes[label] = wanted
