"""The ``postgres`` backend's plugin, registered through the ``chat_persistence``
entry point. Cheap to import: psycopg loads only when an adapter is created."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

import attrs

from chat_persistence import Backend, ConfigError, PersistenceAdapter, hookimpl

from ._options import PostgresOptions

_TABLE_PARAMS = {"messages_table": "messages", "sessions_table": "sessions"}
_OWN_PARAMS = frozenset(
    {*_TABLE_PARAMS, *(f.name for f in attrs.fields(PostgresOptions))}
    - {"conninfo", "pool", "tables"}
)
_NO_THRESHOLD = frozenset({"", "none", "null"})


def postgres_url_options(url: str) -> Mapping[str, Any]:
    """Options from a ``postgres://`` or ``postgresql://`` URL.

    Our own query parameters (``messages_table``, ``sessions_table``,
    ``sdk_version``, ``min_size``, ``max_size``, ``connect_timeout``,
    ``pool_timeout``, ``retries``, ``retry_backoff``, ``pgbouncer``,
    ``prepare_threshold``, ``strict_schema``, ``distributed``: ``true``, ``false``
    or ``auto``) are taken out; the rest of the URL, every other libpq parameter
    included, is the ``conninfo``, unchanged.
    """
    # Split by hand, not urlsplit/urlunsplit: they rewrite "postgresql:///db"
    # (no host: the default socket) as "postgresql:/db", which libpq refuses.
    head, _, rest = url.partition("?")
    query, hash_mark, fragment = rest.partition("#")
    kept: list[str] = []
    raw: dict[str, str | None] = {}
    for item in query.split("&") if query else []:
        key, _, value = item.partition("=")
        name = unquote_plus(key)
        if name not in _OWN_PARAMS:
            kept.append(item)
            continue
        if name in raw:
            raise _url_error(f"parameter {name!r} is given twice in the URL", name)
        raw[name] = unquote_plus(value)
    conninfo = head + ("?" + "&".join(kept) if kept else "") + hash_mark + fragment
    _check_url(conninfo)
    options: dict[str, Any] = {"conninfo": conninfo}
    tables = {role: raw.pop(param) for param, role in _TABLE_PARAMS.items() if param in raw}
    if tables:
        options["tables"] = tables
    if (raw.get("prepare_threshold") or "1").lower() in _NO_THRESHOLD:
        raw["prepare_threshold"] = None  # the one value that is not a number
    if (raw.get("distributed") or "").lower() == "auto":
        raw["distributed"] = None  # detected when the adapter opens
    options.update(raw)  # strings: the registry converts them to the options' types
    return options


def _check_url(conninfo: str) -> None:
    """A ``ConfigError`` now, not a refused connection at ``open()``: a URL libpq
    cannot parse, one that names nothing at all, a port that is not a number."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    from ._secrets import Secrets

    try:
        params = conninfo_to_dict(conninfo)
    except ProgrammingError as err:
        raise _url_error(f"malformed URL: {Secrets(conninfo).line(err)}", "conninfo") from None
    if not params:
        raise _url_error(
            "the URL names no server and no database: give postgresql://user@host/db, "
            "or postgresql:///db for the default socket",
            "conninfo",
        )
    ports = str(params.get("port", "")).split(",")
    if any(port and not port.isdigit() for port in ports):
        raise _url_error(f"port must be a number, not {params['port']!r}", "port")


def postgres_url_parameters() -> list[str]:
    """Every query parameter a ``postgresql://`` URL may hold: ours, and every
    connection parameter of the libpq psycopg uses (``ssl=true`` included, which
    libpq takes in URLs only)."""
    from psycopg import pq

    libpq = {option.keyword.decode() for option in pq.Conninfo.get_defaults()}
    return sorted({*_OWN_PARAMS, *libpq, "ssl"})


def _url_error(message: str, option: str) -> ConfigError:
    return ConfigError(
        message,
        backend="postgres",
        option=option,
        valid=sorted(_OWN_PARAMS | {"any libpq parameter"}),
    )


def postgres_reference_ddl(tables: Mapping[str, str]) -> str:
    """``reference_ddl``, its module loaded when asked (not when the plugin registers)."""
    from ._ddl import reference_ddl

    return reference_ddl(tables)


def create_postgres_adapter(options: PostgresOptions) -> PersistenceAdapter:
    """Build a ``PostgresPersistence`` (no I/O) from its options."""
    from ._adapter import PostgresPersistence

    return PostgresPersistence(options)


@hookimpl
def chat_persistence_backends() -> list[Backend]:
    """The ``postgres`` backend."""
    return [
        Backend(
            name="postgres",
            factory=create_postgres_adapter,
            options=PostgresOptions,
            schemes=("postgres", "postgresql"),
            description=(
                "PostgreSQL on psycopg 3 (async, pooled), on tables the host owns: "
                "the seed's column contract. postgresql://user@host/db"
                "?messages_table=app.m&sessions_table=app.s"
            ),
            url_options=postgres_url_options,
            url_parameters=postgres_url_parameters,
            reference_ddl=postgres_reference_ddl,
        )
    ]
