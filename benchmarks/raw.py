"""The raw psycopg baselines: the least a program could do to store and read the
same rows (binary parameters and results, orjson, no objects beyond dicts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb, set_json_dumps, set_json_loads

_ONE_US = timedelta(microseconds=1)


def table(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


async def connect(dsn: str) -> psycopg.AsyncConnection[dict[str, Any]]:
    """An autocommit connection that dumps and loads JSON with orjson."""
    conn = await psycopg.AsyncConnection[dict[str, Any]].connect(
        dsn, autocommit=True, row_factory=dict_row
    )
    set_json_dumps(orjson.dumps, conn)
    set_json_loads(orjson.loads, conn)
    return conn


class RawStore:
    """The baseline statements for one pair of tables."""

    def __init__(self, conn: psycopg.AsyncConnection[dict[str, Any]], messages: str, sessions: str):
        self.conn = conn
        names = {"m": table(messages), "s": table(sessions)}
        self._insert_many = sql.SQL(
            "insert into {m} (thread_id, message_id, session_id, role, created_at, parts_json) "
            "select %s, u.* from unnest(%s::text[], %s::text[], %s::text[], "
            "%s::timestamptz[], %s::jsonb[]) as u"
        ).format(**names)
        self._insert_one = sql.SQL(
            "insert into {m} (thread_id, message_id, session_id, role, created_at, parts_json) "
            "values (%s, %s, %s, %s, %s, %s)"
        ).format(**names)
        select = (
            "select m.message_id, m.role, m.session_id, m.created_at, m.parts_json from {m} m "
            "where m.thread_id = %s and not exists (select 1 from {s} s "
            "where s.session_id = m.session_id and s.archived_at is not null) "
        )
        self.select_all = sql.SQL(select + "order by m.created_at, m.message_id").format(**names)
        self.select_newest = sql.SQL(
            select + "order by m.created_at desc, m.message_id desc limit %s"
        ).format(**names)

    async def insert_batch(self, thread_id: str, batch: list[dict[str, Any]]) -> None:
        """One ``INSERT ... SELECT FROM unnest(...)`` for the whole batch."""
        now = datetime.now(UTC)
        await self.conn.execute(
            self._insert_many,
            (
                thread_id,
                [m["id"] for m in batch],
                [m["session_id"] for m in batch],
                [m["role"] for m in batch],
                [now + i * _ONE_US for i in range(len(batch))],
                [Jsonb(m["parts"]) for m in batch],
            ),
            binary=True,
        )

    async def insert_one(self, thread_id: str, message: dict[str, Any]) -> None:
        """One autocommit single-row INSERT."""
        await self.conn.execute(
            self._insert_one,
            (
                thread_id,
                message["id"],
                message["session_id"],
                message["role"],
                datetime.now(UTC),
                Jsonb(message["parts"]),
            ),
            binary=True,
        )

    async def read_all(self, thread_id: str) -> list[dict[str, Any]]:
        """The thread, oldest first, archived sessions' messages left out, as dicts."""
        cur = await self.conn.execute(self.select_all, (thread_id,), binary=True)
        return await cur.fetchall()

    async def read_newest(self, thread_id: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` messages, oldest first, as dicts."""
        cur = await self.conn.execute(self.select_newest, (thread_id, limit), binary=True)
        rows = await cur.fetchall()
        rows.reverse()
        return rows
