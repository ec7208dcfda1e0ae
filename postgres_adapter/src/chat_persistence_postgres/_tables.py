"""Table names: parsing ``schema.table`` and quoting for printed SQL. No psycopg here
(the plugin and ``chat-persistence ddl`` use it without loading the driver)."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from chat_persistence import ConfigError
from chat_persistence.storage import DEFAULT_TABLES, table_names

"""The seed's table names, used for any key a ``tables`` mapping leaves out."""

_MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: Postgres would silently truncate longer names


@attrs.frozen
class TableName:
    """A table name, optionally schema-qualified. Each part is used verbatim as one
    quoted identifier: no case folding, no SQL pasted anywhere."""

    name: str
    schema: str | None = None

    @property
    def parts(self) -> tuple[str, ...]:
        """``(schema, name)`` or ``(name,)``."""
        return (self.name,) if self.schema is None else (self.schema, self.name)

    def __str__(self) -> str:
        return ".".join(quote_identifier(p) for p in self.parts)


def parse_table_name(text: str, *, role: str = "table") -> TableName:
    """Split ``app.chat_messages`` into schema and table.

    A part may be written in double quotes (``"my.schema"."Chat"``, with ``""`` for a
    quote inside) to hold a dot; otherwise each dot separates parts, and everything
    else (quotes, semicolons, spaces) is part of the name and will be quoted. Raises
    ``ConfigError`` for an empty part, more than two parts, a NUL, or a part longer
    than Postgres's 63-byte identifier limit.
    """
    if not isinstance(text, str):
        raise _bad(role, text, f"must be a string, not {type(text).__name__}")
    if "\x00" in text:
        raise _bad(role, text, "contains a NUL character")
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            part, i = _quoted_part(text, i, role)
        else:
            end = text.find(".", i)
            end = n if end == -1 else end
            part, i = text[i:end], end
        if part == "":
            raise _bad(role, text, "has an empty name part")
        if len(part.encode()) > _MAX_IDENTIFIER_BYTES:
            raise _bad(
                role,
                text,
                f"part {part!r} is longer than {_MAX_IDENTIFIER_BYTES} bytes "
                "(Postgres would truncate it and use another table)",
            )
        parts.append(part)
        if i == n:
            break
        if text[i] != ".":
            raise _bad(role, text, f"unexpected {text[i]!r} after a quoted part")
        i += 1
    if len(parts) > 2:
        raise _bad(role, text, "must be 'table' or 'schema.table'")
    return TableName(parts[-1], parts[0] if len(parts) == 2 else None)


def _quoted_part(text: str, start: int, role: str) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        if text[i] == '"':
            if text[i + 1 : i + 2] == '"':
                out.append('"')
                i += 2
                continue
            return "".join(out), i + 1
        out.append(text[i])
        i += 1
    raise _bad(role, text, "has an unterminated double quote")


def _bad(role: str, value: object, reason: str) -> ConfigError:
    return ConfigError(
        f"invalid {role} table name {value!r}: {reason}",
        backend="postgres",
        option="tables",
        valid=sorted(DEFAULT_TABLES),
    )


@attrs.frozen
class Tables:
    """The two tables an adapter uses."""

    messages: TableName
    sessions: TableName

    @classmethod
    def from_mapping(cls, tables: Mapping[str, str] | None) -> Tables:
        """``{"messages": ..., "sessions": ...}``, either key optional (the seed's
        defaults), any other key a ``ConfigError``."""
        names = table_names(tables, backend="postgres")
        parsed = cls(
            messages=parse_table_name(names["messages"], role="messages"),
            sessions=parse_table_name(names["sessions"], role="sessions"),
        )
        if parsed.messages == parsed.sessions:
            raise ConfigError(
                f"the messages and sessions tables are both {parsed.messages}: "
                "the two tables need two names",
                backend="postgres",
                option="tables",
            )
        return parsed

    def role(self, role: str) -> TableName:
        """The table playing ``role`` (``"messages"`` or ``"sessions"``)."""
        return self.messages if role == "messages" else self.sessions


# Words Postgres reserves even as table names; any of them is quoted in printed DDL.
_RESERVED = frozenset(
    """all analyse analyze and any array as asc asymmetric authorization binary both case
    cast check collate collation column concurrently constraint create cross current_catalog
    current_date current_role current_schema current_time current_timestamp current_user
    default deferrable desc distinct do else end except false fetch for foreign freeze from
    full grant group having ilike in initially inner intersect into is isnull join lateral
    leading left like limit localtime localtimestamp natural not notnull null offset on only
    or order outer overlaps placing primary references returning right select session_user
    similar some symmetric system_user table tablesample then to trailing true union unique
    user using variadic verbose when where window with""".split()  # noqa: SIM905
)


def quote_identifier(name: str) -> str:
    """``name`` as SQL: bare when that reads back as the same name, else quoted."""
    bare = (
        name.isascii()
        and (name[:1].isalpha() or name[:1] == "_")
        and name.replace("_", "").isalnum()
        and name == name.lower()
        and name not in _RESERVED
    )
    return name if bare else '"' + name.replace('"', '""') + '"'
