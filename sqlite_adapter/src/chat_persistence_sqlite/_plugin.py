"""The ``sqlite`` backend's plugin, registered through the ``chat_persistence``
entry point. Cheap to import: sqlite3 and the adapter load only when an adapter is
created."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from chat_persistence import Backend, ConfigError, PersistenceAdapter, hookimpl

_TABLE_PARAMS = {"messages_table": "messages", "sessions_table": "sessions"}


@attrs.frozen
class SqliteOptions:
    """Options of the ``sqlite`` backend.

    - ``path``: the database file (relative to the working directory, or
      absolute); None or ``":memory:"`` for a private in-memory database that
      lives as long as the adapter is open.
    - ``tables``: ``{"messages": ..., "sessions": ...}`` (defaults
      ``chat_messages``, ``chat_sessions``).
    - ``create_tables``: create missing tables and indexes on open (default);
      False when the host manages the file's schema.
    - ``busy_timeout``: seconds to wait for another process's write lock before
      ``StorageUnavailableError``.
    - ``synchronous``: SQLite's ``synchronous`` in WAL mode: ``full`` (default: a
      save that returned survives a power loss) or ``extra``; ``normal`` survives
      a crash of the process but may lose the last saves on a power loss.
    - ``sdk_version``: written on sessions that ``archive_session`` creates.
    """

    path: str | None = None
    tables: dict[str, str] = attrs.field(factory=dict)
    create_tables: bool = True
    busy_timeout: float = 30.0
    synchronous: str = "full"
    sdk_version: str | None = None


def _valid_options() -> list[str]:
    return sorted({a.name for a in attrs.fields(SqliteOptions)} | set(_TABLE_PARAMS))


def _url_error(message: str, option: str) -> ConfigError:
    return ConfigError(message, backend="sqlite", option=option, valid=_valid_options())


def sqlite_url_options(url: str) -> Mapping[str, Any]:
    """Options from a URL in SQLAlchemy's form: ``sqlite:///relative.db``,
    ``sqlite:////absolute/path.db``, ``sqlite://`` (private, in memory).

    ``messages_table`` and ``sessions_table`` become ``tables``; every other query
    parameter is passed on as an option of its name, so the registry names an
    unknown one and the nearest valid one.
    """
    parts = urlsplit(url)
    if parts.netloc:
        raise _url_error(
            f"URL {url!r} names a host ({parts.netloc!r}); a SQLite file has none: write "
            "sqlite:///relative.db or sqlite:////absolute/path.db",
            "path",
        )
    if parts.fragment:
        raise _url_error(f"URL {url!r} has a fragment ('#{parts.fragment}'); remove it", "path")
    options: dict[str, Any] = {}
    tables: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in options or _TABLE_PARAMS.get(key) in tables:
            raise _url_error(f"option {key!r} is given twice in URL {url!r}", key)
        if key in _TABLE_PARAMS:
            tables[_TABLE_PARAMS[key]] = value
            continue
        # The registry names the nearest option field; a near miss of a name that
        # only URLs take is named here.
        import difflib  # at import, a cost every create_adapter would pay

        close = difflib.get_close_matches(key, list(_TABLE_PARAMS), n=1, cutoff=0.8)
        if close and key not in _valid_options():
            raise _url_error(
                f"unknown option {key!r} in URL {url!r}; valid options: "
                f"{', '.join(_valid_options())}; did you mean {close[0]!r}?",
                key,
            )
        options[key] = value
    if "path" in options or "tables" in options:
        name = "path" if "path" in options else "tables"
        hint = "the URL's path" if name == "path" else "messages_table and sessions_table"
        raise _url_error(f"give {name!r} in a sqlite URL as {hint}, not as ?{name}=", name)
    path = unquote(parts.path[1:]) if parts.path.startswith("/") else unquote(parts.path)
    if path:
        options["path"] = path
    if tables:
        options["tables"] = tables
    return options


def sqlite_reference_ddl(tables: Mapping[str, str]) -> str:
    """``reference_ddl``, its module loaded when asked (not when the plugin registers)."""
    from ._contract import reference_ddl

    return reference_ddl(tables)


def create_sqlite_adapter(options: SqliteOptions) -> PersistenceAdapter:
    """Build a ``SqlitePersistence`` (no I/O) from its options."""
    from ._adapter import SqlitePersistence

    return SqlitePersistence(
        path=options.path,
        tables=options.tables,
        create_tables=options.create_tables,
        busy_timeout=options.busy_timeout,
        synchronous=options.synchronous,
        sdk_version=options.sdk_version,
    )


@hookimpl
def chat_persistence_backends() -> list[Backend]:
    """The ``sqlite`` backend."""
    return [
        Backend(
            name="sqlite",
            factory=create_sqlite_adapter,
            options=SqliteOptions,
            schemes=("sqlite",),
            description=(
                "A durable store in one SQLite file, shared safely by the processes of "
                "one machine; nothing to install. sqlite:///relative.db, "
                "sqlite:////absolute/path.db, sqlite:// (private, in memory)"
            ),
            url_options=sqlite_url_options,
            reference_ddl=sqlite_reference_ddl,
        )
    ]
