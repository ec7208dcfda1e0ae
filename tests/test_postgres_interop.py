"""Sharing tables with the TypeScript runtime: rows it writes read back through the
adapter, and rows the adapter writes are what it expects, column by column."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from chat_persistence import (
    Message,
    Session,
    TextPart,
    ToolCallPart,
    UnknownPart,
    unstructure_parts,
)
from chat_persistence_postgres import PostgresPersistence
from fix_pg import PgSchema

# What the TypeScript package sends through node-postgres: $n parameters, the
# MessagePart[] as JSON.stringify text (a "source-url" part is one we do not
# model), millisecond Date values, user_id null.
TS_PARTS: list[dict[str, Any]] = [
    {"type": "text", "text": "from TypeScript"},
    {"type": "source-url", "sourceId": "src-1", "url": "https://example.com", "title": "Ex"},
    {"type": "tool-call", "toolCallId": "c1", "toolName": "lookup", "input": {"q": 1}},
]
T0 = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
TS_SDK = "@psci-labs/chat-runtime@0.1.0"


def ts_write(pg_schema: PgSchema) -> None:
    m, s = pg_schema.qualified("chat_messages"), pg_schema.qualified("chat_sessions")
    with pg_schema.server.connect() as conn:
        cur = psycopg.RawCursor(conn)
        insert_message = sql.SQL(
            "INSERT INTO {} (thread_id, message_id, session_id, user_id, role, created_at,"
            " parts_json) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (thread_id, message_id) DO UPDATE SET role = excluded.role,"
            " parts_json = excluded.parts_json, session_id = excluded.session_id"
        ).format(m)
        for row in [
            ("t", "ts-1", "ts-live", None, "user", T0.isoformat(), json.dumps(TS_PARTS)),
            ("t", "ts-2", "ts-archived", None, "assistant", (T0 + 1 * MS).isoformat(), "[]"),
            ("t", "ts-3", None, None, "user", (T0 + 2 * MS).isoformat(), json.dumps(TS_PARTS[:1])),
        ]:
            cur.execute(insert_message, row)
        insert_session = sql.SQL(
            "INSERT INTO {} (session_id, thread_id, sdk_version, state_json, metadata_json,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)"
        ).format(s)
        cur.execute(insert_session, ("ts-live", "t", TS_SDK, '{"turn": 2}', None, T0.isoformat()))
        cur.execute(
            insert_session, ("ts-archived", "t", TS_SDK, None, '{"tag": "x"}', T0.isoformat())
        )
        # The seed's archiveSession(): an upsert with archived_at = now().
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (session_id, thread_id, sdk_version, archived_at)"
                " VALUES ($1, $2, $3, now())"
                " ON CONFLICT (session_id) DO UPDATE SET archived_at = now()"
            ).format(s),
            ("ts-archived", "t", TS_SDK),
        )


MS = timedelta(milliseconds=1)


async def test_rows_the_typescript_runtime_wrote_read_back(
    pg_adapter: PostgresPersistence, pg_schema: PgSchema
) -> None:
    ts_write(pg_schema)
    mine = await pg_adapter.save_messages("t", [Message("py-1", "user", [TextPart("from Python")])])
    listed = await pg_adapter.list_messages("t")
    assert [m.id for m in listed] == ["ts-1", "ts-3", "py-1"]  # ts-2's session is archived
    first = listed[0]
    assert first.created_at == T0
    assert first.session_id == "ts-live"
    assert first.role == "user"
    assert first.parts == (
        TextPart("from TypeScript"),
        UnknownPart(TS_PARTS[1]),
        ToolCallPart("c1", "lookup", {"q": 1}),
    )
    assert listed[2] == mine[0]
    assert [m.id for m in await pg_adapter.list_messages("t", session_id="ts-archived")] == ["ts-2"]
    live = await pg_adapter.get_session("ts-live")
    assert live == Session(
        "ts-live", "t", TS_SDK, state={"turn": 2}, metadata=None,
        created_at=T0, updated_at=T0, archived_at=None,
    )  # fmt: skip
    sessions = await pg_adapter.list_sessions("t", include_archived=True)
    assert [(x.id, x.archived_at is not None) for x in sessions] == [
        ("ts-archived", True),
        ("ts-live", False),
    ]
    # Re-saving their message through the adapter keeps the part we do not model, exactly.
    await pg_adapter.save_messages(
        "t", [Message("ts-1", "user", first.parts, session_id="ts-live")]
    )
    with pg_schema.server.connect() as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT parts_json = %s::jsonb, created_at FROM {}"
                " WHERE thread_id = 't' AND message_id = 'ts-1'"
            ).format(pg_schema.qualified("chat_messages")),
            [json.dumps(TS_PARTS)],
        ).fetchone()
    assert row == (True, T0)


async def test_rows_the_adapter_writes_are_the_seed_contract(
    pg_adapter: PostgresPersistence, pg_schema: PgSchema
) -> None:
    parts = (
        TextPart("hello"),
        ToolCallPart("c1", "search", {"q": "x", "deep": [1, {"a": None}]}),
        UnknownPart({"type": "step-start"}),
    )
    when = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    await pg_adapter.save_messages(
        "t",
        [
            Message("a", "user", parts, session_id="s1", created_at=when),
            Message("b", "assistant", [TextPart("hi")]),
        ],
    )
    await pg_adapter.save_session(
        Session("s1", "t", "py-runtime/2.0", state={"k": [1, 2]}, metadata={"m": "x"})
    )
    archived = await pg_adapter.archive_session("s2", thread_id="t")
    with pg_schema.server.connect() as conn:
        messages = conn.execute(
            sql.SQL(
                "SELECT thread_id, message_id, session_id, user_id, role, created_at, parts_json,"
                " jsonb_typeof(parts_json) FROM {} ORDER BY created_at"
            ).format(pg_schema.qualified("chat_messages"))
        ).fetchall()
        sessions = conn.execute(
            sql.SQL(
                "SELECT session_id, thread_id, sdk_version, state_json, metadata_json,"
                " created_at <= updated_at, archived_at FROM {} ORDER BY session_id"
            ).format(pg_schema.qualified("chat_sessions"))
        ).fetchall()
    assert messages[0] == (
        "t", "a", "s1", None, "user", when,
        [
            {"type": "text", "text": "hello"},
            {"type": "tool-call", "toolCallId": "c1", "toolName": "search",
             "input": {"q": "x", "deep": [1, {"a": None}]}},
            {"type": "step-start"},
        ],
        "array",
    )  # fmt: skip
    assert messages[0][6] == unstructure_parts(parts)
    assert messages[1][:5] == ("t", "b", None, None, "assistant")
    assert messages[1][6] == [{"type": "text", "text": "hi"}]
    assert sessions[0] == ("s1", "t", "py-runtime/2.0", {"k": [1, 2]}, {"m": "x"}, True, None)
    assert sessions[1][:5] == ("s2", "t", pg_adapter.sdk_version, None, None)
    assert sessions[1][6] == archived.archived_at
