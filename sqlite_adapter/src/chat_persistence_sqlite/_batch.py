"""Writing a batch of messages, under the write lock the caller holds.

One multi-row upsert (one per chunk of a large batch) with ``RETURNING``: each row
is offered a time, the thread's next ones for a message without ``created_at``;
a message already stored keeps its own (``created_at`` is not in the ``SET``), and
``RETURNING`` says which time each row has. So new messages' times strictly
increase in batch order, after every message of the thread, with no statement to
find which messages exist. A chunk is a power of two rows, so the few statement
shapes stay in the connection's cache.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import orjson

from chat_persistence import Message, stored_message, unstructure_parts
from chat_persistence.storage import json_text, no_time_left

from ._json import loads
from ._queries import Queries
from ._rows import MAX_MICROS, MIN_MICROS, from_micros, to_micros

Encoded = tuple[str, str, str | None, int | None, bytes | str]
"""A message ready to store: id, role, session id, created_at (micros) or None,
parts as JSON: orjson's UTF-8 bytes, or ``json_text``'s string where orjson's text
would differ (see ``_json``). The statement stores either as TEXT."""

_COLUMNS = 6
"""Parameters per row of the upsert."""
MAX_CHUNK = 256
"""The most rows in one statement."""


def encode_batch(messages: Sequence[Message]) -> list[Encoded]:
    """The rows of ``messages``, ready for ``store_batch``."""
    batch: list[Encoded] = []
    for m in messages:
        wire = unstructure_parts(m.parts)
        try:
            parts: bytes | str = orjson.dumps(wire)
            if b"-0.0" in parts:
                parts = json_text(wire)
        except TypeError:  # orjson.JSONEncodeError is one: an integer beyond 64 bits
            parts = json_text(wire)
        created = None if m.created_at is None else to_micros(m.created_at)
        batch.append((m.id, m.role, m.session_id, created, parts))
    return batch


def saved_messages(thread_id: str, batch: list[Encoded], times: list[Any]) -> list[Message]:
    """The saved batch as stored: the stored times, and parts decoded again from
    the text written (so nothing is shared with the caller's parts)."""
    texts = [m[4] for m in batch]
    if all(type(t) is bytes for t in texts):
        # Our own JSON texts, one valid array each: one parse for the batch.
        parsed: list[Any] = orjson.loads(b"[" + b",".join(texts) + b"]")  # pyright: ignore[reportArgumentType]
    else:
        parsed = [orjson.loads(t) if type(t) is bytes else loads(t) for t in texts]  # pyright: ignore[reportArgumentType]
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


def chunk_rows(variable_limit: int) -> int:
    """The largest power of two of rows per statement that the connection's limit
    on parameters allows, at most ``MAX_CHUNK``."""
    rows = 1
    while rows * 2 <= MAX_CHUNK and rows * 2 * _COLUMNS <= variable_limit:
        rows *= 2
    return rows


def store_batch(
    conn: sqlite3.Connection, q: Queries, thread_id: str, batch: list[Encoded], chunk: int
) -> list[Any]:
    """Upsert ``batch``; return each message's stored created_at, in batch order."""
    newest = conn.execute(q.newest, (thread_id,)).fetchone()[0]
    auto = time.time_ns() // 1000
    if type(newest) is int:
        auto = max(auto, newest + 1)
    if auto + len(batch) > MAX_MICROS:
        # At the end of the datetime range: only new messages may fail, so find them.
        return _store_probed(conn, q, thread_id, batch)
    params: list[object] = []
    for message_id, role, session_id, created, parts in batch:
        if created is None:
            created, auto = auto, auto + 1
        params += (thread_id, message_id, session_id, role, created, parts)
    stored: dict[str, Any] = {}
    done = 0
    while done < len(batch):
        size = chunk
        while size > len(batch) - done:
            size //= 2
        sql = q.upsert_messages(size)
        stored.update(conn.execute(sql, params[done * _COLUMNS : (done + size) * _COLUMNS]))
        done += size
    return [stored[m[0]] for m in batch]


def _store_probed(
    conn: sqlite3.Connection, q: Queries, thread_id: str, batch: list[Encoded]
) -> list[Any]:
    """``store_batch`` reading first which messages are stored, so that only a new
    message whose time would pass the range is refused."""
    ids = json.dumps([m[0] for m in batch])
    present: dict[str, Any] = {}
    newest: object = None
    for message_id, created in conn.execute(q.present, (thread_id, ids)).fetchall():
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
    for row in rows:
        conn.execute(q.upsert_messages(1), row).fetchall()
    return times
