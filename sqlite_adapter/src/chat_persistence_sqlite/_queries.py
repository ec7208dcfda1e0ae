"""The SQL of every operation, for one pair of tables. Table names enter SQL only
quoted as identifiers; values only as parameters.

Listing order is ``(created_at, rowid)``: time, then save order. The
``(thread_id, created_at)`` index holds the rowid after its columns, so a page is a
range scan of it in that order, forwards or backwards, never a sort.
"""

from __future__ import annotations

import functools

from ._contract import Tables, quote_identifier

MESSAGE_FIELDS = "m.message_id, m.role, m.session_id, m.created_at, m.parts_json"
SESSION_FIELDS = (
    "session_id, thread_id, sdk_version, state_json, metadata_json, "
    "created_at, updated_at, archived_at"
)


class Queries:
    """Every statement the adapter runs, for one pair of tables."""

    def __init__(self, tables: Tables) -> None:
        m = quote_identifier(tables.messages)
        s = quote_identifier(tables.sessions)
        self.m, self.s = m, s
        # The batch's messages already stored, and (message_id NULL) the thread's
        # newest time, in one statement. Parameters: thread, ids as a JSON array.
        newest = f" UNION ALL SELECT NULL, max(created_at) FROM {m} WHERE thread_id = ?1"
        self.present = (
            f"SELECT message_id, created_at FROM {m} WHERE thread_id = ?1"
            " AND message_id IN (SELECT value FROM json_each(?2))" + newest
        )
        # The same for one message. Parameters: thread, id.
        self.present_one = (
            f"SELECT message_id, created_at FROM {m} WHERE thread_id = ?1 AND message_id = ?2"
            + newest
        )
        # created_at is not in SET: a re-saved message keeps its time, so its place.
        self.upsert_message = (
            f"INSERT INTO {m} (thread_id, message_id, session_id, user_id, role, created_at,"
            " parts_json) VALUES (?, ?, ?, NULL, ?, ?, ?)"
            " ON CONFLICT (thread_id, message_id) DO UPDATE SET role = excluded.role,"
            " session_id = excluded.session_id, parts_json = excluded.parts_json"
        )
        self.get_message = (
            f"SELECT {MESSAGE_FIELDS} FROM {m} m WHERE m.thread_id = ? AND m.message_id = ?"
        )
        self.cursor = f"SELECT created_at, rowid FROM {m} WHERE thread_id = ? AND message_id = ?"
        self.delete_messages = (
            f"DELETE FROM {m} WHERE thread_id = ? AND message_id IN (SELECT value FROM"
            " json_each(?)) RETURNING message_id, role, session_id, created_at, parts_json, rowid"
        )
        self.delete_thread_sessions = f"DELETE FROM {s} WHERE thread_id = ?"
        self.delete_thread_messages = f"DELETE FROM {m} WHERE thread_id = ?"
        self._session_statements(s)
        # The whole-thread listing, only the columns ``list_stored_parts`` gives.
        self.stored_parts = self.list_messages(
            by_session=False,
            before=False,
            after=False,
            newest_first=False,
            limited=False,
            fields="m.message_id, m.role, m.parts_json",
        )

    def _session_statements(self, s: str) -> None:
        self.get_session = f"SELECT {SESSION_FIELDS} FROM {s} WHERE session_id = ?"
        self.session_updated_at = f"SELECT updated_at FROM {s} WHERE session_id = ?"
        self.list_sessions = (
            f"SELECT {SESSION_FIELDS} FROM {s} WHERE thread_id = ? ORDER BY created_at, session_id"
        )
        self.list_live_sessions = (
            f"SELECT {SESSION_FIELDS} FROM {s} WHERE thread_id = ? AND archived_at IS NULL"
            " ORDER BY created_at, session_id"
        )
        # Parameters: id, thread, sdk, state, metadata, created (or now), now.
        self.upsert_session = (
            f"INSERT INTO {s} ({SESSION_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"
            " ON CONFLICT (session_id) DO UPDATE SET thread_id = excluded.thread_id,"
            " sdk_version = excluded.sdk_version, state_json = excluded.state_json,"
            " metadata_json = excluded.metadata_json,"
            " updated_at = max(excluded.updated_at, updated_at + 1)"
            f" RETURNING {SESSION_FIELDS}"
        )
        # Parameters: id, thread, sdk, now, now, now. An archived row keeps its first
        # archived_at and its updated_at; RETURNING gives the row as it is either way.
        self.archive_session = (
            f"INSERT INTO {s} ({SESSION_FIELDS}) VALUES (?, ?, ?, NULL, NULL, ?, ?, ?)"
            " ON CONFLICT (session_id) DO UPDATE SET"
            " archived_at = coalesce(archived_at, excluded.archived_at),"
            " updated_at = CASE WHEN archived_at IS NULL"
            " THEN max(excluded.updated_at, updated_at + 1) ELSE updated_at END"
            f" RETURNING {SESSION_FIELDS}"
        )

    @functools.cache  # noqa: B019 - one Queries per adapter, and few shapes
    def list_messages(
        self,
        *,
        by_session: bool,
        before: bool,
        after: bool,
        newest_first: bool,
        limited: bool,
        fields: str = MESSAGE_FIELDS,
    ) -> str:
        """The listing for one shape of arguments, selecting ``fields``. Parameters,
        in order: thread, session (``by_session``), the after cursor's time twice and
        rowid, the before cursor's likewise, limit."""
        where = ["m.thread_id = ?"]
        if by_session:
            where.append("m.session_id = ?")
        else:
            where.append(
                f"(m.session_id IS NULL OR NOT EXISTS (SELECT 1 FROM {self.s} s"
                " WHERE s.session_id = m.session_id AND s.archived_at IS NOT NULL))"
            )
        # The plain bound on created_at lets the index bound the scan.
        if after:
            where.append("m.created_at >= ? AND (m.created_at, m.rowid) > (?, ?)")
        if before:
            where.append("m.created_at <= ? AND (m.created_at, m.rowid) < (?, ?)")
        order = "m.created_at DESC, m.rowid DESC" if newest_first else "m.created_at, m.rowid"
        limit = " LIMIT ?" if limited else ""
        return (
            f"SELECT {fields} FROM {self.m} m WHERE {' AND '.join(where)} ORDER BY {order}{limit}"
        )
