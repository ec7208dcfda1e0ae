"""Surviving connection loss: telling a lost connection from other errors, finding
pooled connections that died while idle, and the retry policy."""

from __future__ import annotations

import random
import select
from typing import Any

import attrs
import psycopg
from psycopg import pq

RETRY_BACKOFF_CAP = 2.0
"""No wait between two attempts is longer than this many seconds."""

# SQLSTATEs that say the server cannot serve us now, not that the statement is wrong:
# connection exceptions (class 08), operator intervention (shutdown, crash, starting
# up, database dropped) and too many connections.
_UNAVAILABLE_PREFIXES = ("08", "57P")
_UNAVAILABLE_STATES = frozenset({"53300"})


@attrs.frozen
class RetryPolicy:
    """How often, and after how long a wait, an idempotent operation is tried again
    when its connection is lost: ``retries`` more attempts, waiting about
    ``backoff * 2**(n-1)`` seconds before the n-th (at most ``RETRY_BACKOFF_CAP``),
    with jitter so that many callers who lost their connections together do not
    come back together."""

    retries: int
    backoff: float

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        ceiling = min(RETRY_BACKOFF_CAP, self.backoff * 2 ** (retry - 1))
        return random.uniform(ceiling / 2, ceiling)


def connection_lost(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether ``conn`` can no longer be used (the server went away, the socket
    broke): the error it raised says nothing about the statement itself."""
    return conn.broken or conn.closed


def unavailable(err: psycopg.Error) -> bool:
    """Whether a database error means the server cannot serve us right now."""
    state = err.sqlstate or ""
    return state.startswith(_UNAVAILABLE_PREFIXES) or state in _UNAVAILABLE_STATES


def died_while_idle(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether a connection taken from the pool is already dead, without a round trip.

    An idle connection has nothing to read. When its server process ended (a
    restart, ``pg_terminate_backend``, a failover), the socket holds the server's
    last error and then the end of the stream: reading what is there, without
    waiting, tells a dead connection from a live one for the cost of a ``poll``.
    A live connection with a pending notification is only read into libpq's buffer.
    """
    if connection_lost(conn):
        return True
    pgconn = conn.pgconn
    # The error message and the end of the stream may need a read each.
    for _ in range(3):
        if not _readable(pgconn.socket):
            break
        try:
            pgconn.consume_input()
        except psycopg.OperationalError:
            return True
        if pgconn.status == pq.ConnStatus.BAD:
            return True
    return pgconn.status == pq.ConnStatus.BAD


def _readable(fd: int) -> bool:
    """Whether reading ``fd`` would not block, without waiting."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)  # Windows has no poll
    return bool(readable)
