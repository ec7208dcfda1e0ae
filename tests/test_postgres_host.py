"""The host's environment: host pools with other row factories and cursor classes,
databases in other encodings and with other default isolation levels, service
files, every URL form libpq takes, odd table names and odd foreign rows. Each
configuration runs the contract suite (or the part that applies) or is refused
with a typed error naming the setting. Against real PostgreSQL 16."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from psycopg import AsyncClientCursor, sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row, namedtuple_row
from psycopg_pool import AsyncConnectionPool

from chat_persistence import (
    ConfigError,
    ConflictError,
    InvalidMessageError,
    Message,
    Session,
    StorageUnavailableError,
    TextPart,
    create_adapter,
)
from chat_persistence_contract import arun_contract
from chat_persistence_postgres import PostgresPersistence
from chat_persistence_postgres._plugin import postgres_url_options
from fix_faults import Holder, app_dsn, new_app
from fix_pg import PgDatabase, PgSchema, PgServer, make_database

HolderFactory = Callable[[str, str], Awaitable[Holder]]


def text(message_id: str, body: str | None = None, **kwargs: Any) -> Message:
    return Message(message_id, "user", [TextPart(body or message_id)], **kwargs)


@pytest.fixture
def database(pg16: PgServer) -> Iterator[PgDatabase]:
    """A UTF-8 database of this test's own, with the reference tables."""
    yield from make_database(pg16)


# -- host pools: row factories and cursor classes ---------------------------------

HOST_CONNECTIONS: dict[str, dict[str, Any]] = {
    "dict_row": {"row_factory": dict_row},
    "namedtuple_row": {"row_factory": namedtuple_row},
    "AsyncClientCursor": {"cursor_factory": AsyncClientCursor},
}


@pytest.mark.parametrize("kwargs", HOST_CONNECTIONS.values(), ids=HOST_CONNECTIONS.keys())
async def test_host_pools_with_their_own_row_factory_or_cursor_class(
    pg_schema: PgSchema, pg_tables: dict[str, str], kwargs: dict[str, Any]
) -> None:
    async with AsyncConnectionPool(pg_schema.dsn, kwargs=kwargs, max_size=4, open=False) as pool:
        report = await arun_contract(lambda: PostgresPersistence(pool=pool, tables=pg_tables))
        assert report.passed, report.format()
        async with PostgresPersistence(pool=pool, tables=pg_tables) as adapter:
            await adapter.validate_schema()
            assert (await adapter.check_schema(strict=True)).ok
            assert await adapter.save_messages("t", [text("a"), text("b")])
            assert [m.id for m in await adapter.delete_messages("t", ["b", "a"])] == ["a", "b"]
        async with pool.connection() as conn:  # handed back as the host made it
            assert conn.row_factory is kwargs.get("row_factory", conn.row_factory)
            assert conn.cursor_factory is kwargs.get("cursor_factory", conn.cursor_factory)
            assert not conn.autocommit


# -- table names ----------------------------------------------------------------------

ODD_NAMES = {
    "percent": ("chat%messages", "chat%sessions"),
    "placeholder": ("m%(thread)s", "s%s"),
    "quotes and spaces": ('my "chat" messages', "chat sessions;"),
    "non-ASCII": ("nachrichten_äö", "sitzungen_日本"),
}


@pytest.mark.parametrize("names", ODD_NAMES.values(), ids=ODD_NAMES.keys())
async def test_odd_table_names_hold_the_data(pg_schema: PgSchema, names: tuple[str, str]) -> None:
    tables = pg_schema.create_reference_tables(messages=names[0], sessions=names[1])
    m, s = pg_schema.qualified(names[0]), pg_schema.qualified(names[1])
    async with PostgresPersistence(conninfo=pg_schema.dsn, tables=tables, max_size=2) as adapter:
        await adapter.validate_schema()
        await adapter.save_messages("t", [text("one")])
        await adapter.save_messages("t", [text("two"), text("three", session_id="s")])
        await adapter.archive_session("s", thread_id="t")
        assert [x.id for x in await adapter.list_messages("t")] == ["one", "two"]
        assert [x.id for x in await adapter.list_messages("t", limit=1, before="two")] == ["one"]
        stored = await adapter.save_session(Session("live", "t", "v"))
        await adapter.save_session(stored, expected_updated_at=stored.updated_at)
        with pg_schema.server.connect() as conn:
            counts = conn.execute(
                sql.SQL("SELECT (SELECT count(*) FROM {}), (SELECT count(*) FROM {})").format(m, s)
            ).fetchone()
            tables_now = conn.execute(
                "SELECT array_agg(tablename::text ORDER BY tablename) FROM pg_tables"
                " WHERE schemaname = %s",
                [pg_schema.name],
            ).fetchone()
        assert counts == (3, 2)
        assert tables_now == (sorted(names),)
        await adapter.delete_thread("t")
        assert await adapter.list_messages("t") == []


# -- URL forms ------------------------------------------------------------------------


def test_url_without_a_host_keeps_its_form() -> None:
    for url in (
        "postgresql:///chat?host=/var/run/postgresql",
        "postgresql:///chat?host=/socket&messages_table=m",
        "postgres://db",
        "postgresql://[::1]:5433/chat",
        "postgresql://u:p%40ss@h1:5432,h2:5433/chat?target_session_attrs=read-write",
    ):
        conninfo = postgres_url_options(url)["conninfo"]
        assert conninfo == url.replace("&messages_table=m", "")


async def test_every_url_form_reaches_the_server(database: PgDatabase) -> None:
    info = {k: v for k, v in _dsn_parts(database.dsn).items() if v}
    socket_dir, user, port = info["host"], info.get("user", "postgres"), info.get("port", "5432")
    for url in (
        f"postgresql:///{database.name}?host={socket_dir}&user={user}&port={port}",
        f"postgresql://{user}@/{database.name}?host={socket_dir}&port={port}",
        f"postgres://{user}@%2F{socket_dir.lstrip('/').replace('/', '%2F')}:{port}/{database.name}",
        f"host={socket_dir} port={port} user={user} dbname={database.name}",
    ):
        adapter = create_adapter(url if "=" not in url.split("?")[0] else _as_mapping(url))
        async with adapter:
            await adapter.validate_schema()
            saved = await adapter.save_messages("t-url", [text(f"m{len(url)}")])
            assert await adapter.get_message("t-url", saved[0].id) == saved[0]


def _dsn_parts(dsn: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}


def _as_mapping(conninfo: str) -> dict[str, Any]:
    return {"backend": "postgres", "conninfo": conninfo}


# -- foreign rows ---------------------------------------------------------------------


async def test_a_null_session_id_row_does_not_hide_messages(database: PgDatabase) -> None:
    """A host's sessions table whose session_id may be NULL, holding an archived
    row with NULL: the whole listing and a page agree (NOT IN over a set holding
    NULL would return nothing)."""
    with database.connect() as conn:
        conn.execute(
            "ALTER TABLE chat_sessions DROP CONSTRAINT chat_sessions_pkey;"
            " CREATE UNIQUE INDEX ON chat_sessions (session_id);"
            " ALTER TABLE chat_sessions ALTER COLUMN session_id DROP NOT NULL;"
            " INSERT INTO chat_sessions (session_id, thread_id, sdk_version, archived_at)"
            " VALUES (NULL, 't', 'other', now())"
        )
    async with PostgresPersistence(conninfo=database.dsn) as adapter:
        await adapter.save_messages("t", [text("loose"), text("in-session", session_id="s1")])
        await adapter.save_session(Session("s2", "t", "v"))
        await adapter.save_messages("t", [text("live", session_id="s2")])
        everything = [m.id for m in await adapter.list_messages("t")]
        newest = [m.id for m in await adapter.list_messages("t", limit=10)]
    assert everything == newest == ["loose", "in-session", "live"]


# -- foreign times --------------------------------------------------------------------

ODD_TIMES = {
    "infinity": "infinity",
    "minus-infinity": "-infinity",
    "year-20000": "20000-01-01 00:00:00+00",
    "bc": "0044-03-15 00:00:00+00 BC",
}
MIN_UTC, MAX_UTC = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


async def test_foreign_odd_times_never_brick_a_thread(database: PgDatabase) -> None:
    """Rows another program wrote with times Python cannot hold read as the ends
    of the datetime range (documented), in every read, and sessions too."""
    with database.connect() as conn:
        conn.execute(
            "ALTER TABLE chat_messages ALTER COLUMN created_at DROP NOT NULL;"
            " ALTER TABLE chat_sessions ALTER COLUMN updated_at DROP NOT NULL"
        )
        for message_id, at in [*ODD_TIMES.items(), ("null", None)]:
            conn.execute(
                "INSERT INTO chat_messages (thread_id, message_id, role, created_at, parts_json)"
                " VALUES ('t', %s, 'user', %s::timestamptz, '[]')",
                [message_id, at],
            )
        conn.execute(
            "INSERT INTO chat_sessions (session_id, thread_id, sdk_version, created_at,"
            " updated_at) VALUES ('inf', 't', 'v', '-infinity', 'infinity'),"
            " ('null', 't', 'v', now(), NULL)"
        )
    async with PostgresPersistence(conninfo=database.dsn) as adapter:
        await adapter.save_messages(
            "t", [text("normal", created_at=datetime(2024, 1, 1, tzinfo=UTC))]
        )
        listed = await adapter.list_messages("t")
        times = {m.id: m.created_at for m in listed}
        assert times == {
            "minus-infinity": MIN_UTC,
            "bc": MIN_UTC,
            "normal": datetime(2024, 1, 1, tzinfo=UTC),
            "infinity": MAX_UTC,
            "year-20000": MAX_UTC,
            "null": None,
        }
        assert [m.id for m in listed][:3] == ["minus-infinity", "bc", "normal"]
        assert [m.id for m in listed][3:5] == ["year-20000", "infinity"]
        newest = await adapter.list_messages("t", limit=3)
        assert [m.id for m in newest] == ["year-20000", "infinity", "null"]
        before = await adapter.list_messages("t", limit=2, before="infinity")
        assert [m.id for m in before] == ["normal", "year-20000"]
        after = await adapter.list_messages("t", after="normal", limit=5)
        assert [m.id for m in after][:2] == ["year-20000", "infinity"]
        for message_id in (*ODD_TIMES, "null"):
            got = await adapter.get_message("t", message_id)
            assert got is not None
            assert got.created_at == times[message_id]
        session = await adapter.get_session("inf")
        assert session is not None
        assert (session.created_at, session.updated_at) == (MIN_UTC, MAX_UTC)
        nulled = await adapter.get_session("null")
        assert nulled is not None
        assert nulled.updated_at is None
        assert [s.id for s in await adapter.list_sessions("t")] == ["inf", "null"]
        resaved = await adapter.save_messages("t", [text("infinity"), text("bc")])
        assert [m.created_at for m in resaved] == [MAX_UTC, MIN_UTC]
        archived = await adapter.archive_session("inf", thread_id="t")
        assert archived.updated_at == MAX_UTC
        assert archived.archived_at is not None


async def test_a_host_pool_in_another_time_zone_reads_what_it_wrote(
    database: PgDatabase,
) -> None:
    last = datetime(9999, 12, 31, 20, 0, tzinfo=UTC)  # 10000-01-01 05:00 in Tokyo
    async with (
        AsyncConnectionPool(
            database.dsn, kwargs={"options": "-c TimeZone=Asia/Tokyo"}, open=False
        ) as pool,
        PostgresPersistence(pool=pool) as adapter,
    ):
        saved = await adapter.save_messages("t", [text("late", created_at=last), text("now")])
        assert saved[0].created_at == last
        assert await adapter.list_messages("t") == sorted(saved, key=lambda m: m.created_at or last)
        assert await adapter.get_message("t", "late") == saved[0]
        session = await adapter.save_session(Session("s", "t", "v", created_at=last))
        assert session.created_at == last
        assert await adapter.get_session("s") == session
        assert all(m.created_at is not None and m.created_at.tzinfo is UTC for m in saved)


# -- service files --------------------------------------------------------------------


async def test_a_service_file_keeps_its_options(
    pg_schema: PgSchema, pg_tables: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``options=-c search_path=...`` from ``pg_service.conf`` stays in force: the
    unqualified tables are the service's schema's."""
    info = _dsn_parts(pg_schema.dsn)
    lines = [f"{k}={info[k]}" for k in ("host", "port", "user", "dbname") if k in info]
    service = tmp_path / "pg_service.conf"
    service.write_text(
        "[chatsvc]\n" + "\n".join(lines) + f"\noptions=-c search_path={pg_schema.name}\n"
    )
    monkeypatch.setenv("PGSERVICEFILE", str(service))
    async with PostgresPersistence(conninfo="service=chatsvc") as adapter:
        await adapter.validate_schema()
        await adapter.save_messages("t", [text("via-service")])
        assert adapter._pool is not None
        async with adapter._pool.connection() as conn:
            cur = await conn.execute("SELECT current_schema()")
            assert await cur.fetchone() == (pg_schema.name,)
    with pg_schema.server.connect() as conn:
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(pg_schema.qualified("chat_messages"))
        ).fetchone()
    assert count == (1,)
    assert pg_tables["messages"].endswith(".chat_messages")


# -- encodings ------------------------------------------------------------------------


def _stored_text(database: PgDatabase, message_id: str) -> str:
    """What a second, plain UTF-8 client reads from the row."""
    with database.connect() as conn:
        row = conn.execute(
            "SELECT parts_json->0->>'text' FROM chat_messages WHERE message_id = %s",
            [message_id],
        ).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(params=["LATIN1", "SQL_ASCII"])
def other_encoding(request: pytest.FixtureRequest, pg16: PgServer) -> Iterator[PgDatabase]:
    yield from make_database(pg16, encoding=request.param)


async def test_a_database_in_another_encoding_stores_real_text(
    other_encoding: PgDatabase,
) -> None:
    with other_encoding.connect() as conn:
        conn.execute(
            "INSERT INTO chat_messages (thread_id, message_id, role, parts_json)"
            " VALUES ('thread-ü', 'foreign', 'user', %s::jsonb)",
            ['[{"type": "text", "text": "naïve"}]'],
        )
    async with PostgresPersistence(conninfo=other_encoding.dsn) as adapter:
        saved = await adapter.save_messages("thread-ü", [text("ours", "café")])
        assert _stored_text(other_encoding, "ours") == "café"
        listed = await adapter.list_messages("thread-ü")
        assert [(m.id, m.parts) for m in listed] == [
            ("foreign", (TextPart("naïve"),)),
            ("ours", saved[0].parts),
        ]
        if _server_encoding(other_encoding) == "LATIN1":
            with pytest.raises(InvalidMessageError) as err:
                await adapter.save_messages("thread-ü", [text("fine"), text("euro", "5 €")])
            assert err.value.message_id == "euro"
            assert err.value.field == "Message.parts"
            assert "LATIN1" in str(err.value)
            assert [m.id for m in await adapter.list_messages("thread-ü")] == ["foreign", "ours"]
            with pytest.raises(InvalidMessageError, match=r"Session\.state"):
                await adapter.save_session(Session("s", "thread-ü", "v", state={"k": "日本"}))
            assert await adapter.get_session("s") is None
        else:  # SQL_ASCII holds any bytes: stored as UTF-8, read back the same
            await adapter.save_messages("thread-ü", [text("euro", "5 €")])
            assert _stored_text(other_encoding, "euro") == "5 €"


def _server_encoding(database: PgDatabase) -> str:
    with database.connect() as conn:
        row = conn.execute("SHOW server_encoding").fetchone()
    assert row is not None
    return str(row[0])


async def test_a_latin1_client_encoding_in_the_conninfo_is_overridden(
    database: PgDatabase,
) -> None:
    conninfo = make_conninfo(database.dsn, client_encoding="LATIN1")
    async with create_adapter({"backend": "postgres", "conninfo": conninfo}) as adapter:
        await adapter.save_messages("t", [text("m", "café")])
        assert [m.parts for m in await adapter.list_messages("t")] == [(TextPart("café"),)]
    assert _stored_text(database, "m") == "café"


async def test_a_host_pool_in_latin1_is_refused_at_open(database: PgDatabase) -> None:
    async with AsyncConnectionPool(
        database.dsn, kwargs={"client_encoding": "LATIN1"}, open=False
    ) as pool:
        with pytest.raises(ConfigError, match="client_encoding=LATIN1") as err:
            await PostgresPersistence(pool=pool).open()
        assert err.value.option == "client_encoding"
    with database.connect() as conn:
        assert conn.execute("SELECT count(*) FROM chat_messages").fetchone() == (0,)


# -- races ----------------------------------------------------------------------------


async def test_concurrent_opens_share_one_pool(
    pg_schema: PgSchema, pg_tables: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Four ``open()`` calls at once open one pool: none is dropped while open
    (its worker tasks destroyed pending, its connections left to the collector)."""
    app = new_app()
    adapter = PostgresPersistence(
        conninfo=app_dsn(pg_schema.dsn, app), tables=pg_tables, min_size=2, max_size=2
    )
    with caplog.at_level(logging.WARNING):
        await asyncio.gather(*(adapter.open() for _ in range(4)))
        gc.collect()
        await asyncio.sleep(0)
    dropped = [
        r.getMessage() for r in caplog.records if "destroyed but it is pending" in r.getMessage()
    ]
    assert dropped == []
    await adapter.save_messages("t", [text("a")])
    pool = adapter._pool
    assert pool is not None
    assert pool.get_stats()["pool_size"] == 2
    await adapter.aclose()
    assert pool.closed


async def test_the_loser_of_a_compare_and_set_race_learns_the_stored_value(
    pg_schema: PgSchema, pg_tables: dict[str, str], holder_factory: HolderFactory
) -> None:
    app = new_app()
    holder = await holder_factory(pg_schema.dsn, app)
    async with PostgresPersistence(
        conninfo=app_dsn(pg_schema.dsn, app), tables=pg_tables, max_size=2
    ) as adapter:
        stored = await adapter.save_session(Session("s", "t", "v"))
        winner_time = datetime(2030, 1, 1, tzinfo=UTC)
        await holder.conn.execute("BEGIN")
        await holder.conn.execute(
            sql.SQL("UPDATE {} SET updated_at = %s WHERE session_id = 's'").format(
                pg_schema.qualified("chat_sessions")
            ),
            [winner_time],
        )
        loser = asyncio.create_task(
            adapter.save_session(Session("s", "t", "v2"), expected_updated_at=stored.updated_at)
        )
        await holder.wait_for(1)  # the compare-and-set waits for the winner's row
        await holder.conn.execute("COMMIT")
        with pytest.raises(ConflictError) as err:
            await asyncio.wait_for(loser, timeout=10)
        assert err.value.expected == stored.updated_at
        assert err.value.actual == winner_time
        got = await adapter.get_session("s")
        assert got is not None
        assert (got.sdk_version, got.updated_at) == ("v", winner_time)


# -- secrets --------------------------------------------------------------------------

BAD_CONNINFOS = [
    "postgresql://u:hunter2@[bad/db",  # libpq quotes the whole URI back
    "postgresql://u:hunter2@h/db?sslpassword=hunter2&bad key=1",
    "host=db password=hunter2 sslpassword='hunter2' port",
]


@pytest.mark.parametrize("conninfo", BAD_CONNINFOS)
async def test_a_bad_conninfo_fails_at_once_without_its_secret(conninfo: str) -> None:
    adapter = PostgresPersistence(conninfo=conninfo, pool_timeout=2)
    with pytest.raises(ConfigError) as err:
        await asyncio.wait_for(adapter.open(), timeout=1.5)
    assert err.value.option == "conninfo"
    assert "hunter2" not in str(err.value)
    assert err.value.__cause__ is None


async def test_an_unreachable_server_error_masks_the_password() -> None:
    url = "postgresql://u:p%40ss%20word@127.0.0.1:1/db?connect_timeout=1&sslpassword=s3cr3t"
    adapter = PostgresPersistence(conninfo=url, pool_timeout=1, min_size=1)
    with pytest.raises(StorageUnavailableError) as err:
        await adapter.open()
    for secret in ("p@ss word", "p%40ss%20word", "s3cr3t"):
        assert secret not in str(err.value)
    assert "127.0.0.1" in str(err.value)  # the reason is still there


# -- default isolation levels ---------------------------------------------------------


@pytest.fixture(params=["repeatable read", "serializable"])
def isolated(request: pytest.FixtureRequest, pg16: PgServer) -> Iterator[PgDatabase]:
    """A database whose sessions default to another isolation level."""
    yield from make_database(pg16, settings={"default_transaction_isolation": request.param})


@pytest.mark.parametrize("size", [1, 3], ids=["single", "batch"])
async def test_a_save_waiting_for_the_thread_lands_after_its_holder(
    isolated: PgDatabase, holder_factory: HolderFactory, size: int
) -> None:
    """Hold the thread lock, insert a message an hour ahead, commit while a save
    waits: the save sorts after it (its snapshot is taken after the lock)."""
    app = new_app()
    holder = await holder_factory(isolated.dsn, app)
    async with PostgresPersistence(conninfo=app_dsn(isolated.dsn, app), max_size=2) as adapter:
        await adapter.save_messages("t", [text("first")])
        await holder.hold_thread("t")
        await holder.conn.execute(
            "INSERT INTO chat_messages (thread_id, message_id, role, created_at, parts_json)"
            " VALUES ('t', 'ahead', 'user', now() + interval '1 hour', '[]')"
        )
        waiting = asyncio.create_task(
            adapter.save_messages("t", [text(f"w{i}") for i in range(size)])
        )
        await holder.wait_for(1)
        await holder.conn.execute("COMMIT")
        saved = await asyncio.wait_for(waiting, timeout=10)
        listed = [m.id for m in await adapter.list_messages("t")]
    assert listed == ["first", "ahead", *(m.id for m in saved)]


async def test_concurrent_writes_under_another_isolation_level_never_fail(
    isolated: PgDatabase,
) -> None:
    async with PostgresPersistence(conninfo=isolated.dsn, max_size=6) as adapter:
        stored = await adapter.save_session(Session("s", "t", "v"))

        async def writer(n: int) -> None:
            for b in range(4):
                await adapter.save_messages("t", [text(f"w{n}-{b}-{i}") for i in range(1 + b % 2)])
                await adapter.save_messages("t", [text(f"w{n}-{b}-again")])
                await adapter.save_messages("t", [text(f"w{n}-{b}-again", "changed")])
                await adapter.save_session(Session("s", "t", f"v{n}"))
                await adapter.archive_session(f"a{b}", thread_id="t")

        async def compare_and_set() -> int:
            conflicts = 0
            for _ in range(10):
                try:
                    await adapter.save_session(
                        Session("s", "t", "cas"), expected_updated_at=stored.updated_at
                    )
                except ConflictError:
                    conflicts += 1
            return conflicts

        conflicts, *_ = await asyncio.gather(compare_and_set(), *(writer(n) for n in range(5)))
        assert conflicts in (9, 10)  # at most one compare-and-set wins
        listed = await adapter.list_messages("t", session_id=None)
        assert len(listed) == 5 * (4 + 6)
        times = [m.created_at for m in listed if m.created_at is not None]
        assert times == sorted(times)
        assert len(set(times)) == len(listed)
        deletes = await asyncio.gather(
            *(adapter.delete_messages("t", [m.id for m in listed]) for _ in range(3))
        )
        assert sorted(m.id for d in deletes for m in d) == sorted(m.id for m in listed)
        await adapter.delete_thread("t")
