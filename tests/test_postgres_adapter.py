"""PostgresPersistence against a real PostgreSQL 16: every operation of SPEC §3
with the seed's semantics, concurrency, atomicity and failure modes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from chat_persistence import (
    DataPart,
    FilePart,
    InvalidMessageError,
    Message,
    Session,
    StorageUnavailableError,
    StoredPartsWarning,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    UnknownPart,
)
from chat_persistence_postgres import PostgresPersistence
from chat_persistence_postgres._sql import LOCK_SEED
from fix_pg import PgSchema

US = timedelta(microseconds=1)


def text(message_id: str, body: str = "", **kwargs: object) -> Message:
    return Message(message_id, "user", [TextPart(body or message_id)], **kwargs)  # type: ignore[arg-type]


def ids(messages: list[Message]) -> list[str]:
    return [m.id for m in messages]


async def test_save_returns_what_list_reads(pg_adapter: PostgresPersistence) -> None:
    batch = [
        Message("m1", "user", [TextPart("hi", extra={"providerMetadata": {"x": 1}})]),
        Message(
            "m2",
            "assistant",
            [
                ToolCallPart("c1", "search", {"q": "pg", "n": [1, 2.5, None, True]}),
                ToolResultPart("c1", "search", {"hits": []}, is_error=False),
                FilePart("image/png", data="aGk=", filename="a.png"),
                DataPart({"k": "v"}, name="d"),
                UnknownPart({"type": "source-url", "url": "https://x", "extra": [1]}),
            ],
            session_id="s1",
        ),
    ]
    saved = await pg_adapter.save_messages("t", batch)
    listed = await pg_adapter.list_messages("t")
    assert listed == saved
    assert [m.parts for m in listed] == [m.parts for m in batch]
    assert all(m.created_at is not None and m.created_at.tzinfo is UTC for m in listed)
    assert saved[0].created_at is not None
    assert saved[1].created_at == saved[0].created_at + US
    assert await pg_adapter.get_message("t", "m2") == saved[1]
    assert await pg_adapter.get_message("t", "nope") is None
    assert await pg_adapter.get_message("other", "m1") is None


async def test_assigned_times_follow_everything_already_in_the_thread(
    pg_adapter: PostgresPersistence, pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    future = datetime.now(UTC) + timedelta(days=3)
    # Another program (the TypeScript runtime, say) wrote a row with an explicit future time.
    with pg_schema.server.connect() as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (thread_id, message_id, role, created_at, parts_json)"
                " VALUES ('t', 'theirs', 'user', %s, '[]')"
            ).format(pg_schema.qualified("chat_messages")),
            [future],
        )
    saved = await pg_adapter.save_messages("t", [text("a"), text("b"), text("c")])
    times = [m.created_at for m in saved]
    assert times == [future + US, future + 2 * US, future + 3 * US]
    again = await pg_adapter.save_messages("t", [text("d")])
    assert again[0].created_at == future + 4 * US
    assert ids(await pg_adapter.list_messages("t")) == ["theirs", "a", "b", "c", "d"]


async def test_explicit_times_in_a_batch_do_not_shift_assigned_ones(
    pg_adapter: PostgresPersistence,
) -> None:
    past = datetime(2020, 1, 1, tzinfo=UTC)
    saved = await pg_adapter.save_messages(
        "t", [text("a"), text("old", created_at=past), text("b")]
    )
    assert saved[1].created_at == past
    assert saved[0].created_at is not None
    assert saved[2].created_at == saved[0].created_at + US
    assert ids(await pg_adapter.list_messages("t")) == ["old", "a", "b"]


async def test_resave_updates_content_and_keeps_position(pg_adapter: PostgresPersistence) -> None:
    soon = datetime.now(UTC) + timedelta(days=1)
    first = await pg_adapter.save_messages(
        "t", [text(n, created_at=soon + i * US) for i, n in enumerate("abc")]
    )
    resaved = await pg_adapter.save_messages(
        "t",
        [
            Message(
                "a",
                "assistant",
                [TextPart("edited")],
                session_id="s9",
                created_at=soon + timedelta(days=9),
            ),
            text("d"),
        ],
    )
    assert resaved[0].created_at == first[0].created_at
    assert resaved[0].role == "assistant"
    assert resaved[0].session_id == "s9"
    listed = await pg_adapter.list_messages("t")
    assert ids(listed) == ["a", "b", "c", "d"]
    assert listed[0] == resaved[0]
    # c was the newest; the re-saved a takes no new time, so d follows c directly.
    assert first[2].created_at is not None
    assert listed[3].created_at == first[2].created_at + US


async def test_equal_times_order_by_message_id_and_page_exactly_once(
    pg_adapter: PostgresPersistence,
) -> None:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    await pg_adapter.save_messages("t", [text(i, created_at=when) for i in "dbeac"])
    assert ids(await pg_adapter.list_messages("t")) == list("abcde")
    seen: list[str] = []
    page = await pg_adapter.list_messages("t", limit=2)
    while page:
        seen[:0] = ids(page)
        page = await pg_adapter.list_messages("t", limit=2, before=page[0].id)
    assert seen == list("abcde")
    forward: list[str] = []
    page = await pg_adapter.list_messages("t", limit=2, after="a")
    while page:
        forward += ids(page)
        page = await pg_adapter.list_messages("t", limit=2, after=page[-1].id)
    assert forward == list("bcde")


async def test_archive_session(pg_adapter: PostgresPersistence) -> None:
    created = await pg_adapter.archive_session("fresh", thread_id="t")
    assert created.sdk_version == pg_adapter.sdk_version
    assert created.sdk_version.startswith("chat-persistence/")
    assert created.created_at == created.updated_at == created.archived_at is not None
    assert created.state is None
    assert created.metadata is None
    again = await pg_adapter.archive_session("fresh", thread_id="t")
    assert again == created  # keeps its first archived_at, unchanged
    live = await pg_adapter.save_session(Session("live", "t", "v1", state={"a": 1}))
    archived = await pg_adapter.archive_session("live", thread_id="another-thread")
    assert archived.thread_id == "t"  # an existing row keeps its thread
    assert archived.state == {"a": 1}
    assert archived.sdk_version == "v1"
    assert archived.archived_at is not None
    assert archived.updated_at is not None
    assert live.updated_at is not None
    assert archived.updated_at > live.updated_at


async def test_failing_batch_writes_nothing(
    pg_adapter: PostgresPersistence, pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    # Host tables may carry constraints of their own; one row breaking one fails all.
    with pg_schema.server.connect() as conn:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CHECK (role <> 'forbidden')").format(
                pg_schema.qualified("chat_messages")
            )
        )
    await pg_adapter.save_messages("t", [text("a")])
    bad = Message("c", "forbidden", [TextPart("x")])
    with pytest.raises(psycopg.errors.CheckViolation):
        await pg_adapter.save_messages(
            "t", [Message("a", "assistant", [TextPart("new")]), text("b"), bad]
        )
    listed = await pg_adapter.list_messages("t")
    assert ids(listed) == ["a"]
    assert listed[0].role == "user"
    assert ids(await pg_adapter.save_messages("t", [text("b")])) == ["b"]  # connection reusable


async def test_no_timestamp_left_is_an_invalid_message(pg_adapter: PostgresPersistence) -> None:
    last = datetime.max.replace(tzinfo=UTC)
    await pg_adapter.save_messages("t", [text("end", created_at=last)])
    with pytest.raises(InvalidMessageError) as err:
        await pg_adapter.save_messages("t", [text("a", created_at=last - US), text("after")])
    assert err.value.message_id == "after"
    with pytest.raises(InvalidMessageError) as err:
        await pg_adapter.save_messages("t", [text("alone")])  # the one-message statement
    assert err.value.message_id == "alone"
    assert ids(await pg_adapter.list_messages("t")) == ["end"]
    # A re-save keeps its stored time, so it needs none assigned, alone or in a batch.
    assert [m.created_at for m in await pg_adapter.save_messages("t", [text("end")])] == [last]
    both = await pg_adapter.save_messages("t", [text("end"), text("x", created_at=last - US)])
    assert [m.created_at for m in both] == [last, last - US]


@pytest.mark.parametrize("size", [1, 5])
async def test_concurrent_writers_to_one_thread_never_interleave(
    pg_adapter: PostgresPersistence, size: int
) -> None:
    writers = 8

    async def write(w: int) -> list[Message]:
        return await pg_adapter.save_messages("t", [text(f"w{w}-{i}") for i in range(size)])

    results = await asyncio.gather(*(write(w) for w in range(writers)))
    listed = await pg_adapter.list_messages("t")
    assert len(listed) == writers * size
    times = [m.created_at for m in listed]
    assert len(set(times)) == len(times)
    positions = {m.id: i for i, m in enumerate(listed)}
    for batch in results:
        where = [positions[m.id] for m in batch]
        assert where == list(range(where[0], where[0] + size)), "a batch was interleaved"
        assert [m.created_at for m in batch] == [listed[i].created_at for i in where]


async def test_writers_to_other_threads_do_not_wait(
    pg_adapter: PostgresPersistence, pg_schema: PgSchema
) -> None:
    holder = await pg_schema.server.aconnect()
    try:
        # Hold thread "busy"'s lock in an open transaction, as a slow writer would.
        await holder.set_autocommit(False)
        await holder.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, %s))", ["busy", LOCK_SEED]
        )
        blocked = asyncio.create_task(pg_adapter.save_messages("busy", [text("b")]))
        free = await asyncio.wait_for(pg_adapter.save_messages("free", [text("f")]), timeout=10)
        assert ids(free) == ["f"]
        # The blocked writer is waiting for the lock on the server, not done.
        waiting = 0
        for _ in range(500):
            cur = await holder.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
            row = await cur.fetchone()
            waiting = row[0] if row else 0
            if waiting:
                break
            await asyncio.sleep(0.01)
        assert waiting == 1
        assert not blocked.done()
        await holder.commit()
        assert ids(await asyncio.wait_for(blocked, timeout=10)) == ["b"]
    finally:
        await holder.close()


async def test_unreadable_rows_still_read(
    pg_adapter: PostgresPersistence, pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    with pg_schema.server.connect() as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (thread_id, message_id, role, parts_json) VALUES"
                " ('t', 'obj', 'user', '{{\"not\": \"an array\"}}'),"
                " ('t', 'odd', 'user',"
                ' \'[1, {{"type": 5}}, {{"type": "text", "text": "ok"}}]\')'
            ).format(pg_schema.qualified("chat_messages"))
        )
    with pytest.warns(StoredPartsWarning):
        listed = await pg_adapter.list_messages("t")
    by_id = {m.id: m for m in listed}
    assert by_id["obj"].parts == (UnknownPart({"not": "an array"}),)
    assert by_id["odd"].parts == (UnknownPart(1), UnknownPart({"type": 5}), TextPart("ok"))


async def test_unreachable_server_is_storage_unavailable(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    nowhere = tmp_path_factory.mktemp("no-server")
    adapter = PostgresPersistence(
        conninfo=f"postgresql://postgres@/postgres?host={nowhere}&connect_timeout=2",
        pool_timeout=1,
    )
    with pytest.raises(StorageUnavailableError) as err:
        await adapter.open()
    assert isinstance(err.value.__cause__, psycopg.OperationalError)
    assert err.value.backend == "postgres"
    assert not adapter.is_open


async def test_host_pool_is_borrowed_never_opened_or_closed(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    pool: AsyncConnectionPool[psycopg.AsyncConnection[tuple[object, ...]]] = AsyncConnectionPool(
        pg_schema.dsn, min_size=1, max_size=2, open=False
    )
    adapter = PostgresPersistence(pool=pool, tables=pg_tables)
    await pool.open(wait=True)
    try:
        async with adapter:
            await adapter.save_messages("t", [text("a")])
        assert not pool.closed
        async with pool.connection() as conn:
            assert conn.autocommit is False  # given back as it was lent
            cur = await conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(pg_schema.qualified("chat_messages"))
            )
            assert await cur.fetchone() == (1,)
    finally:
        await pool.close()
    async with adapter:
        with pytest.raises(StorageUnavailableError):
            await adapter.list_messages("t")


async def test_a_failed_operation_gives_the_host_connection_back_as_lent(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    with pg_schema.server.connect() as conn:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CHECK (role <> 'forbidden')").format(
                pg_schema.qualified("chat_messages")
            )
        )
    async with AsyncConnectionPool(pg_schema.dsn, min_size=1, max_size=1, open=False) as pool:
        async with PostgresPersistence(pool=pool, tables=pg_tables) as adapter:
            with pytest.raises(psycopg.errors.CheckViolation):
                await adapter.save_messages("t", [Message("m", "forbidden", [TextPart("x")])])
        async with pool.connection() as conn:
            assert conn.autocommit is False
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
