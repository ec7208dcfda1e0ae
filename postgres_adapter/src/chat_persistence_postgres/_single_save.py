"""Saving behind the thread lock, and the one-statement form of a single save.

A batch runs the lock and its upsert in a pipeline (one round trip, one implicit
transaction). A single message is saved by one statement that takes the lock
itself when it can prove its snapshot fresh (docs/postgres.md, "Single-message
saves"); when it cannot, it writes nothing, and the save runs behind the lock in
a pipeline, as do the next ``PAUSE`` single saves of the adapter.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import tuple_row

from ._queries import Queries, Statement

logger = logging.getLogger("chat_persistence.postgres")

PAUSE = 32
"""Single saves that skip the one-statement form after it could not prove its snapshot."""

SavedRow = tuple[str, datetime]
"""``(message_id, created_at)`` as stored."""


async def save_behind_lock(
    cur: AsyncCursor[SavedRow],
    queries: Queries,
    thread_id: str,
    upsert: Statement,
    params: Mapping[str, object],
) -> list[SavedRow]:
    """The lock and the upsert in one pipeline: in autocommit they run in one
    implicit transaction, ended by the pipeline's single Sync."""
    conn = cur.connection
    # Its own cursor: the lock's result has none of the columns ``cur`` reads.
    lock = AsyncCursor(conn, row_factory=tuple_row)
    async with conn.pipeline():
        await lock.execute(queries.lock_thread, {"thread": thread_id})
        await cur.execute(upsert, params)
    return await cur.fetchall()


class SingleSave:
    """The single-message save of one adapter, and its pause counter."""

    def __init__(self) -> None:
        self.pause = 0
        """Single saves left to run as a pipeline before the one-statement form again."""

    def use_one_statement(self) -> bool:
        """Whether the next single save tries the one-statement form (counts the pause down)."""
        if self.pause:
            self.pause -= 1
            return False
        return True

    async def run(
        self,
        cur: AsyncCursor[SavedRow],
        queries: Queries,
        thread_id: str,
        params: Mapping[str, Any],
        *,
        one_statement: bool,
    ) -> list[SavedRow]:
        """Save one message: in one statement when it proves its snapshot, else
        behind the lock in a pipeline."""
        if one_statement:
            await cur.execute(queries.save_message_locked, params)
            if rows := await cur.fetchall():
                return rows
            self._unproven(thread_id)
        return await save_behind_lock(cur, queries, thread_id, queries.save_message, params)

    def _unproven(self, thread_id: str) -> None:
        # Another transaction ended while the one-statement save waited or started:
        # likely a busy server, where the next ones would miss too.
        self.pause = PAUSE
        logger.debug(
            "save to thread %r: another transaction ended during the one-statement "
            "save; saved again behind the thread lock",
            thread_id,
        )
