"""Several statements in one round trip and one transaction."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor, pq
from psycopg.rows import tuple_row

from ._queries import Statement

Step = tuple[AsyncCursor[Any], Statement, Mapping[str, object]]
"""A statement, its parameters, and the cursor that keeps its result."""


async def in_one_transaction(
    conn: AsyncConnection[Any], steps: Sequence[Step], *, explicit: bool
) -> None:
    """Run ``steps`` in one pipeline: one round trip, all or nothing.

    In autocommit the statements form one implicit transaction, ended by the
    pipeline's single Sync. ``explicit`` (Citus) puts ``BEGIN`` and ``COMMIT``
    around them in the same pipeline: outside a transaction block Citus commits
    each statement on the worker nodes by itself, and a lock taken there would
    not outlast its statement. Nothing is added when the connection is already
    in a transaction (the adapter's read committed mode runs each operation in
    one).
    """
    explicit = explicit and conn.info.transaction_status == pq.TransactionStatus.IDLE
    command = AsyncCursor(conn, row_factory=tuple_row)
    try:
        async with conn.pipeline():
            if explicit:
                await command.execute(b"BEGIN")
            for cur, statement, params in steps:
                await cur.execute(statement, params)
            if explicit:
                await command.execute(b"COMMIT")
    except BaseException:
        # A failed statement leaves the explicit transaction open and aborted.
        if explicit and not (conn.closed or conn.broken):
            with contextlib.suppress(psycopg.Error):
                if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                    await command.execute(b"ROLLBACK")
        raise
