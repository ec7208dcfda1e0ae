"""The ``postgres`` backend's plugin, registered through the ``chat_persistence``
entry point. Cheap to import: psycopg loads only when an adapter is created."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

import attrs

from chat_persistence import Backend, ConfigError, PersistenceAdapter, hookimpl

from ._contract import reference_ddl


@attrs.frozen
class PostgresOptions:
    """Options of the ``postgres`` backend.

    Give exactly one of ``conninfo`` (a libpq URL or ``key=value`` string: the
    adapter owns a pool of ``min_size``..``max_size`` connections) and ``pool`` (a
    host-owned, already open ``psycopg_pool.AsyncConnectionPool`` that the adapter
    never opens or closes).

    - ``tables``: ``{"messages": ..., "sessions": ...}``, each optionally
      schema-qualified (defaults ``chat_messages``, ``chat_sessions``).
    - ``sdk_version``: written on sessions that ``archive_session`` creates
      (default ``chat-persistence/<version>``).
    - ``pool_timeout``: seconds to wait for a connection (and, for an owned pool,
      for the first one when opening) before ``StorageUnavailableError``.
    - ``retries``: how many more times an idempotent operation (every read and
      upsert) runs when its connection is lost; 0 turns retrying off.
    - ``retry_backoff``: seconds before the first retry; each further retry waits
      twice as long (with jitter, at most 2 s).
    - ``pgbouncer``: True behind PgBouncer in transaction mode: no server-side
      prepared statements (psycopg ``prepare_threshold=None``).
    - ``prepare_threshold``: psycopg's: executions of a query before it is
      prepared on the server (None: never). Ignored when ``pgbouncer`` is True.
    - ``strict_schema``: ``validate_schema()`` also checks column types,
      nullability and primary keys, and logs the recommended indexes that are missing.
    """

    conninfo: str | None = None
    pool: Any = None
    tables: dict[str, str] = attrs.field(factory=dict)
    sdk_version: str | None = None
    min_size: int = 1
    max_size: int = 10
    pool_timeout: float = 30.0
    retries: int = 2
    retry_backoff: float = 0.05
    pgbouncer: bool = False
    prepare_threshold: int | None = 5
    strict_schema: bool = False


_TABLE_PARAMS = {"messages_table": "messages", "sessions_table": "sessions"}
_INT_PARAMS = ("min_size", "max_size", "prepare_threshold", "retries")
_FLOAT_PARAMS = ("pool_timeout", "retry_backoff")
_BOOL_PARAMS = ("pgbouncer", "strict_schema")
_OWN_PARAMS = frozenset(
    {*_TABLE_PARAMS, *_INT_PARAMS, *_FLOAT_PARAMS, *_BOOL_PARAMS, "sdk_version"}
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def postgres_url_options(url: str) -> Mapping[str, Any]:
    """Options from a ``postgres://`` or ``postgresql://`` URL.

    Our own query parameters (``messages_table``, ``sessions_table``,
    ``sdk_version``, ``min_size``, ``max_size``, ``pool_timeout``, ``retries``,
    ``retry_backoff``, ``pgbouncer``, ``prepare_threshold``, ``strict_schema``) are
    taken out; the rest of the URL, every other libpq parameter included, is the
    ``conninfo``, unchanged.
    """
    parts = urlsplit(url)
    kept: list[str] = []
    raw: dict[str, str] = {}
    for item in parts.query.split("&") if parts.query else []:
        key, _, value = item.partition("=")
        name = unquote_plus(key)
        if name not in _OWN_PARAMS:
            kept.append(item)
            continue
        if name in raw:
            raise _url_error(f"parameter {name!r} is given twice in the URL", name)
        raw[name] = unquote_plus(value)
    options: dict[str, Any] = {"conninfo": urlunsplit(parts._replace(query="&".join(kept)))}
    tables = {role: raw.pop(param) for param, role in _TABLE_PARAMS.items() if param in raw}
    if tables:
        options["tables"] = tables
    for name, value in raw.items():
        options[name] = _url_value(name, value)
    return options


def _url_value(name: str, value: str) -> Any:
    if name in _BOOL_PARAMS:
        lowered = value.lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise _url_error(f"parameter {name!r} must be true or false, not {value!r}", name)
    if name in _INT_PARAMS:
        if name == "prepare_threshold" and value.lower() in ("", "none", "null"):
            return None
        try:
            return int(value)
        except ValueError:
            problem = f"parameter {name!r} must be an integer, not {value!r}"
            raise _url_error(problem, name) from None
    if name in _FLOAT_PARAMS:
        try:
            return float(value)
        except ValueError:
            raise _url_error(f"parameter {name!r} must be a number, not {value!r}", name) from None
    return value


def _url_error(message: str, option: str) -> ConfigError:
    return ConfigError(
        message,
        backend="postgres",
        option=option,
        valid=sorted(_OWN_PARAMS | {"any libpq parameter"}),
    )


def create_postgres_adapter(options: PostgresOptions) -> PersistenceAdapter:
    """Build a ``PostgresPersistence`` (no I/O) from its options."""
    from ._adapter import PostgresPersistence

    return PostgresPersistence.from_options(options)


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
            reference_ddl=reference_ddl,
        )
    ]
