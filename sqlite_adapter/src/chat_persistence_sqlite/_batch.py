"""Writing a batch of messages: its rows, the upsert under the write lock the
caller holds, and the saved messages read back from the text written.

The upsert first reads, in one statement, which of the batch's messages are
stored and the thread's newest time: a stored message keeps its time
(``created_at`` is not in the ``SET``), a new one without a time gets the
thread's next, so new times strictly increase in batch order, after every message
of the thread.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import orjson

from chat_persistence import Message, stored_message, unstructure_parts
from chat_persistence.storage import dump_json, load_json, no_time_left

from ._queries import Queries
from ._rows import MAX_MICROS, MIN_MICROS, from_micros, to_micros

Encoded = tuple[str, str, str | None, int | None, str]
"""A message ready to store: id, role, session id, created_at (micros) or None,
parts as JSON text."""


class Batch(list[Encoded]):
    """The rows of a batch; ``plain`` when orjson wrote every parts text (so one
    orjson parse reads them back exactly: see ``dump_json``)."""

    plain: bool = True


def encode_batch(messages: Sequence[Message]) -> Batch:
    """The rows of ``messages``, ready for ``store_batch``."""
    batch = Batch()
    for m in messages:
        parts, by_orjson = dump_json(unstructure_parts(m.parts))
        if not by_orjson:
            batch.plain = False
        created = None if m.created_at is None else to_micros(m.created_at)
        batch.append((m.id, m.role, m.session_id, created, parts))
    return batch


def saved_messages(thread_id: str, batch: Batch, times: list[Any]) -> list[Message]:
    """The saved batch as stored: the stored times, and parts decoded again from
    the text written (so nothing is shared with the caller's parts)."""
    texts = [m[4] for m in batch]
    if batch.plain:
        # Our own JSON texts, one valid array each: one parse for the batch.
        parsed: list[Any] = orjson.loads("[" + ",".join(texts) + "]")
    else:
        parsed = [load_json(t) for t in texts]
    return [
        stored_message(
            thread_id=thread_id,
            message_id=m[0],
            role=m[1],
            session_id=m[2],
            created_at=from_micros(t),
            parts_json=p,
        )
        for m, t, p in zip(batch, times, parsed, strict=True)
    ]


def store_batch(conn: sqlite3.Connection, q: Queries, thread_id: str, batch: Batch) -> list[Any]:
    """Upsert ``batch``; return each message's stored created_at, in batch order."""
    if len(batch) == 1:
        found = conn.execute(q.present_one, (thread_id, batch[0][0])).fetchall()
    else:
        ids = json.dumps([m[0] for m in batch])
        found = conn.execute(q.present, (thread_id, ids)).fetchall()
    present: dict[str, Any] = {}
    newest: object = None
    for message_id, created in found:
        if message_id is None:
            newest = created
        else:
            present[message_id] = created
    next_auto = time.time_ns() // 1000
    if type(newest) is int:
        next_auto = max(next_auto, newest + 1)
    times: list[Any] = []
    rows: list[tuple[object, ...]] = []
    for message_id, role, session_id, created, parts in batch:
        if message_id in present:
            stored = present[message_id]
        else:
            if created is None:
                created, next_auto = next_auto, next_auto + 1
            if not MIN_MICROS <= created <= MAX_MICROS:
                raise no_time_left(message_id)
            stored = created
        times.append(stored)
        rows.append((thread_id, message_id, session_id, role, stored, parts))
    conn.executemany(q.upsert_message, rows)
    return times
