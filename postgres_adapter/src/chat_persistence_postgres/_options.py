"""``PostgresOptions``: every option of the backend, declared and checked once.

The adapter, its connections, the registry (mappings and URLs) and the docs all
read this one class. No psycopg here: the plugin imports it cheaply, and the
pool check imports ``psycopg_pool`` only when a pool is given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from chat_persistence import ConfigError
from chat_persistence.storage import check_sdk_version

BACKEND = "postgres"


def _error(option: str, message: str) -> ConfigError:
    return ConfigError(message, backend=BACKEND, option=option)


def _conninfo(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise _error(attribute.name, f"'conninfo' must be a string, not {type(value).__name__}")


def _pool(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    from psycopg_pool import AsyncConnectionPool

    if not isinstance(value, AsyncConnectionPool):
        raise _error(
            attribute.name,
            f"'pool' must be a psycopg_pool.AsyncConnectionPool, not {type(value).__name__}",
        )


def _tables(_: object, attribute: attrs.Attribute[Any], value: Mapping[str, str]) -> None:
    from ._tables import Tables  # here, not at import: the plugin registers without it

    Tables.from_mapping(value)  # ConfigError naming the bad key or name


def _sdk_version(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_sdk_version(value, backend=BACKEND)


def _count(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not int or value < 0:
        raise _error(
            attribute.name, f"{attribute.name!r} must be a non-negative integer, not {value!r}"
        )


def _threshold(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _count(_, attribute, value)


def _flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not bool:
        raise _error(attribute.name, f"{attribute.name!r} must be True or False, not {value!r}")


def _flag_or_none(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _flag(_, attribute, value)


def _seconds(*, positive: bool) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (value > 0 if positive else value >= 0)
        )
        if not ok:
            wanted = "a positive" if positive else "a non-negative"
            raise _error(
                attribute.name,
                f"{attribute.name!r} must be {wanted} number of seconds, not {value!r}",
            )

    return check


@attrs.frozen
class PostgresOptions:
    """Options of the ``postgres`` backend, checked when built (``ConfigError``
    naming the option).

    Give exactly one of ``conninfo`` (a libpq URL or ``key=value`` string: the
    adapter owns a pool of ``min_size``..``max_size`` connections) and ``pool`` (a
    host-owned, already open ``psycopg_pool.AsyncConnectionPool`` that the adapter
    never opens or closes).

    - ``tables``: ``{"messages": ..., "sessions": ...}``, each optionally
      schema-qualified (defaults ``chat_messages``, ``chat_sessions``).
    - ``sdk_version``: written on sessions that ``archive_session`` creates
      (default ``chat-persistence/<version>``).
    - ``connect_timeout``: seconds an owned pool's ``open()`` waits for its first
      connections, also passed to libpq as its ``connect_timeout`` (rounded up; a
      ``connect_timeout`` in a key=value conninfo wins for libpq). A connection
      refused while opening fails ``open()`` at once, with libpq's reason.
    - ``pool_timeout``: seconds to wait for a pooled connection before
      ``StorageUnavailableError``.
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
    - ``distributed``: True on Citus, the distributed PostgreSQL: every save and
      ``delete_thread`` runs in an explicit transaction, the thread lock taken on
      the thread's shard (docs/scaling.md); False on one server. None (the
      default): detected when the adapter opens, from the citus extension.
    """

    conninfo: str | None = attrs.field(default=None, validator=_conninfo)
    pool: Any = attrs.field(default=None, validator=_pool)
    tables: dict[str, str] = attrs.field(factory=dict, validator=_tables)
    sdk_version: str | None = attrs.field(default=None, validator=_sdk_version)
    min_size: int = attrs.field(default=1, validator=_count)
    max_size: int = attrs.field(default=10, validator=_count)
    connect_timeout: float = attrs.field(default=5.0, validator=_seconds(positive=True))
    pool_timeout: float = attrs.field(default=30.0, validator=_seconds(positive=True))
    retries: int = attrs.field(default=2, validator=_count)
    retry_backoff: float = attrs.field(default=0.05, validator=_seconds(positive=False))
    pgbouncer: bool = attrs.field(default=False, validator=_flag)
    prepare_threshold: int | None = attrs.field(default=5, validator=_threshold)
    strict_schema: bool = attrs.field(default=False, validator=_flag)
    distributed: bool | None = attrs.field(default=None, validator=_flag_or_none)

    def __attrs_post_init__(self) -> None:
        if (self.pool is None) == (self.conninfo is None):
            raise ConfigError(
                "give exactly one of 'pool' (a host-owned AsyncConnectionPool) and "
                "'conninfo' (a connection string; the adapter owns its pool)",
                backend=BACKEND,
                option="conninfo" if self.pool is None else "pool",
                valid=["conninfo", "pool"],
            )
        if not self.min_size <= self.max_size or self.max_size < 1:
            raise _error(
                "max_size",
                f"pool sizes must satisfy 0 <= min_size <= max_size and max_size >= 1 "
                f"(got min_size={self.min_size}, max_size={self.max_size})",
            )

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> PostgresOptions:
        """The options from keyword arguments; an unknown one is a ``ConfigError``
        naming the valid ones."""
        valid = [f.name for f in attrs.fields(cls)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ConfigError(
                f"unknown option {unknown[0]!r} for backend 'postgres'; "
                f"valid options: {', '.join(valid)}",
                backend=BACKEND,
                option=unknown[0],
                valid=valid,
            )
        return cls(**options)

    @property
    def effective_prepare_threshold(self) -> int | None:
        """psycopg's ``prepare_threshold`` for our connections (None: never prepare)."""
        return None if self.pgbouncer else self.prepare_threshold
