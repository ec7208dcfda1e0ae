"""Saving behind the thread lock, and the one-statement form of a save.

A save (one message or a batch) is one statement that takes the lock itself when
it can prove its snapshot fresh (docs/postgres.md, "Saves in one statement");
when it cannot, it writes nothing, and the save runs as the lock and the upsert in
a pipeline (one round trip, one transaction), as do the next ``PAUSE`` saves of
the adapter. A batch too large for one ``jsonb`` value always runs behind the
lock. On Citus (``distributed``) every save runs behind the lock taken on the
thread's shard, in an explicit transaction (docs/scaling.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from psycopg import AsyncCursor, pq
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from chat_persistence import JSON, Message, stored_message, unstructure_parts

from ._connections import Conn, Connections
from ._pipeline import in_one_transaction
from ._queries import Queries, Statement
from ._rows import utc
from ._times import TIMESTAMPTZ_OID, ClampedTimestamptzLoader
from ._wire import Wire

logger = logging.getLogger("chat_persistence.postgres")

PAUSE = 32
"""Saves that skip the one-statement form after it could not prove its snapshot."""

SavedRow = tuple[str, datetime]
"""``(message_id, created_at)`` as stored."""


async def save_behind_lock(
    cur: AsyncCursor[SavedRow],
    queries: Queries,
    thread_id: str,
    upsert: Statement,
    params: Mapping[str, object],
    *,
    distributed: bool,
) -> list[SavedRow]:
    """The lock and the upsert in one pipeline and one transaction. Distributed,
    the lock is the one routed to the thread's shard."""
    # Its own cursor: the lock's result has none of the columns ``cur`` reads.
    lock = AsyncCursor(cur.connection, row_factory=tuple_row)
    lock_thread = queries.lock_thread_on_shard if distributed else queries.lock_thread
    await in_one_transaction(
        cur.connection,
        [(lock, lock_thread, {"thread": thread_id}), (cur, upsert, params)],
        explicit=distributed,
    )
    return await cur.fetchall()


class SingleSave:
    """The saves of one adapter, in one statement or behind the thread lock, and
    the pause counter of the one-statement form."""

    def __init__(self, connections: Connections) -> None:
        self.pause = 0
        """Saves left to run as a pipeline before the one-statement form again."""
        self._connections = connections

    @property
    def distributed(self) -> bool:
        """Whether saves take the lock on the thread's shard, in explicit transactions."""
        return bool(self._connections.distributed)

    async def behind_lock(
        self,
        cur: AsyncCursor[SavedRow],
        queries: Queries,
        thread_id: str,
        upsert: Statement,
        params: Mapping[str, object],
    ) -> list[SavedRow]:
        """``save_behind_lock`` in this adapter's mode."""
        return await save_behind_lock(
            cur, queries, thread_id, upsert, params, distributed=self.distributed
        )

    def use_one_statement(self) -> bool:
        """Whether the next save tries the one-statement form (counts the pause down)."""
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
        locked: Statement | None,
        behind: Statement,
    ) -> list[SavedRow]:
        """Save: by ``locked`` (the one-statement form, which takes the lock) when
        given and it proves its snapshot, else by ``behind`` behind the lock in a
        pipeline. Distributed, always behind the lock: Citus runs the one statement
        as a read on the shard's node, which releases the lock when that read ends,
        and a write after it."""
        if locked is not None and not self.distributed:
            await cur.execute(locked, params)
            # Unproven, it wrote nothing and returned no row; a save has messages.
            if rows := await cur.fetchall():
                return rows
            self._unproven(thread_id)
        return await self.behind_lock(cur, queries, thread_id, behind, params)

    def _unproven(self, thread_id: str) -> None:
        # Another transaction ended while the one-statement save waited or started:
        # likely a busy server, where the next ones would miss too.
        self.pause = PAUSE
        logger.debug(
            "save to thread %r: another transaction ended during the one-statement "
            "save; saved again behind the thread lock",
            thread_id,
        )


# -- what a save sends and returns ----------------------------------------------


def save_cursor(conn: Conn, *, clamp_times: bool) -> AsyncCursor[SavedRow]:
    """A binary cursor of our own for a save's ``RETURNING message_id, created_at``
    (no ``jsonb`` to decode); ``clamp_times`` as for ``our_cursor``."""
    cur: AsyncCursor[Any] = AsyncCursor(conn, row_factory=tuple_row)
    cur.format = pq.Format.BINARY
    if clamp_times:
        cur.adapters.register_loader(TIMESTAMPTZ_OID, ClampedTimestamptzLoader)
    return cur


def one_params(thread_id: str, m: Message, wire: str) -> dict[str, object]:
    """The parameters of the one-message statement, its parts written as ``wire``."""
    return {
        "thread": thread_id,
        "id": m.id,
        "role": m.role,
        "session": m.session_id,
        "created": None if m.created_at is None else utc(m.created_at),
        "parts": jsonb_text(wire),
    }


def batch_records(messages: tuple[Message, ...]) -> list[dict[str, JSON]]:
    """The batch as the save statement reads it: one JSON record per message."""
    return [
        {
            "id": m.id,
            "role": m.role,
            "session": m.session_id,
            # In UTC: Postgres takes offsets up to 15:59 only; Python's go to 23:59.
            "created": None if m.created_at is None else utc(m.created_at).isoformat(),
            "parts": unstructure_parts(m.parts),
        }
        for m in messages
    ]


def jsonb_text(text: str) -> Jsonb:
    """A ``jsonb`` parameter of JSON text written already."""
    return Jsonb(None, dumps=lambda _: text)


def utc_or_none(value: datetime | None) -> datetime | None:
    """``value`` in UTC; None (which matches no row) when it has no UTC form."""
    try:
        return None if value is None else utc(value)
    except OverflowError:
        return None


def as_stored(
    thread_id: str, messages: tuple[Message, ...], stored: dict[str, Any], wire: Wire
) -> list[Message]:
    """The saved batch as stored: the store's times, parts decoded again from the
    wire text (validated on the way in; nothing shared with the caller's)."""
    sent = wire.loads()
    parts_of = [sent] if len(messages) == 1 else [r["parts"] for r in sent]
    return [
        stored_message(
            thread_id=thread_id,
            message_id=m.id,
            role=m.role,
            session_id=m.session_id,
            created_at=utc_or_none(stored[m.id]),
            parts_json=parts,
        )
        for m, parts in zip(messages, parts_of, strict=True)
    ]
