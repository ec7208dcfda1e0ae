"""The host-environment matrix: the contract suite (or the part that applies) in
each configuration a psycopg user can make, on real servers, and a second, plain
UTF-8 client that must see the same text the adapter stored (and the adapter the
text it wrote). A configuration passes, or is refused at ``open()`` with a
``ConfigError`` naming the setting, where refusing is acceptable.

``PENDING_CONFIGS`` lists the configurations that fail today, with the number of
the defect in issue 10 that makes them fail; they are not collected (set
``CHAT_PERSISTENCE_HOST_PENDING=1`` to run them too). Fixing a defect means
deleting its lines there.
"""

from __future__ import annotations

import os
import uuid

import pytest
from psycopg import AsyncClientCursor, sql
from psycopg.rows import dict_row, namedtuple_row, tuple_row

from chat_persistence import ConfigError, Message, PersistenceAdapter, PersistenceError, TextPart
from chat_persistence_contract import arun_contract, ordered_checks
from fix_host_matrix import (
    HostConfig,
    HostEnv,
    HostTarget,
    conninfo_option,
    conninfo_options_search_path,
    database_default,
    encoding,
    host_pool,
    pgbouncer_host_pool,
    pgoptions_search_path,
    service_file,
    table_names,
    url_form,
    url_options_search_path,
)

PENDING_ENV = "CHAT_PERSISTENCE_HOST_PENDING"

ALL_BUT_STATEFUL = frozenset(c.name for c in ordered_checks() if not c.stateful)
"""Configurations that change how the server or the session behaves run every
check but the (slow, randomized) stateful one, which PostgreSQL 15, 16 and 18 and
PgBouncer run in full."""
# A LATIN1 database cannot hold the emoji and symbols these checks store; that
# such text is refused with a typed error and nothing written is what
# _second_client_agrees checks on this configuration.
LATIN1_CHECKS = ALL_BUT_STATEFUL - {
    "every_part_kind_round_trips",
    "session_json_round_trips",
    "stored_parts_are_the_listing",
}

CONNECTING = frozenset(
    {
        "implements_protocol",
        "validate_schema_passes",
        "save_returns_messages_as_stored",
        "every_part_kind_round_trips",
        "batches_list_in_save_order",
        "resave_updates_content_keeps_position",
        "failing_batch_writes_nothing",
        "limit_keeps_the_newest",
        "before_pages_backwards",
        "archiving_hides_existing_messages",
        "rejects_nul_in_text",
        "save_session_inserts_with_store_times",
        "compare_and_set_conflicts_when_stale",
        "archive_creates_a_missing_session",
        "delete_thread_removes_messages_and_sessions",
        "data_survives_reopening",
        "concurrent_writers_one_thread",
    }
)
"""For configurations that only change how the adapter reaches its tables (URL
forms, search paths): a check of each kind of statement, reopening included."""


CONFIGS: tuple[HostConfig, ...] = (
    # databases with each default isolation level
    HostConfig(
        "isolation-read-committed",
        database_default("rc", default_transaction_isolation="read committed"),
        ALL_BUT_STATEFUL,
    ),
    HostConfig(
        "isolation-repeatable-read",
        database_default("rr", default_transaction_isolation="repeatable read"),
        ALL_BUT_STATEFUL,
        refusal="isolation",
    ),
    HostConfig(
        "isolation-serializable",
        database_default("ser", default_transaction_isolation="serializable"),
        ALL_BUT_STATEFUL,
        refusal="isolation",
    ),
    # database and client encodings
    HostConfig("encoding-utf8", database_default("utf8", encoding("UTF8")), ALL_BUT_STATEFUL),
    HostConfig(
        "encoding-latin1",
        database_default("latin1", encoding("LATIN1")),
        LATIN1_CHECKS,
        refusal="encoding",
    ),
    HostConfig(
        "encoding-sql-ascii",
        database_default("sqlascii", encoding("SQL_ASCII")),
        ALL_BUT_STATEFUL,
        refusal="encoding",
    ),
    HostConfig(
        "client-encoding-latin1",
        conninfo_option(client_encoding="LATIN1"),
        ALL_BUT_STATEFUL,
        refusal="encoding",
    ),
    # a session time zone that is not UTC
    HostConfig(
        "timezone-tokyo-owned-pool",
        database_default("tokyo", TimeZone="Asia/Tokyo"),
        ALL_BUT_STATEFUL,
    ),
    HostConfig("timezone-tokyo-host-pool", host_pool("tokyo"), ALL_BUT_STATEFUL),
    # host pools with each row factory, and a client-side cursor
    HostConfig("host-pool-tuple-row", host_pool(row_factory=tuple_row), ALL_BUT_STATEFUL),
    HostConfig("host-pool-dict-row", host_pool(row_factory=dict_row), ALL_BUT_STATEFUL),
    HostConfig("host-pool-namedtuple-row", host_pool(row_factory=namedtuple_row), ALL_BUT_STATEFUL),
    HostConfig(
        "host-pool-client-cursor", host_pool(cursor_factory=AsyncClientCursor), ALL_BUT_STATEFUL
    ),
    # where the search path comes from
    HostConfig("host-pool-autocommit", host_pool(autocommit=True), ALL_BUT_STATEFUL),
    HostConfig("host-pool-prepare-always", host_pool(prepare_threshold=0), ALL_BUT_STATEFUL),
    HostConfig("host-pool-through-pgbouncer", pgbouncer_host_pool, ALL_BUT_STATEFUL),
    # libpq service files
    HostConfig("service-file", service_file(search_path=False, url=False), CONNECTING),
    HostConfig("service-file-url", service_file(search_path=False, url=True), CONNECTING),
    HostConfig("service-file-options", service_file(search_path=True, url=False), CONNECTING),
    HostConfig("pgoptions-search-path", pgoptions_search_path, CONNECTING),
    HostConfig("conninfo-options-search-path", conninfo_options_search_path, CONNECTING),
    HostConfig("url-options-search-path", url_options_search_path, CONNECTING),
    # each URL form libpq takes
    HostConfig(
        "url-tcp",
        url_form(lambda c: f"postgresql://postgres@127.0.0.1:{c.port}/postgres"),
        CONNECTING,
    ),
    HostConfig(
        "url-postgres-scheme",
        url_form(lambda c: f"postgres://postgres@127.0.0.1:{c.port}/postgres"),
        CONNECTING,
    ),
    HostConfig(
        "url-socket-in-query",
        url_form(lambda c: f"postgresql://postgres@/postgres?host={c.socket_dir}&port={c.port}"),
        CONNECTING,
    ),
    HostConfig(
        "url-socket-empty-authority",
        url_form(
            lambda c: f"postgresql:///postgres?host={c.socket_dir}&port={c.port}&user=postgres"
        ),
        CONNECTING,
    ),
    HostConfig(
        "url-socket-percent-encoded-host",
        url_form(
            lambda c: (
                "postgresql://postgres@"
                + str(c.socket_dir).replace("/", "%2F")
                + f":{c.port}/postgres"
            )
        ),
        CONNECTING,
    ),
    HostConfig(
        "url-multiple-hosts",
        url_form(lambda c: f"postgresql://postgres@127.0.0.1:1,127.0.0.1:{c.port}/postgres"),
        CONNECTING,
    ),
    HostConfig(
        "url-hostaddr",
        url_form(lambda c: f"postgresql://postgres@localhost:{c.port}/postgres?hostaddr=127.0.0.1"),
        CONNECTING,
    ),
    HostConfig(
        "keyword-dsn-tcp",
        url_form(lambda c: f"host=127.0.0.1 port={c.port} dbname=postgres user=postgres"),
        CONNECTING,
    ),
    HostConfig(
        "keyword-dsn-socket",
        url_form(lambda c: f"host={c.socket_dir} port={c.port} dbname=postgres user=postgres"),
        CONNECTING,
    ),
    # table names holding characters SQL treats specially
    HostConfig("table-percent", table_names("chat%messages", "chat%sessions"), ALL_BUT_STATEFUL),
    HostConfig("table-placeholder", table_names("m%(thread)s", "s%s"), ALL_BUT_STATEFUL),
    HostConfig("table-quotes", table_names('chat"messages', "it's sessions"), ALL_BUT_STATEFUL),
    HostConfig("table-spaces", table_names("chat messages", "chat sessions"), ALL_BUT_STATEFUL),
    HostConfig("table-non-ascii", table_names("nachrichten_ä", "会话"), ALL_BUT_STATEFUL),
    HostConfig("table-mixed-case", table_names("ChatMessages", "Chat_Sessions"), ALL_BUT_STATEFUL),
)

PENDING_CONFIGS: dict[str, int] = {}
"""Configurations that fail today -> the issue-10 defect that makes them fail."""


def _collected() -> list[HostConfig]:
    if os.environ.get(PENDING_ENV):
        return list(CONFIGS)
    return [c for c in CONFIGS if c.name not in PENDING_CONFIGS]


def test_pending_configs_are_configs() -> None:
    names = {c.name for c in CONFIGS}
    assert len(names) == len(CONFIGS), "two configurations share a name"
    assert set(PENDING_CONFIGS) <= names, set(PENDING_CONFIGS) - names
    assert all(1 <= defect <= 11 for defect in PENDING_CONFIGS.values())


TEXTS = ("café naïve façade", "✓ 日本語 👋")
"""Text every database that holds Latin-1 must keep, then text only some can."""


async def _stored_texts(target: HostTarget, thread_id: str, message_id: str) -> list[str]:
    # Values as literals, no parameters: a table name may hold a "%".
    async with await target.plain.aconnect() as conn:
        cursor = await conn.execute(
            sql.SQL(
                "SELECT parts_json -> 0 ->> 'text' FROM {} WHERE thread_id = {} AND message_id = {}"
            ).format(target.messages, sql.Literal(thread_id), sql.Literal(message_id))
        )
        return [str(row[0]) for row in await cursor.fetchall()]


async def _write_foreign(target: HostTarget, thread_id: str, message_id: str, text: str) -> None:
    async with await target.plain.aconnect() as conn:
        await conn.execute(
            sql.SQL(
                "INSERT INTO {} (thread_id, message_id, role, parts_json)"
                " VALUES ({}, {}, 'user', jsonb_build_array("
                "jsonb_build_object('type', 'text', 'text', {}::text)))"
            ).format(
                target.messages, sql.Literal(thread_id), sql.Literal(message_id), sql.Literal(text)
            )
        )


async def _second_client_agrees(adapter: PersistenceAdapter, target: HostTarget) -> None:
    """What the adapter stores, a plain UTF-8 client reads as the same text; text the
    database cannot hold is a typed error with nothing written; a row the plain
    client wrote, the adapter reads as written. (The thread is left for the
    configuration's schema to take away, so an adapter error is reported as is.)"""
    thread_id = f"host-{uuid.uuid4().hex}"
    for i, text in enumerate(TEXTS):
        message_id = f"m{i}"
        try:
            await adapter.save_messages(thread_id, [Message(message_id, "user", (TextPart(text),))])
        except PersistenceError:
            assert i > 0, f"{text!r} must be storable"
            assert await _stored_texts(target, thread_id, message_id) == []
            continue
        assert await _stored_texts(target, thread_id, message_id) == [text]
    await _write_foreign(target, thread_id, "foreign", "crème brûlée")
    read = await adapter.get_message(thread_id, "foreign")
    assert read is not None
    assert read.parts == (TextPart("crème brûlée"),)
    listed = {m.id: m.parts for m in await adapter.list_messages(thread_id)}
    assert listed["foreign"] == (TextPart("crème brûlée"),)
    assert listed["m0"] == (TextPart(TEXTS[0]),)


async def _open_or_refusal(adapter: PersistenceAdapter) -> ConfigError | None:
    """Open the adapter; a ``ConfigError`` it raises is returned, not raised."""
    try:
        await adapter.open()
    except ConfigError as err:
        return err
    return None


@pytest.mark.parametrize("config", _collected(), ids=lambda c: c.name)
async def test_host_configuration(config: HostConfig, host_env: HostEnv) -> None:
    async with config.build(host_env) as target:
        adapter = target.factory()
        refused = await _open_or_refusal(adapter)
        if refused is not None:
            assert config.refusal is not None, f"refused a configuration that must work: {refused}"
            assert config.refusal in str(refused).lower(), f"must name {config.refusal}: {refused}"
            return
        try:
            await _second_client_agrees(adapter, target)
        finally:
            await adapter.aclose()
        report = await arun_contract(target.factory, only=config.checks)
        assert report.passed, report.format()
        assert len(report.results) == len(config.checks or ordered_checks())
