"""Runs one peer library's side of the benchmark, inside that peer's own virtual
environment (none of our packages are installed there).

Started as ``python worker.py PEER``; reads one JSON command per line on stdin and
answers one JSON line on stdout:

- ``{"op": "setup", "dsn": ..., "sizes": {...}}`` -> ``{"ok": true, "name": ...,
  "supports": {key: how}, "version": ..., "setup_seconds": ...}``
- ``{"op": "run", "key": ..., "inner": n}`` -> ``{"seconds": s}`` (only the timed section)
- ``{"op": "quit"}``

Errors answer ``{"error": "..."}``. Logs go to stderr.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from workload import batches, make_messages


def _sqlalchemy_url(dsn: str, driver: str) -> str:
    """The libpq URI as a SQLAlchemy URL for ``driver`` (a socket folder stays ``?host=``)."""
    parts = urlsplit(dsn)
    return f"postgresql+{driver}://{parts.netloc.replace(':@', '@')}{parts.path}" + (
        f"?{parts.query}" if parts.query else ""
    )


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return parts._replace(path=f"/{database}").geturl()


class Peer:
    name = ""
    distribution = ""
    supports: ClassVar[dict[str, str]] = {}

    def __init__(self, dsn: str, sizes: dict[str, int]) -> None:
        self.dsn = dsn
        self.sizes = sizes
        self.wire = {
            "w1": make_messages(sizes["thread"], prefix="w1", sessions=["w1-s0"]),
            "w2": make_messages(sizes["thread"], prefix="w2", sessions=["w2-s0", "w2-s1"]),
            "w4": make_messages(sizes["w4_per_thread"], prefix="w4"),
        }

    async def setup(self) -> None: ...

    async def run(self, key: str, inner: int) -> float:
        raise NotImplementedError

    async def close(self) -> None: ...


# ---------------------------------------------------------------- langchain-postgres


class LangChain(Peer):
    name = "langchain-postgres"
    distribution = "langchain-postgres"
    supports: ClassVar[dict[str, str]] = {
        "w1_batch": "aadd_messages(batch)",
        "w1_single": "aadd_messages([message])",
        "w2_all": "aget_messages()",
        "w4_small": "aget_messages()",
        "w4_big": "aget_messages()",
    }

    def native(self, wire: list[dict[str, Any]]) -> list[Any]:
        from langchain_core.messages import AIMessage, HumanMessage

        out: list[Any] = []
        for m in wire:
            text = [{"type": "text", "text": p["text"]} for p in m["parts"] if p["type"] == "text"]
            calls = [
                {"name": p["toolName"], "args": p["input"], "id": p["toolCallId"]}
                for p in m["parts"]
                if p["type"] == "tool-call"
            ]
            if m["role"] == "user":
                out.append(HumanMessage(content=text, id=m["id"]))
            else:
                out.append(AIMessage(content=text, tool_calls=calls, id=m["id"]))
        return out

    async def setup(self) -> None:
        import psycopg
        from langchain_postgres import PostgresChatMessageHistory

        self.History = PostgresChatMessageHistory
        self.conn = await psycopg.AsyncConnection.connect(self.dsn)
        self.admin = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        for t in ("lc_w1", "lc_w2", "lc_w4_tpl", "lc_w4_small", "lc_w4_big"):
            await self.admin.execute(f"drop table if exists {t}")
            await PostgresChatMessageHistory.acreate_tables(self.conn, t)
        self.msgs = {k: self.native(v) for k, v in self.wire.items()}
        self.w2 = str(uuid.uuid5(uuid.NAMESPACE_OID, "w2"))
        await self.History("lc_w2", self.w2, async_connection=self.conn).aadd_messages(
            self.msgs["w2"]
        )
        tpl = str(uuid.uuid5(uuid.NAMESPACE_OID, "w4"))
        await self.History("lc_w4_tpl", tpl, async_connection=self.conn).aadd_messages(
            self.msgs["w4"]
        )
        ids = [
            r[0]
            for r in await (
                await self.admin.execute("select id from lc_w4_tpl order by id")
            ).fetchall()
        ]
        for table, threads in (
            ("lc_w4_small", self.sizes["w4_small_threads"]),
            ("lc_w4_big", self.sizes["w4_threads"]),
        ):
            for row_id in ids:  # position by position: threads interleave on the heap
                await self.admin.execute(
                    f"insert into {table} (session_id, message, created_at) "
                    "select md5(t::text)::uuid, message, created_at "
                    "from lc_w4_tpl, generate_series(0, %s - 1) t where id = %s",
                    (threads, row_id),
                )
            await self.admin.execute(f"vacuum analyze {table}")
        self.w4_session = str(
            (await (await self.admin.execute("select md5('5')::uuid")).fetchone())[0]  # type: ignore[index]
        )

    async def run(self, key: str, inner: int) -> float:
        size = self.sizes["batch"]
        if key in ("w1_batch", "w1_single"):
            await self.admin.execute("truncate lc_w1")
            hist = self.History("lc_w1", str(uuid.uuid4()), async_connection=self.conn)
            msgs = self.msgs["w1"]
            start = time.perf_counter()
            if key == "w1_batch":
                for batch in batches(msgs, size):
                    await hist.aadd_messages(batch)
            else:
                for m in msgs[: self.sizes["singles"]]:
                    await hist.aadd_messages([m])
            return time.perf_counter() - start
        if key == "w2_all":
            hist = self.History("lc_w2", self.w2, async_connection=self.conn)
            start = time.perf_counter()
            for _ in range(inner):
                got = await hist.aget_messages()
            elapsed = time.perf_counter() - start
            assert len(got) == self.sizes["thread"]
            return elapsed
        if key in ("w4_small", "w4_big"):
            hist = self.History(f"lc_{key}", self.w4_session, async_connection=self.conn)
            start = time.perf_counter()
            for _ in range(inner):
                got = await hist.aget_messages()
            elapsed = time.perf_counter() - start
            assert len(got) == self.sizes["w4_per_thread"], len(got)
            return elapsed
        raise KeyError(key)

    async def close(self) -> None:
        await self.conn.close()
        await self.admin.close()


# ------------------------------------------------------------- openai-agents


class OpenAIAgents(Peer):
    name = "openai-agents SQLAlchemySession"
    distribution = "openai-agents"
    supports: ClassVar[dict[str, str]] = {
        "w1_batch": "add_items(batch); a message with a tool call is 2 items",
        "w1_single": "add_items(items of 1 message)",
        "w2_all": "get_items()",
        "w2_newest": "get_items(limit=50): 50 items",
        "w4_small": "get_items()",
        "w4_big": "get_items()",
    }

    def native(self, wire: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Each message as the Responses-API items the Agents SDK stores for it."""
        out: list[list[dict[str, Any]]] = []
        for m in wire:
            texts = [p["text"] for p in m["parts"] if p["type"] == "text"]
            if m["role"] == "user":
                items: list[dict[str, Any]] = [
                    {"role": "user", "content": [{"type": "input_text", "text": t} for t in texts]}
                ]
            else:
                items = [
                    {
                        "type": "message",
                        "id": f"msg_{m['id']}",
                        "role": "assistant",
                        "status": "completed",
                        "content": [
                            {"type": "output_text", "text": t, "annotations": []} for t in texts
                        ],
                    }
                ]
            for p in m["parts"]:
                if p["type"] == "tool-call":
                    items.append(
                        {
                            "type": "function_call",
                            "id": f"fc_{p['toolCallId']}",
                            "call_id": p["toolCallId"],
                            "name": p["toolName"],
                            "arguments": json.dumps(p["input"]),
                        }
                    )
            out.append(items)
        return out

    def session(self, prefix: str, session_id: str) -> Any:
        return self.Session(
            session_id,
            engine=self.engine,
            create_tables=True,
            sessions_table=f"oa_{prefix}_sessions",
            messages_table=f"oa_{prefix}_messages",
        )

    async def setup(self) -> None:
        import psycopg
        from agents.extensions.memory import SQLAlchemySession
        from sqlalchemy.ext.asyncio import create_async_engine

        self.Session = SQLAlchemySession
        self.engine = create_async_engine(_sqlalchemy_url(self.dsn, "asyncpg"))
        self.admin = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        for prefix in ("w1", "w2", "w4_tpl", "w4_small", "w4_big"):
            await self.admin.execute(
                f"drop table if exists oa_{prefix}_messages, oa_{prefix}_sessions cascade"
            )
        self.items = {k: self.native(v) for k, v in self.wire.items()}
        flat = [i for m in self.items["w2"] for i in m]
        self.w2_items = len(flat)
        await self.session("w2", "w2").add_items(flat)
        await self.session("w1", "probe").get_items()  # creates the tables
        await self.session("w4_small", "probe").get_items()
        await self.session("w4_big", "probe").get_items()
        tpl = [i for m in self.items["w4"] for i in m]
        self.w4_items = len(tpl)
        await self.session("w4_tpl", "tpl").add_items(tpl)
        ids = [
            r[0]
            for r in await (
                await self.admin.execute("select id from oa_w4_tpl_messages order by id")
            ).fetchall()
        ]
        for prefix, threads in (
            ("w4_small", self.sizes["w4_small_threads"]),
            ("w4_big", self.sizes["w4_threads"]),
        ):
            await self.admin.execute(
                f"insert into oa_{prefix}_sessions (session_id) "
                "select 't' || lpad(t::text, 6, '0') from generate_series(0, %s - 1) t",
                (threads,),
            )
            for row_id in ids:
                await self.admin.execute(
                    f"insert into oa_{prefix}_messages (session_id, message_data, created_at) "
                    "select 't' || lpad(t::text, 6, '0'), message_data, created_at "
                    "from oa_w4_tpl_messages, generate_series(0, %s - 1) t where id = %s",
                    (threads, row_id),
                )
            await self.admin.execute(f"vacuum analyze oa_{prefix}_messages, oa_{prefix}_sessions")

    async def run(self, key: str, inner: int) -> float:
        size = self.sizes["batch"]
        if key in ("w1_batch", "w1_single"):
            await self.admin.execute("truncate oa_w1_messages, oa_w1_sessions cascade")
            sess = self.session("w1", str(uuid.uuid4()))
            msgs = self.items["w1"]
            start = time.perf_counter()
            if key == "w1_batch":
                for batch in batches(msgs, size):
                    await sess.add_items([i for m in batch for i in m])
            else:
                for m in msgs[: self.sizes["singles"]]:
                    await sess.add_items(m)
            return time.perf_counter() - start
        if key in ("w2_all", "w2_newest"):
            sess = self.session("w2", "w2")
            limit = self.sizes["newest"] if key == "w2_newest" else None
            start = time.perf_counter()
            for _ in range(inner):
                got = await sess.get_items(limit=limit)
            elapsed = time.perf_counter() - start
            assert len(got) == (limit or self.w2_items)
            return elapsed
        if key in ("w4_small", "w4_big"):
            sess = self.session(key, "t000005")
            start = time.perf_counter()
            for _ in range(inner):
                got = await sess.get_items()
            elapsed = time.perf_counter() - start
            assert len(got) == self.w4_items, len(got)
            return elapsed
        raise KeyError(key)

    async def close(self) -> None:
        await self.engine.dispose()
        await self.admin.close()


# ------------------------------------------------------------------ google-adk


class GoogleADK(Peer):
    name = "google-adk DatabaseSessionService"
    distribution = "google-adk"
    supports: ClassVar[dict[str, str]] = {
        "w1_batch": "no batch API: one append_event per message",
        "w1_single": "append_event",
        "w2_all": "get_session()",
        "w2_newest": "get_session(num_recent_events=50)",
        "w4_small": "get_session()",
        "w4_big": "get_session()",
    }

    def native(self, wire: list[dict[str, Any]]) -> list[Any]:
        from google.adk.events import Event
        from google.genai import types

        out: list[Any] = []
        for i, m in enumerate(wire):
            parts: list[Any] = []
            for p in m["parts"]:
                if p["type"] == "text":
                    parts.append(types.Part(text=p["text"]))
                else:
                    parts.append(
                        types.Part(
                            function_call=types.FunctionCall(
                                name=p["toolName"], args=p["input"], id=p["toolCallId"]
                            )
                        )
                    )
            role = "user" if m["role"] == "user" else "model"
            out.append(
                Event(
                    author="user" if role == "user" else "agent",
                    invocation_id="bench",
                    content=types.Content(role=role, parts=parts),
                    timestamp=1_700_000_000 + i / 1000,
                )
            )
        return out

    async def setup(self) -> None:
        import psycopg
        from google.adk.sessions import DatabaseSessionService
        from google.adk.sessions.base_session_service import GetSessionConfig

        self.GetSessionConfig = GetSessionConfig
        self.admin = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        # ADK's table names are fixed: one database per data set.
        self.services: dict[str, Any] = {}
        for db in ("adk_main", "adk_w4_small", "adk_w4_big"):
            await self.admin.execute(f"drop database if exists {db}")
            await self.admin.execute(f"create database {db}")
            self.services[db] = DatabaseSessionService(
                db_url=_sqlalchemy_url(_with_database(self.dsn, db), "asyncpg")
            )
        self.svc = self.services["adk_main"]
        self.events = {k: self.native(v) for k, v in self.wire.items()}
        await self.svc.create_session(app_name="bench", user_id="u", session_id="w2")
        session = await self.svc.get_session(app_name="bench", user_id="u", session_id="w2")
        for e in self.events["w2"]:
            await self.svc.append_event(session, e.model_copy(deep=True))
        for db, threads in (
            ("adk_w4_small", self.sizes["w4_small_threads"]),
            ("adk_w4_big", self.sizes["w4_threads"]),
        ):
            await self._fill_w4(db, threads)

    async def _fill_w4(self, db: str, threads: int) -> None:
        import psycopg

        svc = self.services[db]
        await svc.create_session(app_name="bench", user_id="u", session_id="tpl")
        session = await svc.get_session(app_name="bench", user_id="u", session_id="tpl")
        for e in self.events["w4"]:
            await svc.append_event(session, e.model_copy(deep=True))
        async with await psycopg.AsyncConnection.connect(
            _with_database(self.dsn, db), autocommit=True
        ) as conn:
            await self._clone(conn, "sessions", "id", "where id = 'tpl'", threads)
            ids = [
                r[0]
                for r in await (
                    await conn.execute(
                        "select id from events where session_id = 'tpl' order by timestamp, id"
                    )
                ).fetchall()
            ]
            for event_id in ids:  # position by position: threads interleave on the heap
                await self._clone(
                    conn,
                    "events",
                    "session_id",
                    "where session_id = 'tpl' and id = %s",
                    threads,
                    event_id,
                )
            await conn.execute("delete from sessions where id = 'tpl'")
            await conn.execute("vacuum analyze events, sessions")

    @staticmethod
    async def _clone(conn: Any, table: str, key: str, where: str, threads: int, *args: Any) -> None:
        """Copy the rows ``where`` selects once per thread, ``key`` set to the thread."""
        columns = [
            r[0]
            for r in await (
                await conn.execute(
                    "select column_name from information_schema.columns "
                    "where table_name = %s and column_name <> %s order by ordinal_position",
                    (table, key),
                )
            ).fetchall()
        ]
        cols = ", ".join(f'"{c}"' for c in columns)
        await conn.execute(
            f"insert into {table} ({key}, {cols}) "
            f"select 't' || lpad(t::text, 6, '0'), {cols} "
            f"from {table}, generate_series(0, %s - 1) t {where}",
            (threads, *args),
        )

    async def run(self, key: str, inner: int) -> float:
        if key in ("w1_batch", "w1_single"):
            session_id = str(uuid.uuid4())
            session = await self.svc.create_session(
                app_name="bench", user_id="u", session_id=session_id
            )
            count = self.sizes["thread"] if key == "w1_batch" else self.sizes["singles"]
            events = [e.model_copy(deep=True) for e in self.events["w1"][:count]]
            start = time.perf_counter()
            for e in events:
                await self.svc.append_event(session, e)
            elapsed = time.perf_counter() - start
            await self.svc.delete_session(app_name="bench", user_id="u", session_id=session_id)
            return elapsed
        if key in ("w2_all", "w2_newest"):
            config = (
                self.GetSessionConfig(num_recent_events=self.sizes["newest"])
                if key == "w2_newest"
                else None
            )
            start = time.perf_counter()
            for _ in range(inner):
                got = await self.svc.get_session(
                    app_name="bench", user_id="u", session_id="w2", config=config
                )
            elapsed = time.perf_counter() - start
            want = self.sizes["newest"] if config else self.sizes["thread"]
            assert got is not None
            assert len(got.events) == want, len(got.events)
            return elapsed
        if key in ("w4_small", "w4_big"):
            svc = self.services[f"adk_{key}"]
            start = time.perf_counter()
            for _ in range(inner):
                got = await svc.get_session(app_name="bench", user_id="u", session_id="t000005")
            elapsed = time.perf_counter() - start
            assert got is not None
            assert len(got.events) == self.sizes["w4_per_thread"]
            return elapsed
        raise KeyError(key)

    async def close(self) -> None:
        for svc in self.services.values():
            await svc.close()
        await self.admin.close()


PEERS: dict[str, type[Peer]] = {
    "langchain-postgres": LangChain,
    "openai-agents": OpenAIAgents,
    "google-adk": GoogleADK,
}


def _answer(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def main(peer_name: str) -> None:
    loop = asyncio.get_running_loop()
    peer: Peer | None = None
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        try:
            if cmd["op"] == "setup":
                peer = PEERS[peer_name](cmd["dsn"], cmd["sizes"])
                start = time.perf_counter()
                await peer.setup()
                _answer(
                    {
                        "ok": True,
                        "name": peer.name,
                        "supports": peer.supports,
                        "version": importlib.metadata.version(peer.distribution),
                        "setup_seconds": time.perf_counter() - start,
                    }
                )
            elif cmd["op"] == "run":
                assert peer is not None
                _answer({"seconds": await peer.run(cmd["key"], cmd.get("inner", 1))})
            elif cmd["op"] == "quit":
                break
        except Exception as err:
            traceback.print_exc(file=sys.stderr)
            _answer({"error": f"{type(err).__name__}: {err}"[:500]})
    if peer is not None:
        try:
            await peer.close()
        except Exception:
            traceback.print_exc(file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
