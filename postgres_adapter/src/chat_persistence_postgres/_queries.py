"""The SQL of every operation, composed once per adapter with ``psycopg.sql``.

Table names only ever enter SQL as ``sql.Identifier``; values only as parameters.
Every operation is one statement, or two in one pipeline (a batch save: the thread
lock, then the upsert), so each costs one round trip.
"""

from __future__ import annotations

import functools
from typing import TypeAlias

from psycopg import sql

from ._contract import Tables

MESSAGE_FIELDS = sql.SQL("m.message_id, m.role, m.session_id, m.created_at, m.parts_json")
SESSION_FIELDS = sql.SQL(
    "s.session_id, s.thread_id, s.sdk_version, s.state_json, s.metadata_json, "
    "s.created_at, s.updated_at, s.archived_at"
)
LOCK_SEED = 0x63686174  # "chat": keeps our advisory lock keys apart from seed-0 users
Statement: TypeAlias = bytes | sql.Composed
"""A statement as ``execute`` takes it: rendered once, or composed on each call."""
OVERFLOW_MARK = "chat-persistence:no-timestamp-left:"
"""Prefix of the error text the save statement raises when an assigned
``created_at`` would pass the last datetime Python can represent."""


class Queries:
    """Every statement the adapter runs, for one pair of tables."""

    def __init__(self, tables: Tables) -> None:
        self.m = sql.Identifier(*tables.messages.parts)
        self.s = sql.Identifier(*tables.sessions.parts)
        f = {"m": self.m, "s": self.s, "mfields": MESSAGE_FIELDS, "sfields": SESSION_FIELDS}
        # Rendered once, not on every execute, when the text is the same in every
        # client encoding (our own literals are ASCII; only table names may not be).
        self._render_once = all(
            p.isascii() for p in (*tables.messages.parts, *tables.sessions.parts)
        )

        self.lock_thread: Statement = self._final(
            sql.SQL("SELECT pg_advisory_xact_lock(hashtextextended(%(thread)s, {seed}))").format(
                seed=sql.Literal(LOCK_SEED)
            )
        )

        # One statement for the whole batch. A message without created_at gets
        # greatest(now, newest in thread + 1 us) plus 1 us per earlier such message of
        # the batch; re-saved messages keep their stored created_at (it is not in SET).
        # "batch" and "start" are materialized, so that the existence probe and the
        # thread's max(created_at) each run once, however often the expressions
        # below name them (inlined, each mention was planned and run again).
        self.save_messages: Statement = self._final(
            sql.SQL(
                """
            WITH batch AS MATERIALIZED (
                SELECT b.message_id, b.role, b.session_id, b.created_at, p.parts_json, b.ord,
                       EXISTS (SELECT 1 FROM {m} e
                               WHERE e.thread_id = %(thread)s
                                 AND e.message_id = b.message_id) AS present
                FROM unnest(%(ids)s::text[], %(roles)s::text[], %(sessions)s::text[],
                            %(created)s::timestamptz[])
                     WITH ORDINALITY AS b(message_id, role, session_id, created_at, ord)
                JOIN jsonb_array_elements(%(parts)s::jsonb)
                     WITH ORDINALITY AS p(parts_json, ord) ON p.ord = b.ord
            ),
            start AS MATERIALIZED (
                SELECT greatest(
                    now(),
                    (SELECT max(e.created_at) FROM {m} e WHERE e.thread_id = %(thread)s)
                        + interval '1 microsecond'
                ) AS t0
            ),
            numbered AS (
                SELECT b.*, count(*) FILTER (WHERE b.created_at IS NULL AND NOT b.present)
                                    OVER (ORDER BY b.ord) AS n
                FROM batch b
            ),
            timed AS (
                SELECT n.*, start.t0 + (n.n - 1) * interval '1 microsecond' AS assigned
                FROM numbered n CROSS JOIN start
            )
            INSERT INTO {m} AS m
                (thread_id, message_id, session_id, user_id, role, created_at, parts_json)
            SELECT %(thread)s, t.message_id, t.session_id, NULL, t.role,
                   CASE
                       WHEN t.created_at IS NOT NULL THEN t.created_at
                       -- Kept by the update below; any non-null value passes NOT NULL.
                       WHEN t.present THEN now()
                       WHEN t.assigned < '10000-01-01 00:00:00+00' THEN t.assigned
                       -- Python cannot read such a time back: fail the batch, naming
                       -- the message (not a constant, so it is not folded at plan time).
                       ELSE ({mark} || t.message_id)::timestamptz
                   END,
                   t.parts_json
            FROM timed t
            ORDER BY t.ord
            ON CONFLICT (thread_id, message_id) DO UPDATE
                SET role = excluded.role,
                    session_id = excluded.session_id,
                    parts_json = excluded.parts_json
            RETURNING m.message_id, m.created_at
            """
            ).format(mark=sql.Literal(OVERFLOW_MARK), **f)
        )

        # The same rules for a batch of one, the common case, as one row: about half
        # the server time of the batch statement. The existence probe runs only on
        # the overflow branch, where a re-save must not fail.
        row = sql.SQL(
            """
                %(thread)s, %(id)s, %(session)s, NULL, %(role)s,
                coalesce(%(created)s::timestamptz, (
                    SELECT CASE
                        WHEN t.t0 < '10000-01-01 00:00:00+00' THEN t.t0
                        WHEN EXISTS (SELECT 1 FROM {m} e
                                     WHERE e.thread_id = %(thread)s
                                       AND e.message_id = %(id)s) THEN now()
                        ELSE ({mark} || %(id)s)::timestamptz
                    END
                    FROM (SELECT greatest(
                        now(),
                        (SELECT max(e.created_at) FROM {m} e WHERE e.thread_id = %(thread)s)
                            + interval '1 microsecond'
                    ) AS t0) t
                )),
                %(parts)s::jsonb
            """
        ).format(mark=sql.Literal(OVERFLOW_MARK), **f)
        insert_one = sql.SQL(
            "INSERT INTO {m} AS m"
            " (thread_id, message_id, session_id, user_id, role, created_at, parts_json)"
        ).format(**f)
        upsert_tail = sql.SQL(
            """
            ON CONFLICT (thread_id, message_id) DO UPDATE
                SET role = excluded.role,
                    session_id = excluded.session_id,
                    parts_json = excluded.parts_json
            RETURNING m.message_id, m.created_at
            """
        )
        # Run behind lock_thread, in the same transaction.
        self.save_message: Statement = self._final(
            sql.SQL("{insert} VALUES ({row}) {tail}").format(
                insert=insert_one, row=row, tail=upsert_tail
            )
        )
        # The same with the lock taken inside, in one round trip instead of a
        # pipeline of two statements. Taken inside, the lock may be granted after
        # the statement's snapshot, so the thread's newest row could be missing
        # from it; "fresh" proves that it is not, after the lock is held. Every
        # earlier holder of the lock has ended (it holds the lock to its end), and
        # any that ended after the snapshot either was running then (listed in it,
        # and no longer running now) or got its transaction id after the snapshot
        # was taken, so at or above the snapshot's xmax, and ours, assigned after
        # that holder ended, above it. Unproven, nothing is written and no row comes
        # back: the caller runs save_message behind lock_thread instead.
        self.save_message_at_once: Statement = self._final(
            sql.SQL(
                """
            WITH locked AS MATERIALIZED (
                SELECT pg_advisory_xact_lock(hashtextextended(%(thread)s, {seed})), true AS held
            ),
            fresh AS MATERIALIZED (
                SELECT pg_current_xact_id() = pg_snapshot_xmax(pg_current_snapshot())
                       AND NOT EXISTS (
                           SELECT 1 FROM pg_snapshot_xip(pg_current_snapshot()) AS x(id)
                           WHERE l.held AND pg_xact_status(x.id) <> 'in progress'
                       ) AS proven
                FROM locked l
            )
            {insert} SELECT {row} WHERE (SELECT proven FROM fresh) {tail}
            """
            ).format(seed=sql.Literal(LOCK_SEED), insert=insert_one, row=row, tail=upsert_tail)
        )

        self.get_message: Statement = self._final(
            sql.SQL(
                "SELECT {mfields} FROM {m} m WHERE m.thread_id = %(thread)s"
                " AND m.message_id = %(message)s"
            ).format(**f)
        )

        self.delete_thread: Statement = self._final(
            sql.SQL(
                """
            WITH gone AS (DELETE FROM {s} WHERE thread_id = %(thread)s)
            DELETE FROM {m} WHERE thread_id = %(thread)s
            """
            ).format(**f)
        )

        self.upsert_session: Statement = self._final(
            sql.SQL(
                """
            INSERT INTO {s} AS s (session_id, thread_id, sdk_version, state_json,
                                  metadata_json, created_at, updated_at, archived_at)
            VALUES (%(id)s, %(thread)s, %(sdk)s, %(state)s::jsonb, %(metadata)s::jsonb,
                    coalesce(%(created)s::timestamptz, now()), now(), NULL)
            ON CONFLICT (session_id) DO UPDATE
                SET thread_id = excluded.thread_id,
                    sdk_version = excluded.sdk_version,
                    state_json = excluded.state_json,
                    metadata_json = excluded.metadata_json,
                    updated_at = greatest(now(), s.updated_at + interval '1 microsecond')
            RETURNING {sfields}
            """
            ).format(**f)
        )

        # Compare-and-set: the update happens only on the expected updated_at; when
        # it does not, the second branch returns the row as it was (same snapshot),
        # so the caller learns what it found, all in one statement.
        self.update_session_if: Statement = self._final(
            sql.SQL(
                """
            WITH written AS (
                UPDATE {s} AS s
                SET thread_id = %(thread)s,
                    sdk_version = %(sdk)s,
                    state_json = %(state)s::jsonb,
                    metadata_json = %(metadata)s::jsonb,
                    updated_at = greatest(now(), s.updated_at + interval '1 microsecond')
                WHERE s.session_id = %(id)s AND s.updated_at = %(expected)s::timestamptz
                RETURNING {sfields}
            )
            SELECT true AS written, w.* FROM written w
            UNION ALL
            SELECT false, {sfields} FROM {s} s
            WHERE s.session_id = %(id)s AND NOT EXISTS (SELECT 1 FROM written)
            """
            ).format(**f)
        )

        # The seed's archive: an upsert with archived_at = now(). An archived row
        # keeps its first archived_at and updated_at; the update still runs so that
        # RETURNING gives the row as it is now, even when a concurrent archive won.
        self.archive_session: Statement = self._final(
            sql.SQL(
                """
            INSERT INTO {s} AS s (session_id, thread_id, sdk_version, state_json,
                                  metadata_json, created_at, updated_at, archived_at)
            VALUES (%(id)s, %(thread)s, %(sdk)s, NULL, NULL, now(), now(), now())
            ON CONFLICT (session_id) DO UPDATE
                SET archived_at = coalesce(s.archived_at, now()),
                    updated_at = CASE
                        WHEN s.archived_at IS NULL
                        THEN greatest(now(), s.updated_at + interval '1 microsecond')
                        ELSE s.updated_at
                    END
            RETURNING {sfields}
            """
            ).format(**f)
        )

        self.get_session: Statement = self._final(
            sql.SQL("SELECT {sfields} FROM {s} s WHERE s.session_id = %(id)s").format(**f)
        )
        self.list_sessions: Statement = self._final(
            sql.SQL(
                "SELECT {sfields} FROM {s} s WHERE s.thread_id = %(thread)s"
                " ORDER BY s.created_at, s.session_id"
            ).format(**f)
        )
        self.list_live_sessions: Statement = self._final(
            sql.SQL(
                "SELECT {sfields} FROM {s} s WHERE s.thread_id = %(thread)s"
                " AND s.archived_at IS NULL ORDER BY s.created_at, s.session_id"
            ).format(**f)
        )

    def _final(self, query: sql.Composed) -> Statement:
        return query.as_bytes(None) if self._render_once else query

    @functools.cache  # noqa: B019 - one Queries per adapter, and few shapes
    def list_messages(
        self, *, by_session: bool, before: bool, after: bool, newest_first: bool, limited: bool
    ) -> Statement:
        """The listing for one shape of arguments.

        Keyset paging on ``(created_at, message_id)``: the plain ``created_at``
        bound beside the row comparison lets the ``(thread_id, created_at)`` index
        bound the scan. The archive rule is an anti-join on a page (``limit``),
        and hashed sets of the thread's own sessions on an unlimited listing.
        With a cursor, a marker row (``missing`` set) reports a cursor id that is
        not in the thread, so the caller can raise ``NotFoundError`` without a
        second query.
        """
        where: list[sql.Composable] = [sql.SQL("m.thread_id = %(thread)s")]
        if by_session:
            where.append(sql.SQL("m.session_id = %(session)s"))
        elif not limited:
            # The whole (or a cursor-bounded) thread: the thread's own live and
            # archived sessions are read once (sessions' thread_id index) into two
            # hashed sets; only a session whose row belongs to another thread, or
            # has none, is probed by key.
            where.append(
                sql.SQL(
                    "(m.session_id IS NULL"
                    " OR m.session_id IN (SELECT s.session_id FROM {s} s"
                    " WHERE s.thread_id = %(thread)s AND s.archived_at IS NULL)"
                    " OR (m.session_id NOT IN (SELECT s.session_id FROM {s} s"
                    " WHERE s.thread_id = %(thread)s AND s.archived_at IS NOT NULL)"
                    " AND NOT EXISTS (SELECT 1 FROM {s} s WHERE s.session_id = m.session_id"
                    " AND s.archived_at IS NOT NULL)))"
                ).format(s=self.s)
            )
        else:
            where.append(
                sql.SQL(
                    "NOT EXISTS (SELECT 1 FROM {s} s WHERE s.session_id = m.session_id"
                    " AND s.archived_at IS NOT NULL)"
                ).format(s=self.s)
            )
        cursors: list[tuple[str, sql.SQL]] = []
        if before:
            cursors.append(("before", sql.SQL("<")))
        if after:
            cursors.append(("after", sql.SQL(">")))
        for name, op in cursors:
            where.append(
                sql.SQL(
                    "m.created_at {op}= (SELECT c.created_at FROM {name} c)"
                    " AND (m.created_at, m.message_id) {op}"
                    " (SELECT c.created_at, c.message_id FROM {name} c)"
                ).format(op=op, name=sql.Identifier(f"cursor_{name}"))
            )
        order = sql.SQL(
            "m.created_at DESC, m.message_id DESC" if newest_first else "m.created_at, m.message_id"
        )
        page = sql.SQL("SELECT {fields} FROM {m} m WHERE {where} ORDER BY {order}{limit}").format(
            fields=MESSAGE_FIELDS,
            m=self.m,
            where=sql.SQL(" AND ").join(where),
            order=order,
            limit=sql.SQL(" LIMIT %(limit)s") if limited else sql.SQL(""),
        )
        if not cursors:
            return self._final(page)
        ctes = sql.SQL(", ").join(
            sql.SQL(
                "{name} AS (SELECT created_at, message_id FROM {m}"
                " WHERE thread_id = %(thread)s AND message_id = {param})"
            ).format(name=sql.Identifier(f"cursor_{name}"), m=self.m, param=sql.Placeholder(name))
            for name, _ in cursors
        )
        markers = sql.SQL("").join(
            sql.SQL(
                " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, {label}"
                " WHERE NOT EXISTS (SELECT 1 FROM {name})"
            ).format(label=sql.Literal(name), name=sql.Identifier(f"cursor_{name}"))
            for name, _ in cursors
        )
        return self._final(
            sql.SQL(
                "WITH {ctes} SELECT p.*, NULL::text AS missing FROM ({page}) p{markers}"
                " ORDER BY 4, 1"
            ).format(ctes=ctes, page=page, markers=markers)
        )
