"""The statements of one adapter: the templates of ``_sql`` on its two tables.

Table names only ever enter SQL as ``sql.Identifier`` (with any ``%`` doubled, so
that it is not read as a placeholder); values only as parameters. Every operation
is one statement, or two in one pipeline (a save that could not take the thread
lock itself: the lock, then the upsert), so each costs one round trip.
"""

from __future__ import annotations

import functools
from typing import Any, TypeAlias

from psycopg import sql

from . import _sql
from ._tables import Tables

Statement: TypeAlias = bytes | sql.Composed
"""A statement as ``execute`` takes it: rendered once, or composed on each call."""


_OPS = {"before": sql.SQL("<"), "after": sql.SQL(">")}
_NEWEST_FIRST = sql.SQL("m.created_at DESC, m.message_id DESC")
_OLDEST_FIRST = sql.SQL("m.created_at, m.message_id")


class _Table(sql.Composable):
    """A table's identifier whose ``%`` signs survive psycopg's placeholder parsing."""

    def __init__(self, *parts: str) -> None:
        super().__init__(sql.Identifier(*parts))

    def as_bytes(self, context: Any = None) -> bytes:
        inner: sql.Identifier = self._obj
        return inner.as_bytes(context).replace(b"%", b"%%")


class Queries:
    """Every statement the adapter runs, for one pair of tables."""

    def __init__(self, tables: Tables) -> None:
        self.m = _Table(*tables.messages.parts)
        self.s = _Table(*tables.sessions.parts)
        # Rendered once, not on every execute, when the text is the same in every
        # client encoding (our own literals are ASCII; only table names may not be).
        self._render_once = all(
            p.isascii() for p in (*tables.messages.parts, *tables.sessions.parts)
        )
        self.lock_thread = self._fill(_sql.LOCK_THREAD)
        self.lock_thread_on_shard = self._fill(_sql.LOCK_THREAD_ON_SHARD)
        self.save_messages = self._fill(_sql.SAVE_BATCH)
        self.save_big_batch = self._fill(_sql.SAVE_BIG_BATCH)
        self.save_messages_locked = self._fill(_sql.SAVE_BATCH_LOCKED)
        self.save_message = self._fill(_sql.SAVE_ONE)
        self.save_message_locked = self._fill(_sql.SAVE_ONE_LOCKED)
        self.get_message = self._fill(_sql.GET_MESSAGE)
        self.delete_thread_sessions = self._fill(_sql.DELETE_THREAD_SESSIONS)
        self.delete_thread_messages = self._fill(_sql.DELETE_THREAD_MESSAGES)
        self.delete_messages = self._fill(_sql.DELETE_MESSAGES)
        self.upsert_session = self._fill(_sql.UPSERT_SESSION)
        self.update_session_if = self._fill(_sql.UPDATE_SESSION_IF)
        self.archive_session = self._fill(_sql.ARCHIVE_SESSION)
        self.get_session = self._fill(_sql.GET_SESSION)
        self.list_sessions = self._fill(_sql.LIST_SESSIONS)
        self.list_live_sessions = self._fill(_sql.LIST_LIVE_SESSIONS)
        # The whole-thread listing's rows and order, only the columns of
        # ``list_stored_parts``.
        self.stored_parts = self._fill(
            _sql.PAGE,
            mfields=_sql.STORED_PARTS_FIELDS,
            where=self._where(by_session=False, limited=False),
            order=_OLDEST_FIRST,
            limit=sql.SQL(""),
        )

    def _compose(self, template: sql.SQL, **more: sql.Composable) -> sql.Composed:
        fields: dict[str, sql.Composable] = {
            "m": self.m,
            "s": self.s,
            "mfields": _sql.MESSAGE_FIELDS,
            "sfields": _sql.SESSION_FIELDS,
            "seed": sql.Literal(_sql.LOCK_SEED),
            "mark": sql.Literal(_sql.OVERFLOW_MARK),
        }
        return template.format(**(fields | more))

    def _fill(self, template: sql.SQL, **more: sql.Composable) -> Statement:
        query = self._compose(template, **more)
        return query.as_bytes(None) if self._render_once else query

    @functools.cache  # noqa: B019 - one Queries per adapter, and few shapes
    def list_messages(
        self, *, by_session: bool, before: bool, after: bool, newest_first: bool, limited: bool
    ) -> Statement:
        """The listing for one shape of arguments.

        Keyset paging on ``(created_at, message_id)``: the plain ``created_at``
        bound beside the row comparison lets the ``(thread_id, created_at)`` index
        bound the scan. With a cursor, a marker row (``missing`` set) reports a
        cursor id that is not in the thread, so the caller can raise
        ``NotFoundError`` without a second query.
        """
        where: list[sql.Composable] = [self._where(by_session=by_session, limited=limited)]
        cursors = [name for name, wanted in (("before", before), ("after", after)) if wanted]
        where.extend(
            _sql.CURSOR_BOUND.format(op=_OPS[name], name=_cursor(name)) for name in cursors
        )
        order = _NEWEST_FIRST if newest_first else _OLDEST_FIRST
        page = self._compose(
            _sql.PAGE,
            where=sql.SQL(" AND ").join(where),
            order=order,
            limit=sql.SQL(" LIMIT %(limit)s" if limited else ""),
        )
        if not cursors:
            return self._fill(sql.SQL("{page}"), page=page)
        ctes = sql.SQL(", ").join(
            self._compose(_sql.CURSOR_ROW, name=_cursor(name), param=sql.Placeholder(name))
            for name in cursors
        )
        markers = sql.SQL("").join(
            _sql.CURSOR_MARKER.format(label=sql.Literal(name), name=_cursor(name))
            for name in cursors
        )
        return self._fill(_sql.PAGE_WITH_CURSORS, ctes=ctes, page=page, markers=markers)

    def _where(self, *, by_session: bool, limited: bool) -> sql.Composed:
        """The thread, then the session asked for or the archive rule."""
        where: list[sql.Composable] = [sql.SQL("m.thread_id = %(thread)s::text")]
        if by_session:
            where.append(sql.SQL("m.session_id = %(session)s::text"))
        else:
            rule = _sql.LIVE_ON_PAGE if limited else _sql.LIVE_IN_THREAD
            where.append(self._compose(rule))
        return sql.SQL(" AND ").join(where)


def _cursor(name: str) -> sql.Identifier:
    return sql.Identifier(f"cursor_{name}")
