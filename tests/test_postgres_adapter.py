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
    AdapterNotOpenError,
    ConflictError,
    DataPart,
    FilePart,
    InvalidArgumentError,
    InvalidMessageError,
    Message,
    NotFoundError,
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


async def test_archive_rule(pg_adapter: PostgresPersistence) -> None:
    await pg_adapter.save_session(Session("live", "t", "v1"))
    await pg_adapter.save_session(Session("gone", "t", "v1"))
    await pg_adapter.save_messages(
        "t",
        [
            text("m0"),
            text("m1", session_id="live"),
            text("m2", session_id="gone"),
            text("m3", session_id="no-row"),
            text("m4", session_id="gone"),
        ],
    )
    assert ids(await pg_adapter.list_messages("t")) == ["m0", "m1", "m2", "m3", "m4"]
    await pg_adapter.archive_session("gone", thread_id="t")
    assert ids(await pg_adapter.list_messages("t")) == ["m0", "m1", "m3"]
    assert ids(await pg_adapter.list_messages("t", limit=2)) == ["m1", "m3"]
    # The archived-session browser path: an explicit session id bypasses the filter.
    assert ids(await pg_adapter.list_messages("t", session_id="gone")) == ["m2", "m4"]
    assert ids(await pg_adapter.list_messages("t", session_id="live")) == ["m1"]
    # A hidden message still works as a cursor, at its own position.
    assert ids(await pg_adapter.list_messages("t", after="m2")) == ["m3"]
    assert ids(await pg_adapter.list_messages("t", before="m4", limit=1)) == ["m3"]


async def test_paging(pg_adapter: PostgresPersistence) -> None:
    names = [f"m{i}" for i in range(10)]
    await pg_adapter.save_messages("t", [text(n) for n in names])
    page = pg_adapter.list_messages
    assert ids(await page("t", limit=3)) == names[7:]
    assert ids(await page("t", limit=30)) == names
    assert ids(await page("t", before="m5")) == names[:5]
    assert ids(await page("t", before="m5", limit=2)) == ["m3", "m4"]
    assert ids(await page("t", after="m5")) == names[6:]
    assert ids(await page("t", after="m5", limit=2)) == ["m6", "m7"]
    assert ids(await page("t", after="m2", before="m8")) == names[3:8]
    assert ids(await page("t", after="m2", before="m8", limit=3)) == ["m3", "m4", "m5"]
    assert ids(await page("t", after="m9")) == []
    assert ids(await page("t", before="m0", limit=5)) == []
    assert await page("t", limit=0) == []
    assert await page("t", limit=0, after="m1") == []
    with pytest.raises(NotFoundError) as found:
        await page("t", before="missing")
    assert found.value.key == "missing"
    assert found.value.thread_id == "t"
    with pytest.raises(NotFoundError) as found:
        await page("t", after="m1", before="missing", limit=0)
    assert found.value.key == "missing"
    with pytest.raises(NotFoundError):
        await page("other-thread", after="m1")
    with pytest.raises(InvalidArgumentError):
        await page("t", limit=-1)
    with pytest.raises(InvalidMessageError):
        await page("t", before="")


async def test_delete_thread(pg_adapter: PostgresPersistence) -> None:
    await pg_adapter.save_messages("t", [text("a", session_id="s")])
    await pg_adapter.save_messages("keep", [text("a")])
    await pg_adapter.save_session(Session("s", "t", "v"))
    await pg_adapter.save_session(Session("k", "keep", "v"))
    await pg_adapter.delete_thread("t")
    await pg_adapter.delete_thread("never-existed")
    assert await pg_adapter.list_messages("t") == []
    assert await pg_adapter.get_session("s") is None
    assert ids(await pg_adapter.list_messages("keep")) == ["a"]
    assert await pg_adapter.get_session("k") is not None


async def test_save_session(pg_adapter: PostgresPersistence) -> None:
    made = datetime(2021, 1, 1, tzinfo=UTC)
    first = await pg_adapter.save_session(
        Session("s", "t", "v1", state={"step": 1}, metadata=[1, "x"], created_at=made)
    )
    assert first.created_at == made
    assert first.archived_at is None
    assert first.updated_at is not None
    second = await pg_adapter.save_session(
        Session("s", "t2", "v2", state=None, metadata={"m": True}, archived_at=made)
    )
    assert second.created_at == made  # kept
    assert second.updated_at is not None
    assert second.updated_at > first.updated_at
    assert second.archived_at is None  # never written by save_session
    assert (second.thread_id, second.sdk_version, second.state, second.metadata) == (
        "t2",
        "v2",
        None,
        {"m": True},
    )
    assert await pg_adapter.get_session("s") == second
    stamps: list[datetime] = []
    for _ in range(6):
        stamp = (await pg_adapter.save_session(second)).updated_at
        assert stamp is not None
        stamps.append(stamp)
    assert stamps == sorted(set(stamps)), "updated_at must strictly increase"
    archived = await pg_adapter.archive_session("s", thread_id="t2")
    resaved = await pg_adapter.save_session(Session("s", "t2", "v3"))
    assert resaved.archived_at == archived.archived_at
    with pytest.raises(InvalidArgumentError):
        await pg_adapter.save_session(
            Session("s", "t", "v"), expected_updated_at=made.replace(tzinfo=None)
        )


async def test_compare_and_set(pg_adapter: PostgresPersistence) -> None:
    stored = await pg_adapter.save_session(Session("s", "t", "v1", state={"n": 1}))
    assert stored.updated_at is not None
    won = await pg_adapter.save_session(
        Session("s", "t", "v1", state={"n": 2}), expected_updated_at=stored.updated_at
    )
    assert won.state == {"n": 2}
    assert won.updated_at is not None
    assert won.updated_at > stored.updated_at
    with pytest.raises(ConflictError) as lost:
        await pg_adapter.save_session(
            Session("s", "t", "v1", state={"n": 3}), expected_updated_at=stored.updated_at
        )
    assert lost.value.session_id == "s"
    assert lost.value.expected == stored.updated_at
    assert lost.value.actual == won.updated_at
    assert await pg_adapter.get_session("s") == won  # nothing written
    with pytest.raises(ConflictError) as missing:
        await pg_adapter.save_session(
            Session("new", "t", "v1"), expected_updated_at=stored.updated_at
        )
    assert missing.value.actual is None
    assert await pg_adapter.get_session("new") is None


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


async def test_list_sessions(pg_adapter: PostgresPersistence) -> None:
    when = datetime(2022, 1, 1, tzinfo=UTC)
    await pg_adapter.save_session(Session("b", "t", "v", created_at=when))
    await pg_adapter.save_session(Session("a", "t", "v", created_at=when))
    await pg_adapter.save_session(Session("c", "t", "v"))
    await pg_adapter.save_session(Session("x", "other", "v"))
    await pg_adapter.archive_session("b", thread_id="t")
    assert [s.id for s in await pg_adapter.list_sessions("t")] == ["a", "c"]
    assert [s.id for s in await pg_adapter.list_sessions("t", include_archived=True)] == [
        "a",
        "b",
        "c",
    ]


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


async def test_invalid_batches_are_rejected_before_writing(pg_adapter: PostgresPersistence) -> None:
    with pytest.raises(InvalidMessageError):
        await pg_adapter.save_messages("t", [text("a"), text("a")])
    with pytest.raises(InvalidMessageError):
        await pg_adapter.save_messages("", [text("a")])
    assert await pg_adapter.save_messages("t", []) == []
    assert await pg_adapter.list_messages("t") == []


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


async def test_nothing_returned_aliases_what_was_passed(pg_adapter: PostgresPersistence) -> None:
    payload: dict[str, object] = {"q": ["a"]}
    message = Message("m", "assistant", [ToolCallPart("c", "f", payload)])  # type: ignore[arg-type]
    saved = await pg_adapter.save_messages("t", [message])
    payload["q"] = "changed"
    part = saved[0].parts[0]
    assert isinstance(part, ToolCallPart)
    assert part.input == {"q": ["a"]}
    stored = await pg_adapter.get_message("t", "m")
    assert stored is not None
    assert stored.parts == (ToolCallPart("c", "f", {"q": ["a"]}),)


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


async def test_operations_need_an_open_adapter(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    adapter = PostgresPersistence(conninfo=pg_schema.dsn, tables=pg_tables)
    with pytest.raises(AdapterNotOpenError):
        await adapter.list_messages("t")
    async with adapter:
        assert await adapter.list_messages("t") == []
    with pytest.raises(AdapterNotOpenError):
        await adapter.save_messages("t", [text("a")])


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


async def test_concurrent_archives_agree(pg_adapter: PostgresPersistence) -> None:
    for round_ in range(5):
        session_id = f"s{round_}"
        await pg_adapter.save_session(Session(session_id, "t", "v"))
        results = await asyncio.gather(
            *(pg_adapter.archive_session(session_id, thread_id="t") for _ in range(4))
        )
        stored = await pg_adapter.get_session(session_id)
        assert stored is not None
        assert stored.archived_at is not None
        assert {r.archived_at for r in results} == {stored.archived_at}
        assert {r.updated_at for r in results} == {stored.updated_at}


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
