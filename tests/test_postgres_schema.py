"""The column contract: validate_schema (plain and strict), the reference DDL, the
documented SQLAlchemy tables, table names and hostile identifiers."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from chat_persistence import ConfigError, Message, SchemaMismatchError, Session, TextPart
from chat_persistence_postgres import (
    ColumnProblem,
    PostgresPersistence,
    StrictSchemaMismatchError,
    reference_ddl,
)
from chat_persistence_postgres._tables import TableName, parse_table_name
from fix_pg import PgSchema

DOCS = Path(__file__).parent.parent / "docs" / "postgres.md"


async def test_reference_tables_pass_strict_validation(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    async with PostgresPersistence(
        conninfo=pg_schema.dsn, tables=pg_tables, strict_schema=True
    ) as adapter:
        await adapter.validate_schema()
        report = await adapter.check_schema(strict=True)
    assert report.ok
    assert report.problems() == []
    assert report.missing_indexes == {}


async def test_missing_tables_are_named(pg_schema: PgSchema) -> None:
    async with PostgresPersistence(conninfo=pg_schema.dsn, tables=pg_schema.tables()) as adapter:
        with pytest.raises(SchemaMismatchError) as err:
            await adapter.validate_schema()
    messages, sessions = pg_schema.tables().values()
    assert err.value.missing_tables == [messages, sessions]
    assert err.value.missing_columns == {}
    assert f"missing table {messages}" in str(err.value)
    assert f"missing table {sessions}" in str(err.value)


async def test_every_missing_column_is_named(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    with pg_schema.server.connect() as conn:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP COLUMN user_id, DROP COLUMN parts_json").format(
                pg_schema.qualified("chat_messages")
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP COLUMN archived_at").format(
                pg_schema.qualified("chat_sessions")
            )
        )
    async with PostgresPersistence(conninfo=pg_schema.dsn, tables=pg_tables) as adapter:
        with pytest.raises(SchemaMismatchError) as err:
            await adapter.validate_schema()
    assert err.value.missing_tables == []
    assert err.value.missing_columns == {
        pg_tables["messages"]: ["user_id", "parts_json"],
        pg_tables["sessions"]: ["archived_at"],
    }
    for column in ("user_id", "parts_json", "archived_at"):
        assert column in str(err.value)


async def test_bare_names_follow_the_search_path(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    on_path = make_conninfo(pg_schema.dsn, options=f"-c search_path={pg_schema.name}")
    async with PostgresPersistence(conninfo=on_path) as adapter:  # default bare names
        await adapter.validate_schema()
        await adapter.save_messages("t", [Message("m", "user", [TextPart("x")])])
    with pg_schema.server.connect() as conn:
        cur = conn.execute(
            sql.SQL("SELECT message_id FROM {}").format(pg_schema.qualified("chat_messages"))
        )
        assert cur.fetchall() == [("m",)]
    # The same tables exist, but not on this search path: not ours.
    off_path = make_conninfo(pg_schema.dsn, options="-c search_path=pg_catalog")
    async with PostgresPersistence(conninfo=off_path) as adapter:
        with pytest.raises(SchemaMismatchError) as err:
            await adapter.validate_schema()
    assert err.value.missing_tables == ["chat_messages", "chat_sessions"]


async def test_strict_mode_checks_types_nullability_and_keys(pg_schema: PgSchema) -> None:
    messages, sessions = pg_schema.qualified("m"), pg_schema.qualified("s")
    with pg_schema.server.connect() as conn:
        conn.execute(
            sql.SQL(
                """
                CREATE TABLE {m} (
                    thread_id text NOT NULL, message_id text NOT NULL, session_id text NOT NULL,
                    user_id text, role varchar(20) NOT NULL,
                    created_at timestamp NOT NULL DEFAULT now(), parts_json json NOT NULL,
                    PRIMARY KEY (thread_id, message_id));
                CREATE TABLE {s} (
                    session_id text NOT NULL, thread_id text NOT NULL, sdk_version text NOT NULL,
                    state_json jsonb, metadata_json jsonb,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now(), archived_at timestamptz);
                CREATE INDEX ON {s} (thread_id, created_at);
                """
            ).format(m=messages, s=sessions)
        )
    tables = pg_schema.tables("m", "s")
    m, s = tables["messages"], tables["sessions"]
    async with PostgresPersistence(conninfo=pg_schema.dsn, tables=tables) as adapter:
        # The default check: the compatible variants pass, the missing key does not.
        with pytest.raises(StrictSchemaMismatchError) as default:
            await adapter.validate_schema()
        report = await adapter.check_schema(strict=True)
    assert default.value.missing_keys == {s: ("session_id",)}
    assert default.value.wrong_columns == []
    assert report.wrong_columns == [
        ColumnProblem(m, "session_id", "nullable", "not null"),
        ColumnProblem(m, "role", "text", "character varying"),
        ColumnProblem(m, "created_at", "timestamp with time zone", "timestamp without time zone"),
        ColumnProblem(m, "parts_json", "jsonb", "json"),
    ]
    assert report.missing_keys == {s: ("session_id",)}
    # sessions (thread_id, created_at) serves the (thread_id) recommendation.
    assert report.missing_indexes == {m: [("thread_id", "created_at"), ("session_id",)]}
    assert f"create index on {m} (thread_id, created_at);" in report.index_advice()
    async with PostgresPersistence(
        conninfo=pg_schema.dsn, tables=tables, strict_schema=True
    ) as adapter:
        with pytest.raises(StrictSchemaMismatchError) as err:
            await adapter.validate_schema()
    assert isinstance(err.value, SchemaMismatchError)
    assert err.value.wrong_columns == report.wrong_columns
    assert err.value.missing_keys == {s: ("session_id",)}
    assert "parts_json is json, expected jsonb" in str(err.value)
    assert "no primary key" in str(err.value)


async def test_missing_indexes_are_a_report_not_an_error(
    pg_schema: PgSchema, caplog: pytest.LogCaptureFixture
) -> None:
    ddl = reference_ddl(pg_schema.tables())
    tables_only = "\n".join(
        line for line in ddl.splitlines() if not line.startswith("create index")
    )
    with pg_schema.server.connect() as conn:
        conn.execute(tables_only.encode())
    async with PostgresPersistence(
        conninfo=pg_schema.dsn, tables=pg_schema.tables(), strict_schema=True
    ) as adapter:
        with caplog.at_level(logging.WARNING, logger="chat_persistence.postgres"):
            await adapter.validate_schema()
        report = await adapter.check_schema()
    assert len(report.missing_indexes) == 2
    assert report.ok
    assert "recommended index missing" in caplog.text


def test_reference_ddl_text() -> None:
    ddl = reference_ddl()
    assert ddl.startswith("create table chat_messages (\n  thread_id text not null,")
    assert "create index on chat_messages (thread_id, created_at);" in ddl
    assert "create table chat_sessions (" in ddl
    custom = reference_ddl({"messages": "App.Chat Messages", "sessions": "app.user"})
    assert 'create table "App"."Chat Messages" (' in custom
    assert 'create index on app."user" (thread_id);' in custom
    assert reference_ddl({"messages": "chat_messages"}) == ddl


def test_the_backend_offers_the_reference_ddl() -> None:
    from chat_persistence import available_backends

    [info] = [b for b in available_backends() if b.name == "postgres"]
    assert info.backend is not None
    assert info.backend.reference_ddl is not None
    names = {"messages": "a.m", "sessions": "a.s"}
    assert info.backend.reference_ddl(names) == reference_ddl(names)


def _documented_sqlalchemy_block() -> str:
    docs = DOCS.read_text()
    section = docs[docs.index("### SQLAlchemy") :]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "docs/postgres.md lost its SQLAlchemy example"
    return found.group(1)


async def test_documented_sqlalchemy_tables_pass_strict_validation(pg_schema: PgSchema) -> None:
    import sqlalchemy

    namespace: dict[str, Any] = {}
    exec(compile(_documented_sqlalchemy_block(), str(DOCS), "exec"), namespace)
    url = "postgresql+psycopg://" + pg_schema.dsn.split("://", 1)[1]
    engine = sqlalchemy.create_engine(url).execution_options(
        schema_translate_map={None: pg_schema.name}
    )
    try:
        with engine.begin() as conn:
            namespace["metadata"].create_all(conn)
    finally:
        engine.dispose()
    async with PostgresPersistence(
        conninfo=pg_schema.dsn, tables=pg_schema.tables(), strict_schema=True
    ) as adapter:
        await adapter.validate_schema()
        assert (await adapter.check_schema()).missing_indexes == {}
        saved = await adapter.save_messages("t", [Message("m", "user", [TextPart("x")])])
        assert await adapter.list_messages("t") == saved


def test_table_names_parse() -> None:
    assert parse_table_name("chat_messages") == TableName("chat_messages")
    assert parse_table_name("app.chat_messages") == TableName("chat_messages", "app")
    assert parse_table_name('"my.schema"."Chat ""x"""') == TableName('Chat "x"', "my.schema")
    assert parse_table_name('x"; drop table t; --') == TableName('x"; drop table t; --')
    assert str(TableName('x"; drop', "App")) == '"App"."x""; drop"'
    for bad in ("", "a.b.c", "a..b", ".a", '"open', '"a"b', "a\x00b", "x" * 64):
        with pytest.raises(ConfigError) as err:
            parse_table_name(bad)
        assert err.value.option == "tables"
    with pytest.raises(ConfigError, match="unknown key"):
        PostgresPersistence(conninfo="postgresql://", tables={"message": "m"})


async def test_a_hostile_table_name_touches_no_other_table(pg_schema: PgSchema) -> None:
    hostile = 'x"; drop table victim; --'
    victim = pg_schema.qualified("victim")
    with pg_schema.server.connect() as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (id int); INSERT INTO {} VALUES (1)").format(victim, victim)
        )
    tables = {
        "messages": f"{pg_schema.name}.{hostile}",
        "sessions": f"{pg_schema.name}.{hostile} s",
    }
    with pg_schema.server.connect() as conn:
        conn.execute(reference_ddl(tables).encode())
    async with PostgresPersistence(
        conninfo=pg_schema.dsn, tables=tables, strict_schema=True
    ) as adapter:
        await adapter.validate_schema()
        await adapter.save_session(Session("s", "t", "v"))
        await adapter.save_messages("t", [Message("m", "user", [TextPart("x")], session_id="s")])
        await adapter.archive_session("s", thread_id="t")
        assert [m.id for m in await adapter.list_messages("t", session_id="s", after="m")] == []
        assert await adapter.list_messages("t") == []
        assert [s.id for s in await adapter.list_sessions("t", include_archived=True)] == ["s"]
        await adapter.delete_thread("t")
    with pg_schema.server.connect() as conn:
        cur = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " ORDER BY table_name",
            [pg_schema.name],
        )
        assert [r[0] for r in cur.fetchall()] == ["victim", hostile, f"{hostile} s"]
        assert conn.execute(sql.SQL("SELECT id FROM {}").format(victim)).fetchall() == [(1,)]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chat_persistence", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_command_names_every_missing_column(
    pg_schema: PgSchema, pg_tables: dict[str, str]
) -> None:
    separator = "&" if "?" in pg_schema.dsn else "?"
    url = (
        f"{pg_schema.dsn}{separator}messages_table={pg_tables['messages']}"
        f"&sessions_table={pg_tables['sessions']}"
    )
    assert _cli("check", url).returncode == 0
    with pg_schema.server.connect() as conn:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP COLUMN role, DROP COLUMN created_at").format(
                pg_schema.qualified("chat_messages")
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP COLUMN state_json").format(
                pg_schema.qualified("chat_sessions")
            )
        )
    done = _cli("check", url)
    assert done.returncode == 1, done.stdout + done.stderr
    for table, column in [
        (pg_tables["messages"], "role"),
        (pg_tables["messages"], "created_at"),
        (pg_tables["sessions"], "state_json"),
    ]:
        assert f"{table}: missing column {column}" in done.stdout


def test_ddl_command_prints_the_reference_ddl() -> None:
    done = _cli("ddl", "--messages-table", "app.Chat", "--sessions-table", 'x"; drop table t')
    assert done.returncode == 0, done.stderr
    assert done.stdout == reference_ddl({"messages": "app.Chat", "sessions": 'x"; drop table t'})


_VARIANT_TABLES = """
CREATE TABLE {m} (
    thread_id {id} NOT NULL, message_id {id} NOT NULL, session_id {id}, user_id {id},
    role {id} NOT NULL, created_at {time} NOT NULL DEFAULT now(), parts_json {json} NOT NULL
    {mkey});
CREATE TABLE {s} (
    session_id {id} NOT NULL, thread_id {id} NOT NULL, sdk_version {sdk} NOT NULL,
    state_json {json}, metadata_json {json}, created_at {time} NOT NULL DEFAULT now(),
    updated_at {time} NOT NULL DEFAULT now(), archived_at {time}
    {skey});
"""
_TEXT = {"id": "text", "sdk": "text", "json": "jsonb", "time": "timestamptz"}
_KEYS = {"mkey": ", PRIMARY KEY (thread_id, message_id)", "skey": ", PRIMARY KEY (session_id)"}


def _create_variant(pg_schema: PgSchema, **changes: str) -> dict[str, str]:
    shape = {**_TEXT, **_KEYS, **changes}
    tables = pg_schema.tables("m", "s")  # plain names: no quoting needed
    ddl = _VARIANT_TABLES.format(m=tables["messages"], s=tables["sessions"], **shape)
    with pg_schema.server.connect() as conn:
        conn.execute(ddl.encode())
    return tables


async def _round_trip(adapter: PostgresPersistence) -> None:
    saved = await adapter.save_messages("t", [Message("1", "user", [TextPart("x")], "s1")])
    saved += await adapter.save_messages(
        "t", [Message("2", "assistant", [TextPart("y")]), Message("3", "user", [TextPart("z")])]
    )
    assert await adapter.list_messages("t") == saved
    assert await adapter.get_message("t", "1") == saved[0]
    await adapter.save_session(Session("s1", "t", sdk_version="v1", state={"a": [1]}))
    stored = await adapter.get_session("s1")
    assert stored is not None
    assert stored.state == {"a": [1]}
    await adapter.archive_session("s1", thread_id="t")
    assert await adapter.list_sessions("t") == []
    await adapter.delete_thread("t")
    assert await adapter.list_messages("t") == []


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "varchar(200)", "sdk": "varchar"},
        {"json": "json"},
        {"time": "timestamp"},
        {
            "mkey": ", UNIQUE (message_id, thread_id)",
            "skey": ", CONSTRAINT one UNIQUE (session_id)",
        },
    ],
    ids=["varchar", "json", "timestamp", "unique-constraints"],
)
async def test_compatible_variants_pass_the_default_check_and_work(
    pg_schema: PgSchema, changes: dict[str, str]
) -> None:
    tables = _create_variant(pg_schema, **changes)
    async with PostgresPersistence(conninfo=pg_schema.dsn, tables=tables) as adapter:
        await adapter.validate_schema()
        await _round_trip(adapter)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"sdk": "integer"}, "s.sdk_version is integer, expected text"),
        ({"json": "integer"}, "m.parts_json is integer, expected jsonb"),
        ({"json": "text"}, "m.parts_json is text, expected jsonb"),
        ({"id": "char(40)"}, "m.message_id is character, expected text"),
        ({"time": "date"}, "m.created_at is date, expected timestamp with time zone"),
        ({"mkey": ""}, "m has no primary key (or unique index) on (thread_id, message_id)"),
        ({"mkey": ", UNIQUE (message_id)"}, "on (thread_id, message_id)"),
        ({"skey": ""}, "s has no primary key (or unique index) on (session_id)"),
        (
            {"skey": ", PRIMARY KEY (session_id) DEFERRABLE INITIALLY DEFERRED"},
            "s has no primary key (or unique index) on (session_id)",
        ),
    ],
    ids=[
        "sdk-integer",
        "parts-integer",
        "parts-text",
        "char-ids",
        "date",
        "no-message-key",
        "partial-message-key",
        "no-session-key",
        "deferrable-key",
    ],
)
async def test_what_breaks_at_run_time_fails_the_default_check(
    pg_schema: PgSchema, changes: dict[str, str], problem: str
) -> None:
    tables = _create_variant(pg_schema, **changes)
    async with PostgresPersistence(conninfo=pg_schema.dsn, tables=tables) as adapter:
        with pytest.raises(SchemaMismatchError) as err:
            await adapter.validate_schema()
    assert problem in str(err.value)
    assert err.value.missing_tables == []
    assert err.value.missing_columns == {}


@pytest.mark.parametrize(
    ("changes", "operation", "said", "untouched"),
    [
        ({"mkey": ""}, "save_messages", "no unique or exclusion constraint", "m"),
        ({"sdk": "integer"}, "save_session", "sdk_version", "s"),
    ],
)
async def test_a_statement_the_tables_refuse_is_a_schema_mismatch(
    pg_schema: PgSchema, changes: dict[str, str], operation: str, said: str, untouched: str
) -> None:
    tables = _create_variant(pg_schema, **changes)
    async with PostgresPersistence(conninfo=pg_schema.dsn, tables=tables) as adapter:
        with pytest.raises(SchemaMismatchError) as err:
            await _round_trip(adapter)
    assert f"{operation} failed on the tables" in str(err.value)
    assert said in str(err.value)
    with pg_schema.server.connect() as conn:
        query = sql.SQL("SELECT count(*) FROM {}").format(pg_schema.qualified(untouched))
        assert conn.execute(query).fetchone() == (0,)
