"""Opening an owned pool fast: the first refused connection fails ``open()`` at
once with libpq's reason, instead of the pool retrying until a timeout."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from chat_persistence import ConfigError, StorageUnavailableError

from ._secrets import Secrets


def watched_connection_class(
    failed: asyncio.Future[psycopg.Error],
) -> type[AsyncConnection[Any]]:
    """A connection class that reports its first failed connect to ``failed``
    (the pool only logs it and tries again later)."""

    class Watched(AsyncConnection[Any]):
        @classmethod
        async def connect(cls, *args: Any, **kwargs: Any) -> Any:
            try:
                return await super().connect(*args, **kwargs)
            except psycopg.Error as err:
                if not failed.done():
                    failed.set_result(err)
                raise

    return Watched


def libpq_connect_timeout(seconds: float) -> int:
    """libpq's ``connect_timeout`` (whole seconds; libpq treats 1 as 2)."""
    return max(2, math.ceil(seconds))


async def wait_for_first_connections(
    pool: AsyncConnectionPool[Any],
    failed: asyncio.Future[psycopg.Error],
    *,
    seconds: float,
    secrets: Secrets,
    sent_options: bool,
) -> None:
    """Wait until ``pool`` holds its ``min_size`` connections, at most ``seconds``;
    a connection refused before then closes the pool and raises."""
    ready = asyncio.ensure_future(pool.wait(timeout=seconds))
    try:
        await asyncio.wait({ready, failed}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        ready.cancel()
        await pool.close()
        raise
    if ready.done() and ready.exception() is None:
        return
    ready.cancel()
    await pool.close()
    if failed.done():
        raise refusal(failed.result(), secrets, sent_options=sent_options)
    err = ready.exception()
    assert isinstance(err, PoolTimeout)
    raise StorageUnavailableError(
        "postgres", f"no connection within connect_timeout={seconds:g} s: {secrets.line(err)}"
    ) from err


def refusal(
    err: psycopg.Error, secrets: Secrets, *, sent_options: bool
) -> StorageUnavailableError | ConfigError:
    """The error for a refused connection: PgBouncer refusing our ``options``
    startup parameter is a configuration mistake naming ``pgbouncer``."""
    # All of it on one line: libpq's hint ("Is the server running ...?") follows.
    said = secrets.mask(" ".join(str(err).split()))
    if sent_options and "unsupported startup parameter: options" in str(err):
        config = ConfigError(
            f"the server refused the startup parameter 'options' (it sets TimeZone=UTC): "
            f"{said}; behind PgBouncer, set pgbouncer=true",
            backend="postgres",
            option="pgbouncer",
        )
        config.__cause__ = err
        return config
    unavailable = StorageUnavailableError("postgres", f"cannot connect: {said}")
    unavailable.__cause__ = err
    return unavailable
