"""The SQLite backend's own promises: URL forms and options, files it creates or
refuses to, the stored shape of times and ties, the schema checks, the DDL, and an
event loop that keeps running during a large save."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest

from chat_persistence import (
    JSON,
    AdapterNotOpenError,
    Capability,
    ConfigError,
    DataPart,
    Message,
    SchemaMismatchError,
    Session,
    StorageUnavailableError,
    StoredPartsWarning,
    TextPart,
    UnknownPart,
    available_backends,
    create_adapter,
    unstructure_parts,
)
from chat_persistence_sqlite import SqlitePersistence, reference_ddl

WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def micros(value: datetime) -> int:
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def test_the_backend_is_found_through_its_entry_point() -> None:
    info = next(i for i in available_backends() if i.name == "sqlite")
    assert info.ok, info.error
    assert info.distribution == "chat-persistence-sqlite"
    assert info.backend is not None
    assert info.backend.schemes == ("sqlite",)


@pytest.mark.parametrize(
    ("url", "path", "tables"),
    [
        ("sqlite://", ":memory:", ("chat_messages", "chat_sessions")),
        ("sqlite:///:memory:", ":memory:", ("chat_messages", "chat_sessions")),
        ("sqlite:///chat.db", "chat.db", ("chat_messages", "chat_sessions")),
        ("sqlite:///data/my%20chat.db", "data/my chat.db", ("chat_messages", "chat_sessions")),
        (
            "sqlite:////var/lib/app/chat.db",
            "/var/lib/app/chat.db",
            ("chat_messages", "chat_sessions"),
        ),
        (
            "sqlite:///chat.db?messages_table=app_m&sessions_table=app_s&busy_timeout=2",
            "chat.db",
            ("app_m", "app_s"),
        ),
    ],
)
def test_url_forms(url: str, path: str, tables: tuple[str, str]) -> None:
    adapter = create_adapter(url)
    assert isinstance(adapter, SqlitePersistence)
    assert adapter.path == path
    assert (adapter.tables.messages, adapter.tables.sessions) == tables
    assert (Capability.DURABLE in adapter.capabilities) is (path != ":memory:")


@pytest.mark.parametrize(
    ("url", "option", "nearest"),
    [
        ("sqlite:///x.db?mesages_table=m", "mesages_table", "messages_table"),
        ("sqlite:///x.db?busy_timout=3", "busy_timout", "busy_timeout"),
        ("sqlite:///x.db?create_table=false", "create_table", "create_tables"),
    ],
)
def test_a_misspelled_option_names_the_nearest_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, option: str, nearest: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        create_adapter(url)
    assert caught.value.option == option
    assert f"did you mean {nearest!r}" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("config", "option"),
    [
        ("sqlite://host/x.db", "path"),
        ("sqlite:///x.db?synchronous=off", "synchronous"),
        ("sqlite:///x.db?busy_timeout=-1", "busy_timeout"),
        ("sqlite:///x.db?create_tables=maybe", "create_tables"),
        ("sqlite:///x.db?messages_table=a&messages_table=b", "messages_table"),
        ("sqlite:///x.db?messages_table=sqlite_master", "messages_table"),
        ("sqlite:///x.db?messages_table=", "messages_table"),
        ({"backend": "sqlite", "path": "x\x00.db"}, "path"),
        ({"backend": "sqlite", "tables": {"message": "m"}}, "tables"),
    ],
)
def test_bad_options_are_config_errors(config: str | dict[str, object], option: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_adapter(config)
    assert caught.value.option == option, caught.value


def test_a_missing_folder_is_unavailable_and_no_file_is_created(tmp_path: Path) -> None:
    adapter = SqlitePersistence(path=f"{tmp_path}/missing/chat.db")
    with pytest.raises(StorageUnavailableError, match="does not exist"):
        asyncio.run(adapter.open())
    assert not adapter.is_open
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_database_is_unavailable(sqlite_path: Path) -> None:
    sqlite_path.write_bytes(b"this is not a database file, not at all" * 100)
    with pytest.raises(StorageUnavailableError, match="sqlite") as caught:
        asyncio.run(SqlitePersistence(path=str(sqlite_path)).open())
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


async def test_the_file_is_in_wal_mode_and_times_are_integer_microseconds(
    sqlite_adapter: SqlitePersistence, sqlite_path: Path
) -> None:
    explicit = Message("a", "user", [TextPart("x")], created_at=WHEN.astimezone())
    saved = await sqlite_adapter.save_messages("t", [explicit, Message("b", "user", [])])
    with sqlite3.connect(sqlite_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = raw.execute(
            "SELECT message_id, created_at, typeof(created_at), parts_json FROM chat_messages"
            " ORDER BY rowid"
        ).fetchall()
    assert rows[0] == ("a", micros(WHEN), "integer", '[{"type":"text","text":"x"}]')
    assert rows[1][1] == micros(saved[1].created_at or WHEN)
    assert saved[0].created_at == WHEN  # every microsecond kept, returned in UTC
    assert saved[0].created_at is not None
    assert saved[0].created_at.tzinfo is UTC


async def test_times_sort_as_time_across_centuries_and_offsets(
    sqlite_adapter: SqlitePersistence,
) -> None:
    far_east = timedelta(hours=14)
    times = [
        datetime(1, 1, 2, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 1, 13, 0, tzinfo=UTC).astimezone(),
        datetime(2024, 1, 2, 2, 0, 0, 1, tzinfo=timezone(far_east)),
        datetime(2024, 1, 1, 12, 0, 0, 1, tzinfo=timezone(-far_east + timedelta(hours=4))),
        datetime.max.replace(tzinfo=UTC),
    ]
    shuffled = [times[i] for i in (3, 7, 0, 5, 1, 4, 2, 6)]
    batch = [Message(f"m{i}", "user", [], created_at=t) for i, t in enumerate(shuffled)]
    await sqlite_adapter.save_messages("t", batch)
    listed = await sqlite_adapter.list_messages("t")
    assert [m.created_at for m in listed] == sorted(times)


async def test_ties_list_in_save_order_and_a_resave_keeps_its_place(
    sqlite_adapter: SqlitePersistence,
) -> None:
    ids = ["z", "a", "m", "b"]
    for message_id in ids:
        await sqlite_adapter.save_messages("t", [Message(message_id, "user", [], created_at=WHEN)])
    await sqlite_adapter.save_messages("t", [Message("z", "assistant", [TextPart("again")])])
    listed = await sqlite_adapter.list_messages("t")
    assert [m.id for m in listed] == ids
    assert listed[0].role == "assistant"
    assert [m.id for m in await sqlite_adapter.list_messages("t", after="a", limit=1)] == ["m"]
    assert [m.id for m in await sqlite_adapter.list_messages("t", before="b", limit=2)] == [
        "a",
        "m",
    ]


async def test_tables_are_created_on_open_with_the_given_names(sqlite_path: Path) -> None:
    url = f"sqlite:///{sqlite_path}?messages_table=app%20messages&sessions_table=app%22s"
    async with create_adapter(url) as adapter:
        await adapter.save_messages("t", [Message("m", "user", [])])
        await adapter.validate_schema()
    with sqlite3.connect(sqlite_path) as raw:
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names == {"app messages", 'app"s'}


async def test_a_host_managed_file_is_left_alone_and_validated(sqlite_path: Path) -> None:
    with sqlite3.connect(sqlite_path) as raw:
        raw.execute("CREATE TABLE chat_messages (thread_id TEXT, message_id TEXT, role TEXT)")
    async with SqlitePersistence(path=str(sqlite_path), create_tables=False) as adapter:
        with pytest.raises(SchemaMismatchError) as caught:
            await adapter.validate_schema()
        with pytest.raises(SchemaMismatchError):
            await adapter.list_messages("t")
    err = caught.value
    assert err.missing_tables == ["chat_sessions"]
    assert err.missing_columns == {
        "chat_messages": ["session_id", "user_id", "created_at", "parts_json"]
    }
    assert "missing table chat_sessions" in str(err)
    with sqlite3.connect(sqlite_path) as raw:
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names == {"chat_messages"}


def test_the_ddl_command_prints_ddl_that_passes_validation(sqlite_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chat_persistence",
            "ddl",
            "--backend",
            "sqlite",
            "--messages-table",
            "m.x",
            "--sessions-table",
            "s",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == reference_ddl({"messages": "m.x", "sessions": "s"}).strip()
    with sqlite3.connect(sqlite_path) as raw:
        raw.executescript(done.stdout)

    async def probe() -> None:
        async with SqlitePersistence(
            path=str(sqlite_path), tables={"messages": "m.x", "sessions": "s"}, create_tables=False
        ) as adapter:
            await adapter.validate_schema()
            await adapter.save_messages("t", [Message("m", "user", [])])
            assert [m.id for m in await adapter.list_messages("t")] == ["m"]

    asyncio.run(probe())


async def test_rows_another_program_wrote_still_read(sqlite_adapter: SqlitePersistence) -> None:
    def insert(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO chat_messages (thread_id, message_id, role, created_at, parts_json)"
            " VALUES ('t', 'bad', 'user', 5, 'not json'), ('t', 'odd', 'user', 6, '[1]')"
        )
        conn.execute(
            "INSERT INTO chat_sessions (session_id, thread_id, sdk_version, state_json,"
            " created_at, updated_at) VALUES ('s', 't', 'v', '{oops', 7, 8)"
        )

    await sqlite_adapter._worker.run(insert, "test")
    with pytest.warns(StoredPartsWarning) as caught:
        listed = await sqlite_adapter.list_messages("t")
    assert sorted(str(w.message).split("'")[3] for w in caught) == ["bad", "odd"]
    assert [m.id for m in listed] == ["bad", "odd"]
    rows = await sqlite_adapter.list_stored_parts("t")
    assert rows == [("bad", "user", "not json"), ("odd", "user", [1])]
    session = await sqlite_adapter.get_session("s")
    assert session is not None
    assert session.state == "{oops"


async def test_json_python_cannot_read_from_text_still_reads(
    sqlite_adapter: SqlitePersistence,
) -> None:
    # Core's load_json, as Postgres reads jsonb: nesting past the recursion limit
    # comes back as its text, an integer too long for int() as a Decimal.
    deep = "[" * 100_000 + "]" * 100_000
    huge = "1" + "0" * 5000

    def insert(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO chat_messages (thread_id, message_id, role, created_at, parts_json)"
            " VALUES ('t', 'deep', 'user', 5, ?), ('t', 'huge', 'user', 6, ?)",
            (deep, f'[{{"type": "data", "data": {huge}}}]'),
        )
        conn.execute(
            "INSERT INTO chat_sessions (session_id, thread_id, sdk_version, state_json,"
            " created_at, updated_at) VALUES ('s', 't', 'v', ?, 7, 8)",
            (deep,),
        )

    await sqlite_adapter._worker.run(insert, "test")
    with pytest.warns(StoredPartsWarning):
        listed = await sqlite_adapter.list_messages("t")
    assert listed[0].parts == (UnknownPart(deep),)
    (part,) = listed[1].parts
    assert isinstance(part, DataPart)
    assert part.data == Decimal(huge)
    session = await sqlite_adapter.get_session("s")
    assert session is not None
    assert session.state == deep


async def test_stored_parts_are_the_listing_without_messages(
    sqlite_adapter: SqlitePersistence,
) -> None:
    """``list_stored_parts`` reads what ``list_messages`` reads (order, the archive
    rule) as ids, roles and parts JSON."""
    live = Session("live", "t", "v")
    gone = Session("gone", "t", "v")
    await sqlite_adapter.save_session(live)
    await sqlite_adapter.save_session(gone)
    batch = [
        Message("b", "user", [TextPart("one")], session_id="live"),
        Message("a", "assistant", [TextPart("two", extra={"k": [1]})], session_id="gone"),
        Message("c", "tool", [DataPart({"x": None}, name="n"), TextPart("three")]),
    ]
    await sqlite_adapter.save_messages("t", batch)
    await sqlite_adapter.archive_session("gone", thread_id="t")
    listed = await sqlite_adapter.list_messages("t")
    rows = await sqlite_adapter.list_stored_parts("t")
    assert [(m.id, m.role, unstructure_parts(m.parts)) for m in listed] == rows
    assert [r[0] for r in rows] == ["b", "c"]
    await sqlite_adapter.aclose()
    with pytest.raises(AdapterNotOpenError):
        await sqlite_adapter.list_stored_parts("t")


async def test_a_large_save_never_blocks_the_event_loop(sqlite_adapter: SqlitePersistence) -> None:
    """The loop keeps turning while SQLite writes: a task that only yields counts
    its turns during the save. A save run on the loop's thread would leave it none."""
    batch = [Message(f"m{i:05d}", "user", [TextPart("x" * 200)]) for i in range(20_000)]
    ticks = 0
    saving = True

    async def ticker() -> None:
        nonlocal ticks
        while saving:
            ticks += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    saved = await sqlite_adapter.save_messages("t", batch)
    during = ticks - before
    saving = False
    await counter
    assert len(saved) == len(batch)
    assert during >= 1000, f"the loop turned {during} times during the save"
    # The reads too: a whole-thread listing of the same size.
    before = ticks
    saving = True
    counter = asyncio.create_task(ticker())
    listed = await sqlite_adapter.list_messages("t")
    during = ticks - before
    saving = False
    await counter
    assert len(listed) == len(batch)
    assert during >= 1000, f"the loop turned {during} times during the listing"


def test_creating_a_memory_adapter_loads_no_sqlite() -> None:
    probe = (
        "import sys, json, chat_persistence\n"
        "chat_persistence.create_adapter('memory://')\n"
        "names = {i.name for i in chat_persistence.available_backends() if i.ok}\n"
        "assert 'sqlite' in names, names\n"
        "print(json.dumps(['sqlite3' in sys.modules,"
        " 'chat_persistence_sqlite._adapter' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == [False, False]


def test_a_relative_url_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    code = (
        "import asyncio\nfrom chat_persistence import create_adapter, Message\n"
        "async def main():\n"
        "    async with create_adapter('sqlite:///here.db') as a:\n"
        "        await a.save_messages('t', [Message('m', 'user', [])])\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, timeout=60, check=True)
    assert "here.db" in os.listdir(tmp_path)
    with sqlite3.connect(tmp_path / "here.db") as raw:
        assert raw.execute("SELECT message_id FROM chat_messages").fetchall() == [("m",)]


async def test_numbers_read_back_exactly_through_every_read_path(
    sqlite_adapter: SqlitePersistence,
) -> None:
    """The fast JSON path would turn integers beyond 64 bits into floats."""
    numbers: list[JSON] = [2**64, -(2**63) - 1, 10**30, 2**63 - 1, 1e16, 1e23, 0.1, -0.0]
    plain = Message("plain", "user", [TextPart("no digits here")])
    big = Message("big", "user", [DataPart(numbers)])
    saved = await sqlite_adapter.save_messages("t", [plain, big])
    expected = [*numbers[:-1], 0.0]
    stored_parts = (await sqlite_adapter.list_stored_parts("t"))[1][2]
    assert json.dumps(stored_parts) == json.dumps([{"type": "data", "data": expected}])
    reads = [
        saved[1],
        (await sqlite_adapter.list_messages("t"))[1],
        (await sqlite_adapter.list_messages("t", limit=1))[0],
        await sqlite_adapter.get_message("t", "big"),
        (await sqlite_adapter.delete_messages("t", ["big"]))[0],
    ]
    for read in reads:
        assert read is not None
        part = read.parts[0]
        assert isinstance(part, DataPart)
        assert json.dumps(part.data) == json.dumps(expected)
        assert [type(v) for v in cast(list[JSON], part.data)] == [type(v) for v in expected]


async def test_saves_in_flight_when_closing_still_complete(sqlite_path: Path) -> None:
    adapter = SqlitePersistence(path=str(sqlite_path))
    await adapter.open()
    saves = [
        asyncio.create_task(adapter.save_messages("t", [Message(f"m{i}", "user", [])]))
        for i in range(20)
    ]
    await asyncio.sleep(0)  # every save has handed its job to the connection's thread
    await adapter.aclose()
    assert all(len(saved) == 1 for saved in await asyncio.gather(*saves))
    async with SqlitePersistence(path=str(sqlite_path)) as reopened:
        assert len(await reopened.list_messages("t")) == 20


async def test_validation_names_a_missing_key_and_a_table_without_rowid(sqlite_path: Path) -> None:
    ddl = reference_ddl().replace(
        "  PRIMARY KEY (thread_id, message_id)\n)",
        "  PRIMARY KEY (thread_id, message_id)\n) WITHOUT ROWID",
    )
    ddl = ddl.replace("  PRIMARY KEY (session_id)\n)", "  x TEXT\n)")
    with sqlite3.connect(sqlite_path) as raw:
        raw.executescript(ddl)
    async with SqlitePersistence(path=str(sqlite_path), create_tables=False) as adapter:
        with pytest.raises(SchemaMismatchError) as caught:
            await adapter.validate_schema()
        with pytest.raises(SchemaMismatchError):
            await adapter.list_messages("t")
        with pytest.raises(SchemaMismatchError):
            await adapter.save_session(Session("s", "t", "v"))
    assert caught.value.missing_tables == []
    assert caught.value.other_problems == [
        "table chat_messages is WITHOUT ROWID: its rowid keeps ties in save order",
        "table chat_sessions has no primary key or unique index on (session_id)",
    ]


async def test_a_write_lock_held_too_long_is_unavailable_then_the_adapter_recovers(
    sqlite_path: Path,
) -> None:
    async with SqlitePersistence(path=str(sqlite_path), busy_timeout=0.05) as adapter:
        await adapter.save_messages("t", [Message("a", "user", [])])
        other = sqlite3.connect(sqlite_path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process's writer, holding the lock
            with pytest.raises(StorageUnavailableError, match="locked") as caught:
                await adapter.save_messages("t", [Message("b", "user", [])])
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
            # Readers are not blocked by a writer in WAL mode.
            assert [m.id for m in await adapter.list_messages("t")] == ["a"]
        finally:
            other.execute("ROLLBACK")
            other.close()
        await adapter.save_messages("t", [Message("b", "user", [])])
        assert [m.id for m in await adapter.list_messages("t")] == ["a", "b"]


async def test_a_cancelled_save_leaves_the_adapter_usable(
    sqlite_adapter: SqlitePersistence,
) -> None:
    batch = [Message(f"m{i:05d}", "user", [TextPart("x" * 100)]) for i in range(5_000)]
    save = asyncio.create_task(sqlite_adapter.save_messages("t", batch))
    await asyncio.sleep(0)
    save.cancel()
    with pytest.raises(asyncio.CancelledError):
        await save
    # The job had started: it ran whole or not at all, and the next one works.
    count = len(await sqlite_adapter.list_messages("t"))
    assert count in (0, len(batch))
    await sqlite_adapter.save_messages("t", [Message("after", "user", [])])
    assert (await sqlite_adapter.list_messages("t", limit=1))[0].id == "after"
