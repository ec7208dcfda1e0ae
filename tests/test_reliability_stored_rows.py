"""Rows that do not decode never brick a thread: rows another program wrote, whose
``parts_json`` is not an array of parts (or holds what Python cannot decode),
whose role or session id breaks a rule, come back as messages (an ``UnknownPart``
for each bad element), a warning names thread and message, and the rest of the
thread reads normally. On PostgreSQL 16 and, through its store, the memory backend."""

from __future__ import annotations

import logging
import time
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg import sql

from chat_persistence import (
    DataPart,
    InvalidMessageError,
    Message,
    Session,
    StoredParts,
    StoredPartsWarning,
    TextPart,
    UnknownPart,
    structure_stored_parts,
)
from chat_persistence_memory import MemoryPersistence
from chat_persistence_memory._store import NewMessage
from chat_persistence_postgres import PostgresPersistence
from fix_pg import PgSchema

DEPTH = 3000
"""Deeper than Python's JSON decoder goes; jsonb takes it."""

# message id, role, session id, parts_json as SQL text
FOREIGN_ROWS: list[tuple[str, str, str | None, str]] = [
    ("ok-1", "user", None, '[{"type": "text", "text": "hello"}]'),
    ("obj", "user", None, '{"not": "an array"}'),
    ("str", "user", None, '"just text"'),
    ("num", "user", None, "42"),
    ("null", "user", None, "null"),
    (
        "mixed",
        "assistant",
        None,
        '[1, "x", null, true, [1, 2], {"no": "type"}, {"type": 5},'
        ' {"type": "text", "text": "ok"}, {"type": "tool-call", "toolCallId": 1}]',
    ),
    ("deep", "user", None, "[" * DEPTH + "]" * DEPTH),
    ("huge", "user", None, '[{"type": "data", "data": 1e5000}, {"type": "text", "text": "fine"}]'),
    ("no-role", "", None, '[{"type": "text", "text": "who"}]'),
    ("no-session", "user", "", '[{"type": "text", "text": "where"}]'),
    ("ok-2", "assistant", None, '[{"type": "text", "text": "bye"}]'),
]
BAD_PARTS = {"obj", "str", "num", "null", "mixed", "deep"}


def check_parts(by_id: dict[str, Message]) -> None:
    assert by_id["ok-1"].parts == (TextPart("hello"),)
    assert by_id["ok-2"].parts == (TextPart("bye"),)
    assert by_id["obj"].parts == (UnknownPart({"not": "an array"}),)
    assert by_id["str"].parts == (UnknownPart("just text"),)
    assert by_id["num"].parts == (UnknownPart(42),)
    assert by_id["null"].parts == (UnknownPart(None),)
    assert by_id["mixed"].parts == (
        UnknownPart(1),
        UnknownPart("x"),
        UnknownPart(None),
        UnknownPart(True),
        UnknownPart([1, 2]),
        UnknownPart({"no": "type"}),
        UnknownPart({"type": 5}),
        TextPart("ok"),
        UnknownPart({"type": "tool-call", "toolCallId": 1}),
    )
    (deep,) = by_id["deep"].parts
    assert isinstance(deep, UnknownPart)
    assert deep.raw == "[" * DEPTH + "]" * DEPTH  # kept as its JSON text
    # A number longer than Python reads from text comes back exact, as a Decimal.
    huge, fine = by_id["huge"].parts
    assert isinstance(huge, DataPart)
    assert str(huge.data) == "1" + "0" * 5000
    assert fine == TextPart("fine")


def assert_stored_parts_read_as_listed(
    stored: list[StoredParts], listed: list[Message], warned: set[str]
) -> None:
    """``list_stored_parts`` gives the listing's rows, whose parts decode (with the
    listing's warnings, for ``warned``) to the listed messages' parts."""
    assert [row[:2] for row in stored] == [(m.id, m.role) for m in listed]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        parts = [structure_stored_parts(p, thread_id="t", message_id=i) for i, _, p in stored]
    assert parts == [m.parts for m in listed]
    assert warned_messages(record) == warned


def warned_messages(record: list[warnings.WarningMessage]) -> set[str]:
    found: set[str] = set()
    for warning in record:
        assert issubclass(warning.category, StoredPartsWarning)
        text = str(warning.message)
        assert text.startswith("thread 't', message '")
        found.add(text.split("message '", 1)[1].split("'", 1)[0])
    return found


async def test_foreign_rows_never_brick_a_thread_postgres(
    pg_adapter: PostgresPersistence, pg_schema: PgSchema, tally: Counter[str]
) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with pg_schema.server.connect() as conn:
        for i, (message_id, role, session_id, parts) in enumerate(FOREIGN_ROWS):
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (thread_id, message_id, role, session_id, created_at,"
                    " parts_json) VALUES ('t', %s, %s, %s, %s, %s::jsonb)"
                ).format(pg_schema.qualified("chat_messages")),
                [message_id, role, session_id, start + timedelta(seconds=i), parts],
            )
    order = [row[0] for row in FOREIGN_ROWS]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        listed = await pg_adapter.list_messages("t")
    assert [m.id for m in listed] == order
    assert warned_messages(record) == BAD_PARTS
    by_id = {m.id: m for m in listed}
    check_parts(by_id)
    assert by_id["no-role"].role == ""
    assert by_id["no-session"].session_id == ""
    # Every way of reading still works around them, and the thread takes new messages.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoredPartsWarning)
        forwards: list[str] = [order[0]]
        for _ in range(len(order)):
            page = await pg_adapter.list_messages("t", after=forwards[-1], limit=3)
            if not page:
                break
            forwards += [m.id for m in page]
        assert forwards == order
        assert [m.id for m in await pg_adapter.list_messages("t", limit=4)] == order[-4:]
        deep = await pg_adapter.get_message("t", "deep")
        assert deep == by_id["deep"]
        stored = await pg_adapter.list_stored_parts("t")
    assert_stored_parts_read_as_listed(stored, listed, BAD_PARTS)
    assert stored[order.index("deep")][2] == "[" * DEPTH + "]" * DEPTH  # as its text
    saved = await pg_adapter.save_messages("t", [Message("new", "user", [TextPart("still")])])
    assert saved[0].created_at is not None
    assert saved[0].created_at > by_id["ok-2"].created_at  # type: ignore[operator]
    # A message read as stored cannot be saved back unchanged where it breaks a rule.
    with pytest.raises(InvalidMessageError):
        await pg_adapter.save_messages("t", [by_id["no-role"]])
    tally["foreign rows read (postgres)"] += len(FOREIGN_ROWS)


async def test_foreign_session_rows_still_read_postgres(
    pg_adapter: PostgresPersistence,
    pg_schema: PgSchema,
    caplog: pytest.LogCaptureFixture,
    tally: Counter[str],
) -> None:
    rows = [
        ("deep", "v", "[" * DEPTH + "]" * DEPTH, "null"),
        ("huge", "v", '{"n": 1e5000}', '{"ok": true}'),
        ("no-sdk", "", '{"n": 1}', "null"),
        ("fine", "v", '{"n": 2}', '{"tags": ["a"]}'),
    ]
    with pg_schema.server.connect() as conn:
        for session_id, sdk, state, metadata in rows:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (session_id, thread_id, sdk_version, state_json,"
                    " metadata_json) VALUES (%s, 't', %s, %s::jsonb, %s::jsonb)"
                ).format(pg_schema.qualified("chat_sessions")),
                [session_id, sdk, state, metadata],
            )
    with caplog.at_level(logging.WARNING, logger="chat_persistence.postgres"):
        sessions = await pg_adapter.list_sessions("t")
    assert sorted(s.id for s in sessions) == ["deep", "fine", "huge", "no-sdk"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    for session_id in ("huge", "no-sdk"):
        assert f"session '{session_id}'" in logged
    by_id = {s.id: s for s in sessions}
    assert by_id["deep"].state == "[" * DEPTH + "]" * DEPTH
    huge: Any = by_id["huge"].state
    assert str(huge["n"]) == "1" + "0" * 5000
    assert by_id["no-sdk"].sdk_version == ""
    assert by_id["fine"].state == {"n": 2}
    assert await pg_adapter.get_session("huge") == by_id["huge"]
    # Saving over a bad row repairs it.
    repaired = await pg_adapter.save_session(Session("huge", "t", "v", state={"n": 1}))
    assert repaired.state == {"n": 1}
    tally["foreign rows read (postgres)"] += len(rows)


async def test_rows_that_do_not_decode_never_brick_a_thread_memory(tally: Counter[str]) -> None:
    async with MemoryPersistence() as adapter:
        await adapter.save_messages("t", [Message("ok-1", "user", [TextPart("hello")])])
        # What a store written by other means could hold: parts that are not an array.
        now = time.time_ns() // 1000
        adapter._store.save_messages(
            "t",
            [
                NewMessage("obj", "user", '{"not": "an array"}', None, None),
                NewMessage("mixed", "user", '[1, {"type": "text", "text": "ok"}]', None, None),
            ],
            now,
        )
        await adapter.save_messages("t", [Message("ok-2", "user", [TextPart("bye")])])
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            listed = await adapter.list_messages("t")
        assert [m.id for m in listed] == ["ok-1", "obj", "mixed", "ok-2"]
        assert warned_messages(record) == {"obj", "mixed"}
        assert listed[1].parts == (UnknownPart({"not": "an array"}),)
        assert listed[2].parts == (UnknownPart(1), TextPart("ok"))
        assert listed[0].parts == (TextPart("hello"),)
        assert listed[3].parts == (TextPart("bye"),)
        stored = await adapter.list_stored_parts("t")
        assert_stored_parts_read_as_listed(stored, listed, {"obj", "mixed"})
    tally["foreign rows read (memory)"] += 2
