"""The SQL of every operation, as templates. ``Queries`` fills in the tables.

Placeholders: ``{m}`` and ``{s}`` (the messages and sessions tables), ``{mfields}``
and ``{sfields}`` (their columns, in contract order), ``{seed}`` (the advisory
lock's key space) and ``{mark}`` (``OVERFLOW_MARK``). Values only ever enter as
parameters (``%(name)s``).
"""

from __future__ import annotations

from typing import LiteralString

from psycopg import sql

MESSAGE_FIELDS = sql.SQL("m.message_id, m.role, m.session_id, m.created_at, m.parts_json")
STORED_PARTS_FIELDS = sql.SQL("m.message_id, m.role, m.parts_json")
SESSION_FIELDS = sql.SQL(
    "s.session_id, s.thread_id, s.sdk_version, s.state_json, s.metadata_json, "
    "s.created_at, s.updated_at, s.archived_at"
)
LOCK_SEED = 0x63686174  # "chat": keeps our advisory lock keys apart from seed-0 users
OVERFLOW_MARK = "chat-persistence:no-timestamp-left:"
"""Prefix of the error text the save statement raises when an assigned
``created_at`` would pass the last datetime Python can represent."""

ISOLATION_MARK = "chat-persistence:isolation:"
"""Prefix of the error text a write raises when its transaction is not read
committed (the session's ``default_transaction_isolation`` is another level)."""
# In every write, evaluated once before anything is written (it has no column, so
# the planner makes it a one-time filter): our ordering and upserts rely on read
# committed, and a session default of repeatable read or serializable would
# silently break them (docs/postgres.md, "Isolation"). Under read committed the
# nullif is NULL and so is the cast; under another level the cast of the marked
# text fails. No CASE: Citus refuses CASE (and COALESCE) over a non-immutable
# function in a modification's WHERE.
_READ_COMMITTED = (
    "(('" + ISOLATION_MARK + "' || nullif(current_setting('transaction_isolation'),"
    " 'read committed'))::boolean IS NULL)"
)

# A stored updated_at plus 1 us, in immutable functions only (timestamptz +
# interval is stable, since an interval of days or months depends on the time
# zone): Citus refuses anything else on a column in UPDATE ... SET and ON
# CONFLICT DO UPDATE SET, and computes now() once, on the coordinator, for every
# replica of a reference table. The same instant as "s.updated_at + 1 us".
_NEXT_UPDATED_AT = (
    "(((s.updated_at AT TIME ZONE 'UTC') + interval '1 microsecond') AT TIME ZONE 'UTC')"
)

LOCK_THREAD = sql.SQL("SELECT pg_advisory_xact_lock(hashtextextended(%(thread)s::text, {seed}))")
# The same lock taken where the thread's rows live: on Citus a statement that
# reads only the thread's shard runs on that shard's node, and this one reads no
# row of it (LIMIT 0) yet always returns one row, so the lock is always taken.
# Run in an explicit transaction, so that the node keeps it until the write that
# follows commits there (docs/scaling.md). On one server: the same lock.
LOCK_THREAD_ON_SHARD = sql.SQL(
    "SELECT pg_advisory_xact_lock(hashtextextended(%(thread)s::text, {seed}))"
    " FROM (SELECT count(*) FROM"
    " (SELECT 1 FROM {m} WHERE thread_id = %(thread)s::text LIMIT 0) z) x"
)

_UPSERT_TAIL = """
ON CONFLICT (thread_id, message_id) DO UPDATE
    SET role = excluded.role,
        session_id = excluded.session_id,
        parts_json = excluded.parts_json
RETURNING m.message_id, m.created_at
"""
_INSERT = (
    "INSERT INTO {m} AS m"
    " (thread_id, message_id, session_id, user_id, role, created_at, parts_json)"
)

# One statement for the whole batch, its messages one jsonb array of records
# (parsed once; orjson writes it faster than psycopg dumps arrays). A message
# without created_at gets greatest(now, newest in thread + 1 us) plus 1 us per
# earlier such message of the batch that is new; re-saved messages keep their
# stored created_at (it is not in SET). The thread's newest time and the batch's
# re-saved ids are each read once, by one index scan (uncorrelated: run once);
# only the overflow branch probes a message by itself, where a re-save must not
# fail. The records' keys are written by ``_adapter.batch_records``.
_BATCH_AS_DOCUMENT = """
    ROWS FROM (jsonb_to_recordset(%(batch)s::jsonb)
               AS (id text, role text, session text, created timestamptz, parts jsonb))
         WITH ORDINALITY AS r(id, role, session, created, parts, ord)
"""
_BATCH_IDS_OF_DOCUMENT = "ARRAY(SELECT x->>'id' FROM jsonb_array_elements(%(batch)s::jsonb) x)"
# For a batch past jsonb's 256 MB limit on one value: one record text per message.
_BATCH_AS_TEXTS = """
    (SELECT f.*, t.ord
     FROM unnest(%(batch)s::text[]) WITH ORDINALITY AS t(record, ord)
     CROSS JOIN LATERAL jsonb_to_record(t.record::jsonb)
         AS f(id text, role text, session text, created timestamptz, parts jsonb)) r
"""
_BATCH_IDS_OF_TEXTS = "%(ids)s::text[]"
_SAVE_BATCH = (
    _INSERT
    + """
SELECT %(thread)s::text, b.id, b.session, NULL, b.role,
       CASE
           WHEN b.created IS NOT NULL THEN b.created
           -- Also for a re-saved message, which keeps its stored time.
           WHEN b.assigned < '10000-01-01 00:00:00+00' THEN b.assigned
           WHEN EXISTS (SELECT 1 FROM {m} e
                        WHERE e.thread_id = %(thread)s::text AND e.message_id = b.id)
               THEN now()
           -- Python cannot read such a time back: fail the batch, naming the
           -- message (not a constant, so it is not folded at plan time).
           ELSE ({mark} || b.id)::timestamptz
       END,
       b.parts
FROM (
    SELECT n.*,
           (SELECT greatest(
               now(),
               (SELECT max(e.created_at) FROM {m} e WHERE e.thread_id = %(thread)s::text)
                   + interval '1 microsecond'))
           + (n.n - 1) * interval '1 microsecond' AS assigned
    FROM (
        SELECT r.*,
               count(*) FILTER (WHERE r.created IS NULL AND r.id <> ALL (coalesce(
                   (SELECT array_agg(e.message_id) FROM {m} e
                    WHERE e.thread_id = %(thread)s::text AND e.message_id = ANY ({ids})),
                   '{{}}'::text[]))) OVER (ORDER BY r.ord) AS n
        FROM {rows}
    ) n
) b
WHERE """
    + _READ_COMMITTED
    + "{proven}"
    + """
ORDER BY b.ord
"""
    + _UPSERT_TAIL
)
# Taking the thread lock inside the statement saves a second statement; "fresh"
# then proves that the snapshot saw every earlier holder of the lock (the proof is
# in docs/postgres.md, "Saves in one statement"). Unproven, the statement writes
# nothing, and the save runs behind LOCK_THREAD instead.
_LOCKED = """
WITH locked AS MATERIALIZED (
    SELECT pg_advisory_xact_lock(hashtextextended(%(thread)s::text, {seed})), true AS held
),
fresh AS MATERIALIZED (
    SELECT pg_current_xact_id() = pg_snapshot_xmax(pg_current_snapshot())
           AND NOT EXISTS (
               SELECT 1 FROM pg_snapshot_xip(pg_current_snapshot()) AS x(id)
               WHERE l.held AND pg_xact_status(x.id) <> 'in progress'
           ) AS proven
    FROM locked l
)
"""
_PROVEN = " AND (SELECT proven FROM fresh)"


def _batch(rows: LiteralString, ids: LiteralString, *, locked: bool) -> sql.SQL:
    text = _SAVE_BATCH.replace("{rows}", rows).replace("{ids}", ids)
    if locked:
        return sql.SQL(_LOCKED + text.replace("{proven}", _PROVEN))
    return sql.SQL(text.replace("{proven}", ""))


# Run behind LOCK_THREAD, in the same transaction.
SAVE_BATCH = _batch(_BATCH_AS_DOCUMENT, _BATCH_IDS_OF_DOCUMENT, locked=False)
SAVE_BIG_BATCH = _batch(_BATCH_AS_TEXTS, _BATCH_IDS_OF_TEXTS, locked=False)
# Taking the lock itself.
SAVE_BATCH_LOCKED = _batch(_BATCH_AS_DOCUMENT, _BATCH_IDS_OF_DOCUMENT, locked=True)

# The same rules for a batch of one, the common case, as one row. The existence
# probe runs only on the overflow branch, where a re-save must not fail.
_ONE_ROW = """
    %(thread)s::text, %(id)s::text, %(session)s::text, NULL, %(role)s::text,
    coalesce(%(created)s::timestamptz, (
        SELECT CASE
            WHEN t.t0 < '10000-01-01 00:00:00+00' THEN t.t0
            WHEN EXISTS (SELECT 1 FROM {m} e WHERE e.thread_id = %(thread)s::text
                                               AND e.message_id = %(id)s::text) THEN now()
            ELSE ({mark} || %(id)s::text)::timestamptz
        END
        FROM (SELECT greatest(
            now(),
            (SELECT max(e.created_at) FROM {m} e WHERE e.thread_id = %(thread)s::text)
                + interval '1 microsecond'
        ) AS t0) t
    )),
    %(parts)s::jsonb
"""
_SAVE_ONE = _INSERT + " SELECT " + _ONE_ROW + " WHERE " + _READ_COMMITTED
SAVE_ONE = sql.SQL(_SAVE_ONE + _UPSERT_TAIL)
SAVE_ONE_LOCKED = sql.SQL(_LOCKED + _SAVE_ONE + _PROVEN + _UPSERT_TAIL)

GET_MESSAGE = sql.SQL(
    "SELECT {mfields} FROM {m} m WHERE m.thread_id = %(thread)s AND m.message_id = %(message)s"
)

# Two statements, run in one transaction: on Citus, a data-modifying CTE on the
# sessions reference table would be sent with the messages to the thread's shard
# and delete the session rows of that node's replica only.
DELETE_THREAD_SESSIONS = sql.SQL(
    "DELETE FROM {s} WHERE thread_id = %(thread)s::text AND " + _READ_COMMITTED
)
DELETE_THREAD_MESSAGES = sql.SQL(
    "DELETE FROM {m} WHERE thread_id = %(thread)s::text AND " + _READ_COMMITTED
)

# Under read committed a row another DELETE removed first is skipped, so two
# concurrent calls never both return one message.
DELETE_MESSAGES = sql.SQL(
    "WITH gone AS (DELETE FROM {m} m WHERE "
    + _READ_COMMITTED
    + " AND m.thread_id = %(thread)s::text"
    " AND m.message_id = ANY(%(ids)s::text[]) RETURNING {mfields})"
    " SELECT * FROM gone g ORDER BY g.created_at, g.message_id"
)

UPSERT_SESSION = sql.SQL(
    """
INSERT INTO {s} AS s (session_id, thread_id, sdk_version, state_json,
                      metadata_json, created_at, updated_at, archived_at)
SELECT %(id)s::text, %(thread)s::text, %(sdk)s::text, %(state)s::jsonb, %(metadata)s::jsonb,
       coalesce(%(created)s::timestamptz, now()), now(), NULL
WHERE """
    + _READ_COMMITTED
    + """
ON CONFLICT (session_id) DO UPDATE
    SET thread_id = excluded.thread_id,
        sdk_version = excluded.sdk_version,
        state_json = excluded.state_json,
        metadata_json = excluded.metadata_json,
        updated_at = greatest(excluded.updated_at, """
    + _NEXT_UPDATED_AT
    + """)
RETURNING {sfields}
"""
)

# Compare-and-set: the update happens only on the expected updated_at; when it
# does not, "found" returns the row as it is now, so the caller learns what it
# found, all in one statement. "found" locks the row (FOR SHARE) so that it reads
# the newest committed version, not the statement's snapshot: the loser of a race
# waited for the winner and must report the winner's updated_at.
UPDATE_SESSION_IF = sql.SQL(
    """
WITH written AS (
    UPDATE {s} AS s
    SET thread_id = %(thread)s::text,
        sdk_version = %(sdk)s::text,
        state_json = %(state)s::jsonb,
        metadata_json = %(metadata)s::jsonb,
        updated_at = greatest(now(), """
    + _NEXT_UPDATED_AT
    + """)
    WHERE s.session_id = %(id)s::text AND s.updated_at = %(expected)s::timestamptz AND """
    + _READ_COMMITTED
    + """
    RETURNING {sfields}
),
found AS (
    SELECT {sfields} FROM {s} s
    WHERE s.session_id = %(id)s::text AND NOT EXISTS (SELECT 1 FROM written)
    FOR SHARE OF s
)
SELECT true AS written, w.* FROM written w
UNION ALL
SELECT false, f.* FROM found f
"""
)

# The seed's archive: an upsert with archived_at = now(). An archived row keeps its
# first archived_at and updated_at; the update still runs so that RETURNING gives
# the row as it is now, even when a concurrent archive won.
ARCHIVE_SESSION = sql.SQL(
    """
INSERT INTO {s} AS s (session_id, thread_id, sdk_version, state_json,
                      metadata_json, created_at, updated_at, archived_at)
SELECT %(id)s::text, %(thread)s::text, %(sdk)s::text, NULL, NULL, now(), now(), now()
WHERE """
    + _READ_COMMITTED
    + """
ON CONFLICT (session_id) DO UPDATE
    SET archived_at = coalesce(s.archived_at, excluded.archived_at),
        updated_at = CASE
            WHEN s.archived_at IS NULL
            THEN greatest(excluded.updated_at, """
    + _NEXT_UPDATED_AT
    + """)
            ELSE s.updated_at
        END
RETURNING {sfields}
"""
)

GET_SESSION = sql.SQL("SELECT {sfields} FROM {s} s WHERE s.session_id = %(id)s")
LIST_SESSIONS = sql.SQL(
    "SELECT {sfields} FROM {s} s WHERE s.thread_id = %(thread)s ORDER BY s.created_at, s.session_id"
)
LIST_LIVE_SESSIONS = sql.SQL(
    "SELECT {sfields} FROM {s} s WHERE s.thread_id = %(thread)s::text"
    " AND s.archived_at IS NULL ORDER BY s.created_at, s.session_id"
)

# The archive rule of a listing. The whole (or a cursor-bounded) thread: the
# thread's own live and archived sessions are read once (sessions' thread_id
# index) into two hashed sets; only a session whose row belongs to another thread,
# or has none, is probed by key (NULL ids are left out of the NOT IN set: one
# would make it match nothing). A page (limit): an anti-join.
LIVE_IN_THREAD = sql.SQL(
    "(m.session_id IS NULL"
    " OR m.session_id IN (SELECT s.session_id FROM {s} s"
    " WHERE s.thread_id = %(thread)s::text AND s.archived_at IS NULL)"
    " OR (m.session_id NOT IN (SELECT s.session_id FROM {s} s"
    " WHERE s.thread_id = %(thread)s::text AND s.archived_at IS NOT NULL"
    " AND s.session_id IS NOT NULL)"
    " AND NOT EXISTS (SELECT 1 FROM {s} s WHERE s.session_id = m.session_id"
    " AND s.archived_at IS NOT NULL)))"
)
LIVE_ON_PAGE = sql.SQL(
    "NOT EXISTS (SELECT 1 FROM {s} s WHERE s.session_id = m.session_id"
    " AND s.archived_at IS NOT NULL)"
)
CURSOR_BOUND = sql.SQL(
    "m.created_at {op}= (SELECT c.created_at FROM {name} c)"
    " AND (m.created_at, m.message_id) {op} (SELECT c.created_at, c.message_id FROM {name} c)"
)
CURSOR_ROW = sql.SQL(
    "{name} AS (SELECT created_at, message_id FROM {m}"
    " WHERE thread_id = %(thread)s::text AND message_id = {param})"
)
# A marker row (``missing`` set) reports a cursor id that is not in the thread.
CURSOR_MARKER = sql.SQL(
    " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, {label}"
    " WHERE NOT EXISTS (SELECT 1 FROM {name})"
)
PAGE = sql.SQL("SELECT {mfields} FROM {m} m WHERE {where} ORDER BY {order}{limit}")
PAGE_WITH_CURSORS = sql.SQL(
    "WITH {ctes} SELECT p.*, NULL::text AS missing FROM ({page}) p{markers} ORDER BY 4, 1"
)
