"""The in-process store behind ``MemoryPersistence``: plain data and an index.

Indexing. Each thread keeps its messages under a key ``(created_at in integer
microseconds since the epoch, insertion sequence)``; the pair is unique and sorts
exactly in listing order (time, then save order). Per thread:

- ``keys``: every key, in a sorted list. A new message is almost always the
  newest, so it is appended (O(1) amortized); an explicit older timestamp is
  placed with ``bisect.insort``.
- ``rows``: key -> the stored row (an immutable tuple; parts are kept as their
  wire JSON text, so nothing a caller holds can alias them).
- ``by_id``: message id -> key, so a cursor is found in O(1) and its position in
  ``keys`` by bisection in O(log n).
- ``by_session``: session id -> the sorted keys of that session's messages, so an
  explicit ``session_id`` listing never looks at other sessions' messages.

A page therefore costs O(log n + entries visited): the newest page walks back
from the end of ``keys``; a cursor page bisects to the cursor and walks from
there. The default listing skips messages of archived sessions as it walks, so
it visits the page plus the archived messages interleaved with it, never the
whole thread. Re-saving a message keeps its key and replaces its row.

One ``threading.Lock`` guards the store. Every operation does its reading,
checking and writing under the lock with no ``await`` in between, so concurrent
asyncio tasks and concurrent threads see each operation whole; a batch is
planned and checked completely before the first change, so it is all or nothing.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from chat_persistence import ConflictError, NotFoundError
from chat_persistence.storage import no_time_left

Key = tuple[int, int]
"""``(created_at in microseconds since the epoch, insertion sequence)``."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    return (value - _EPOCH) // _ONE_US


def from_micros(value: int) -> datetime:
    """Integer microseconds since the epoch as a UTC datetime."""
    return _EPOCH + timedelta(microseconds=value)


MIN_MICROS = to_micros(datetime.min.replace(tzinfo=UTC))
MAX_MICROS = to_micros(datetime.max.replace(tzinfo=UTC))


class MessageRow(NamedTuple):
    """One stored message; ``parts_json`` is the wire JSON array as text.
    ``created_at`` is ``created_us`` as a (immutable) UTC datetime."""

    message_id: str
    role: str
    parts_json: str
    session_id: str | None
    created_us: int
    created_at: datetime


class NewMessage(NamedTuple):
    """A validated message of a batch, ready to store (``created_us`` None: assign one)."""

    message_id: str
    role: str
    parts_json: str
    session_id: str | None
    created_us: int | None


class SessionRow(NamedTuple):
    """One stored session; ``state_json`` and ``metadata_json`` are JSON text."""

    session_id: str
    thread_id: str
    sdk_version: str
    state_json: str
    metadata_json: str
    created_us: int
    updated_us: int
    archived_us: int | None


class NewSession(NamedTuple):
    """A validated session to upsert (``created_us`` None: now)."""

    session_id: str
    thread_id: str
    sdk_version: str
    state_json: str
    metadata_json: str
    created_us: int | None


class _Thread:
    __slots__ = ("by_id", "by_session", "keys", "next_seq", "rows")

    def __init__(self) -> None:
        self.keys: list[Key] = []
        self.rows: dict[Key, MessageRow] = {}
        self.by_id: dict[str, Key] = {}
        self.by_session: dict[str, list[Key]] = {}
        self.next_seq = 0

    def plan(self, batch: Sequence[NewMessage], now_us: int) -> list[tuple[Key | None, MessageRow]]:
        """The rows a batch would store, each with its key if it is stored already;
        raises (having changed nothing) when a store-assigned time runs out."""
        plan: list[tuple[Key | None, MessageRow]] = []
        next_auto = max(now_us, self.keys[-1][0] + 1) if self.keys else now_us
        for item in batch:
            key = self.by_id.get(item.message_id)
            if key is not None:
                created, created_at = key[0], self.rows[key].created_at
            else:
                if item.created_us is not None:
                    created = item.created_us
                else:
                    created = next_auto
                    next_auto += 1
                if not MIN_MICROS <= created <= MAX_MICROS:
                    raise no_time_left(item.message_id)
                created_at = from_micros(created)
            row = MessageRow(
                item.message_id, item.role, item.parts_json, item.session_id, created, created_at
            )
            plan.append((key, row))
        return plan

    def put(self, key: Key | None, row: MessageRow) -> None:
        """Store one planned row: a new one gets the next key, a re-saved one keeps its own."""
        if key is None:
            key = (row.created_us, self.next_seq)
            self.next_seq += 1
            _insert_sorted(self.keys, key)
            self.by_id[row.message_id] = key
            old_session = None
        else:
            old_session = self.rows[key].session_id
        self.rows[key] = row
        if old_session == row.session_id:
            return
        if old_session is not None:
            self.unindex_session(old_session, key)
        if row.session_id is not None:
            _insert_sorted(self.by_session.setdefault(row.session_id, []), key)

    def unindex_session(self, session_id: str, key: Key) -> None:
        session_keys = self.by_session[session_id]
        _remove_sorted(session_keys, key)
        if not session_keys:
            del self.by_session[session_id]


def _insert_sorted(keys: list[Key], key: Key) -> None:
    if not keys or keys[-1] < key:
        keys.append(key)
    else:
        bisect.insort(keys, key)


def _remove_sorted(keys: list[Key], key: Key) -> None:
    del keys[bisect.bisect_left(keys, key)]


class Store:
    """Threads of messages and sessions, guarded by one lock. Methods are synchronous
    and complete: each either applies whole or raises having changed nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[str, _Thread] = {}
        self._sessions: dict[str, SessionRow] = {}
        self._sessions_by_thread: dict[str, set[str]] = {}

    # -- messages ---------------------------------------------------------------

    def save_messages(
        self, thread_id: str, batch: Sequence[NewMessage], now_us: int
    ) -> list[MessageRow]:
        """Upsert a batch (ids unique within it); returns the rows as stored."""
        with self._lock:
            thread = self._threads.get(thread_id) or _Thread()
            plan = thread.plan(batch, now_us)
            if not plan:
                return []
            # Nothing below can fail: the batch applies whole.
            self._threads.setdefault(thread_id, thread)
            for key, row in plan:
                thread.put(key, row)
            return [row for _, row in plan]

    def get_message(self, thread_id: str, message_id: str) -> MessageRow | None:
        """The stored row, or None."""
        with self._lock:
            thread = self._threads.get(thread_id)
            if thread is None:
                return None
            key = thread.by_id.get(message_id)
            return None if key is None else thread.rows[key]

    def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None,
        limit: int | None,
        before: str | None,
        after: str | None,
    ) -> list[MessageRow]:
        """A page of rows in listing order (see the module docstring for its cost)."""
        with self._lock:
            thread = self._threads.get(thread_id)
            cursors: dict[str, Key] = {}
            for cursor in (before, after):
                if cursor is None:
                    continue
                key = thread.by_id.get(cursor) if thread is not None else None
                if key is None:
                    raise NotFoundError("message", cursor, thread_id=thread_id)
                cursors[cursor] = key
            if thread is None or limit == 0:
                return []
            visible: Callable[[MessageRow], bool] | None = None
            if session_id is not None:
                keys = thread.by_session.get(session_id, [])
            else:
                keys = thread.keys
                visible = self._visible
            lo, hi = 0, len(keys)
            if after is not None:
                lo = bisect.bisect_right(keys, cursors[after])
            if before is not None:
                hi = bisect.bisect_left(keys, cursors[before])
            if after is not None or limit is None:
                return list(_take(thread.rows, keys, range(lo, hi), limit, visible))
            newest_first = list(_take(thread.rows, keys, range(hi - 1, lo - 1, -1), limit, visible))
            newest_first.reverse()
            return newest_first

    def delete_messages(self, thread_id: str, message_ids: Sequence[str]) -> list[MessageRow]:
        """Drop those of the thread's messages that exist; return them in listing order."""
        with self._lock:
            thread = self._threads.get(thread_id)
            if thread is None:
                return []
            keys = sorted(key for i in message_ids if (key := thread.by_id.get(i)) is not None)
            removed: list[MessageRow] = []
            for key in keys:
                row = thread.rows.pop(key)
                del thread.by_id[row.message_id]
                _remove_sorted(thread.keys, key)
                if row.session_id is not None:
                    thread.unindex_session(row.session_id, key)
                removed.append(row)
            if not thread.keys:
                del self._threads[thread_id]
            return removed

    def _visible(self, row: MessageRow) -> bool:
        if row.session_id is None:
            return True
        session = self._sessions.get(row.session_id)
        return session is None or session.archived_us is None

    def delete_thread(self, thread_id: str) -> None:
        """Drop the thread's messages and the sessions whose thread it is."""
        with self._lock:
            self._threads.pop(thread_id, None)
            for session_id in self._sessions_by_thread.pop(thread_id, set()):
                del self._sessions[session_id]

    # -- sessions ---------------------------------------------------------------

    def save_session(
        self,
        new: NewSession,
        now_us: int,
        *,
        expected_updated_us: int | None,
        check: bool,
        expected_updated_at: datetime | None = None,
    ) -> SessionRow:
        """Upsert a session; with ``check``, only if its ``updated_at`` is as expected
        (``expected_updated_at``, when given, is what a conflict reports)."""
        with self._lock:
            old = self._sessions.get(new.session_id)
            if check and (old is None or old.updated_us != expected_updated_us):
                if expected_updated_at is None and expected_updated_us is not None:
                    expected_updated_at = from_micros(expected_updated_us)
                raise ConflictError(
                    new.session_id,
                    expected=expected_updated_at,
                    actual=None if old is None else from_micros(old.updated_us),
                )
            if old is None:
                row = SessionRow(
                    new.session_id,
                    new.thread_id,
                    new.sdk_version,
                    new.state_json,
                    new.metadata_json,
                    now_us if new.created_us is None else new.created_us,
                    now_us,
                    None,
                )
            else:
                row = old._replace(
                    thread_id=new.thread_id,
                    sdk_version=new.sdk_version,
                    state_json=new.state_json,
                    metadata_json=new.metadata_json,
                    updated_us=_bump(old.updated_us, now_us),
                )
            self._put_session(old, row)
            return row

    def archive_session(
        self, session_id: str, thread_id: str, sdk_version: str, now_us: int
    ) -> SessionRow:
        """Set ``archived_at`` once, creating the row if it is missing."""
        with self._lock:
            old = self._sessions.get(session_id)
            if old is None:
                row = SessionRow(
                    session_id, thread_id, sdk_version, "null", "null", now_us, now_us, now_us
                )
            elif old.archived_us is None:
                row = old._replace(archived_us=now_us, updated_us=_bump(old.updated_us, now_us))
            else:
                return old
            self._put_session(old, row)
            return row

    def get_session(self, session_id: str) -> SessionRow | None:
        """The stored row, or None."""
        with self._lock:
            return self._sessions.get(session_id)

    def list_sessions(self, thread_id: str, *, include_archived: bool) -> list[SessionRow]:
        """The thread's sessions by ``created_at``, then id."""
        with self._lock:
            ids = self._sessions_by_thread.get(thread_id, ())
            rows = [self._sessions[i] for i in ids]
        if not include_archived:
            rows = [r for r in rows if r.archived_us is None]
        rows.sort(key=lambda r: (r.created_us, r.session_id))
        return rows

    def _put_session(self, old: SessionRow | None, row: SessionRow) -> None:
        if old is not None and old.thread_id != row.thread_id:
            siblings = self._sessions_by_thread[old.thread_id]
            siblings.discard(row.session_id)
            if not siblings:
                del self._sessions_by_thread[old.thread_id]
        self._sessions_by_thread.setdefault(row.thread_id, set()).add(row.session_id)
        self._sessions[row.session_id] = row


def _bump(previous_us: int, now_us: int) -> int:
    return max(now_us, previous_us + 1)


def _take(
    rows: dict[Key, MessageRow],
    keys: list[Key],
    positions: range,
    limit: int | None,
    visible: Callable[[MessageRow], bool] | None,
) -> Iterator[MessageRow]:
    """The first ``limit`` (None: all) rows at ``positions`` that are ``visible``
    (None: every row)."""
    taken = 0
    for i in positions:
        row = rows[keys[i]]
        if visible is not None and not visible(row):
            continue
        yield row
        taken += 1
        if taken == limit:
            return


_named_lock = threading.Lock()
_named_stores: dict[str, Store] = {}


def named_store(name: str) -> Store:
    """The process-wide store called ``name``, created on first use."""
    with _named_lock:
        store = _named_stores.get(name)
        if store is None:
            store = _named_stores[name] = Store()
        return store
