"""The raw psycopg baselines: the least a program could do to store and read the
same rows. Each operation has several raw ways (binary or text parameters and
results, arrays or one JSON document, dicts or tuples); a figure's ratio is taken
against the fastest of them in the same run, so a slow baseline cannot flatter us.
``insert_guarded`` is the exception: it keeps our save's guarantees (thread lock,
upsert, RETURNING, strictly increasing times) and so prices them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Jsonb, set_json_dumps, set_json_loads
from psycopg.types.string import ByteaBinaryLoader

_ONE_US = timedelta(microseconds=1)
_JSONB_OID = psycopg.adapters.types["jsonb"].oid


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
        self._insert_many_text = sql.SQL(
            "insert into {m} (thread_id, message_id, session_id, role, created_at, parts_json) "
            "select %s, u.i, u.s, u.r, u.c, u.p::jsonb from unnest(%s::text[], %s::text[], "
            "%s::text[], %s::timestamptz[], %s::text[]) as u(i, s, r, c, p)"
        ).format(**names)
        self._insert_many_document = sql.SQL(
            "insert into {m} (thread_id, message_id, session_id, role, created_at, parts_json) "
            "select %s, u.i, u.s, u.r, u.c, e.value from unnest(%s::text[], %s::text[], "
            "%s::text[], %s::timestamptz[]) with ordinality as u(i, s, r, c, n) "
            "join jsonb_array_elements(%s::jsonb) with ordinality as e(value, n) using (n)"
        ).format(**names)
        self._insert_many_records = sql.SQL(
            "insert into {m} (thread_id, message_id, session_id, role, created_at, parts_json) "
            "select %s, u.i, u.s, u.r, u.c, u.p from jsonb_to_recordset(%s::jsonb) "
            "as u(i text, s text, r text, c timestamptz, p jsonb)"
        ).format(**names)
        self._lock = sql.SQL("select pg_advisory_xact_lock(hashtextextended(%s, 0))")
        self._insert_guarded = sql.SQL(
            "with newest as (select max(created_at) as at from {m} where thread_id = %(t)s), "
            "start as (select greatest(clock_timestamp(), "
            "(select at from newest) + interval '1 microsecond') as at) "
            "insert into {m} as old (thread_id, message_id, session_id, role, created_at, "
            "parts_json) select %(t)s, u.i, u.s, u.r, "
            "(select at from start) + (u.n - 1) * interval '1 microsecond', e.value "
            "from unnest(%(i)s::text[], %(s)s::text[], %(r)s::text[]) "
            "with ordinality as u(i, s, r, n) "
            "join jsonb_array_elements(%(p)s::jsonb) with ordinality as e(value, n) using (n) "
            "on conflict (thread_id, message_id) do update set role = excluded.role, "
            "session_id = excluded.session_id, parts_json = excluded.parts_json "
            "returning message_id, created_at"
        ).format(**names)
        self._insert_one_text = sql.SQL(
            "insert into {m} (thread_id, message_id, session_id, role, created_at, parts_json) "
            "values (%s, %s, %s, %s, %s, %s::jsonb)"
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

    async def insert_batch_text(self, thread_id: str, batch: list[dict[str, Any]]) -> None:
        """``unnest`` of text arrays, the parts as orjson text cast to jsonb on the server."""
        now = datetime.now(UTC)
        await self.conn.execute(
            self._insert_many_text,
            (
                thread_id,
                [m["id"] for m in batch],
                [m["session_id"] for m in batch],
                [m["role"] for m in batch],
                [now + i * _ONE_US for i in range(len(batch))],
                [orjson.dumps(m["parts"]).decode() for m in batch],
            ),
            binary=True,
        )

    async def insert_batch_document(self, thread_id: str, batch: list[dict[str, Any]]) -> None:
        """One jsonb array of every message's parts, joined to the columns by ordinality."""
        now = datetime.now(UTC)
        await self.conn.execute(
            self._insert_many_document,
            (
                thread_id,
                [m["id"] for m in batch],
                [m["session_id"] for m in batch],
                [m["role"] for m in batch],
                [now + i * _ONE_US for i in range(len(batch))],
                Jsonb([m["parts"] for m in batch]),
            ),
            binary=True,
        )

    async def insert_batch_records(self, thread_id: str, batch: list[dict[str, Any]]) -> None:
        """The whole batch as one jsonb array of records (``jsonb_to_recordset``),
        written by orjson: one parameter, no arrays for psycopg to dump."""
        now = datetime.now(UTC)
        records = orjson.dumps(
            [
                {
                    "i": m["id"],
                    "s": m["session_id"],
                    "r": m["role"],
                    "c": now + i * _ONE_US,
                    "p": m["parts"],
                }
                for i, m in enumerate(batch)
            ]
        )
        await self.conn.execute(
            self._insert_many_records,
            (thread_id, Jsonb(None, dumps=lambda _: records)),
            binary=True,
        )

    async def insert_guarded(self, thread_id: str, batch: list[dict[str, Any]]) -> list[Any]:
        """Our save's guarantees written by hand: the thread's advisory lock and an
        upsert with RETURNING and strictly increasing times after the thread's newest,
        pipelined in one implicit transaction."""
        async with self.conn.pipeline():
            await self.conn.execute(self._lock, (thread_id,))
            cur = await self.conn.execute(
                self._insert_guarded,
                {
                    "t": thread_id,
                    "i": [m["id"] for m in batch],
                    "s": [m["session_id"] for m in batch],
                    "r": [m["role"] for m in batch],
                    "p": Jsonb([m["parts"] for m in batch]),
                },
                binary=True,
            )
        return await cur.fetchall()

    async def insert_one_text(self, thread_id: str, message: dict[str, Any]) -> None:
        """One autocommit single-row INSERT, the parts as orjson text cast to jsonb."""
        await self.conn.execute(
            self._insert_one_text,
            (
                thread_id,
                message["id"],
                message["session_id"],
                message["role"],
                datetime.now(UTC),
                orjson.dumps(message["parts"]).decode(),
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

    async def read_all_tuples(self, thread_id: str) -> list[tuple[Any, ...]]:
        """As ``read_all``, rows as tuples (binary results)."""
        cur = self.conn.cursor(row_factory=tuple_row, binary=True)
        await cur.execute(self.select_all, (thread_id,))
        return await cur.fetchall()

    async def read_all_text(self, thread_id: str) -> list[tuple[Any, ...]]:
        """As ``read_all``, rows as tuples from text-format results."""
        cur = self.conn.cursor(row_factory=tuple_row)
        await cur.execute(self.select_all, (thread_id,))
        return await cur.fetchall()

    def _bytes_cursor(self) -> psycopg.AsyncCursor[tuple[Any, ...]]:
        # jsonb values as their binary bytes from psycopg's C loader (the format
        # byte, then the text), decoded by orjson in one loop: no Python loader
        # call for each value.
        cur = self.conn.cursor(row_factory=tuple_row, binary=True)
        cur.adapters.register_loader(_JSONB_OID, ByteaBinaryLoader)
        return cur

    async def read_all_bytes(self, thread_id: str) -> list[tuple[Any, ...]]:
        """As ``read_all_tuples``, the jsonb column loaded as bytes and then by orjson."""
        cur = self._bytes_cursor()
        await cur.execute(self.select_all, (thread_id,))
        loads = orjson.loads
        return [(i, r, s, c, loads(p[1:])) for i, r, s, c, p in await cur.fetchall()]

    async def read_newest_bytes(self, thread_id: str, limit: int) -> list[tuple[Any, ...]]:
        """As ``read_newest_tuples``, the jsonb column loaded as in ``read_all_bytes``."""
        cur = self._bytes_cursor()
        await cur.execute(self.select_newest, (thread_id, limit))
        loads = orjson.loads
        rows = [(i, r, s, c, loads(p[1:])) for i, r, s, c, p in await cur.fetchall()]
        rows.reverse()
        return rows

    async def read_newest_tuples(self, thread_id: str, limit: int) -> list[tuple[Any, ...]]:
        """As ``read_newest``, rows as tuples (binary results)."""
        cur = self.conn.cursor(row_factory=tuple_row, binary=True)
        await cur.execute(self.select_newest, (thread_id, limit))
        rows = await cur.fetchall()
        rows.reverse()
        return rows

    async def read_newest_text(self, thread_id: str, limit: int) -> list[tuple[Any, ...]]:
        """As ``read_newest``, rows as tuples from text-format results."""
        cur = self.conn.cursor(row_factory=tuple_row)
        await cur.execute(self.select_newest, (thread_id, limit))
        rows = await cur.fetchall()
        rows.reverse()
        return rows

    async def read_newest(self, thread_id: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` messages, oldest first, as dicts."""
        cur = await self.conn.execute(self.select_newest, (thread_id, limit), binary=True)
        rows = await cur.fetchall()
        rows.reverse()
        return rows
