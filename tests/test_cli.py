"""The ``chat-persistence`` command line (SPEC §7), through click's runner with
real backends, one real PostgreSQL and one real subprocess."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from hypothesis import assume, given
from hypothesis import strategies as st
from psycopg import sql

import chat_persistence
from chat_persistence import (
    PersistenceAdapter,
    Registry,
    SchemaMismatchError,
    StorageUnavailableError,
)
from chat_persistence._cli import main
from chat_persistence.storage import redact
from chat_persistence_memory import MemoryPersistence
from chat_persistence_postgres import reference_ddl
from fix_pg import PgSchema
from plugin_dists import Provides, backend, install_broken_plugin

EXIT_FAILED = 1
EXIT_CONFIG = 2


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAT_PERSISTENCE_URL", raising=False)
    monkeypatch.delenv("CHAT_PERSISTENCE_PLUGINS", raising=False)


def run(args: Sequence[str], registry: Registry | None = None) -> Result:
    """Invoke the CLI in-process; ``registry`` replaces the process-wide one."""
    return CliRunner().invoke(main, list(args), obj=registry, prog_name="chat-persistence")


def assert_clean_error(result: Result, code: int, *fragments: str) -> None:
    """A one-line message on stderr, the given exit status, no traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


# -- help ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["backends", "ddl", "check", "contract", "demo"])
def test_every_command_has_help(command: str) -> None:
    result = run([command, "--help"])
    assert result.exit_code == 0
    assert f"Usage: chat-persistence {command}" in result.output


def test_main_help_lists_every_command() -> None:
    result = run(["--help"])
    assert result.exit_code == 0
    for command in ("backends", "ddl", "check", "contract", "demo"):
        assert command in result.output


# -- backends -------------------------------------------------------------------------


@pytest.fixture
def only_our_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other plugins installed in this environment must not change the listings."""
    monkeypatch.setenv("CHAT_PERSISTENCE_PLUGINS", "memory,postgres,brokenplug")


@pytest.mark.usefixtures("only_our_plugins")
def test_backends_lists_installed_backends_in_a_table() -> None:
    result = run(["backends"], Registry())
    assert result.exit_code == 0
    header, *rows = [line.split() for line in result.output.splitlines() if line.startswith("  ")]
    assert header == ["NAME", "SCHEMES", "DISTRIBUTION", "VERSION", "DESCRIPTION"]
    by_name = {row[0]: row for row in rows}
    assert by_name["memory"][1:4] == ["memory://", "chat-persistence-memory", "0.1.0"]
    assert by_name["postgres"][1:3] == ["postgres://,", "postgresql://"]
    assert "failed" not in result.output


def test_backends_shows_hand_registered_plugins() -> None:
    registry = Registry()
    registry.register_plugin(Provides(backend("fake")))
    result = run(["backends"], registry)
    assert result.exit_code == 0
    [row] = [line for line in result.output.splitlines() if line.startswith("  fake ")]
    assert "(registered by hand)" in row
    assert "The fake test backend." in row
    assert "It keeps messages" not in row  # the first sentence only


@pytest.mark.usefixtures("only_our_plugins")
def test_backends_lists_a_broken_entry_point_and_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_broken_plugin(tmp_path, monkeypatch)
    result = run(["backends"], Registry())
    assert result.exit_code == 0
    installed, failed = result.output.split("Plugins that failed to load (1):")
    assert "memory" in installed
    assert "postgres" in installed
    assert "plugin 'brokenplug' from broken-plugin-dist 1.0" in failed
    assert "RuntimeError: broken plugin: this module fails at import" in failed
    assert "CHAT_PERSISTENCE_PLUGINS" in failed


@pytest.mark.usefixtures("only_our_plugins")
def test_backends_lists_a_backend_claimed_twice_once() -> None:
    registry = Registry()
    registry.register_plugin(Provides(backend("twin")), name="one")
    registry.register_plugin(Provides(backend("twin")), name="two")
    result = run(["backends"], registry)
    assert result.exit_code == 0
    _, failed = result.output.split("Plugins that failed to load (1):")
    assert "backend 'twin'" in failed
    assert "'one'" in failed
    assert "'two'" in failed


def test_backends_with_nothing_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_PERSISTENCE_PLUGINS", "")
    result = run(["backends"], Registry())
    assert result.exit_code == 0
    assert "No backends installed" in result.output


# -- ddl --------------------------------------------------------------------------------


def test_ddl_prints_the_postgres_reference_tables() -> None:
    result = run(["ddl"])
    assert result.exit_code == 0
    text = result.output.lower()
    assert "create table chat_messages" in text
    assert "create table chat_sessions" in text
    for column in ("thread_id", "message_id", "parts_json", "sdk_version", "archived_at"):
        assert column in text


def test_ddl_uses_the_given_table_names() -> None:
    result = run(["ddl", "--messages-table", "app.msgs", "--sessions-table", "app.sess"])
    assert result.exit_code == 0
    assert "chat_messages" not in result.output
    assert re.search(r'"?app"?\."?msgs"?', result.output)
    assert re.search(r'"?app"?\."?sess"?', result.output)


def test_ddl_of_a_backend_without_tables_is_a_clear_error() -> None:
    assert_clean_error(run(["ddl", "--backend", "memory"]), EXIT_CONFIG, "no reference DDL")


def test_ddl_of_an_unknown_backend_is_a_clear_error() -> None:
    assert_clean_error(
        run(["ddl", "--backend", "postgress"]), EXIT_CONFIG, "did you mean 'postgres'?"
    )


def test_ddl_of_a_hand_registered_backend() -> None:
    def reference_ddl(tables: Mapping[str, str]) -> str:
        return f"-- {tables['messages']} {tables['sessions']}\n"

    registry = Registry()
    registry.register_plugin(Provides(backend("sqlish", reference_ddl=reference_ddl)))
    result = run(["ddl", "--backend", "sqlish", "--messages-table", "m"], registry)
    assert result.exit_code == 0
    assert result.output == "-- m chat_sessions\n"


@pytest.mark.parametrize("second", ["app.chat", '"app"."chat"', 'app."chat"'])
def test_ddl_with_one_name_for_both_tables_is_exit_2(second: str) -> None:
    result = run(["ddl", "--messages-table", "app.chat", "--sessions-table", second])
    assert_clean_error(result, EXIT_CONFIG, "two names")


# -- check --------------------------------------------------------------------------------


class DriftedMemory(MemoryPersistence):
    """A store whose schema lacks a table and two columns."""

    async def validate_schema(self) -> None:
        raise SchemaMismatchError(["app.sessions"], {"app.messages": ["parts_json", "role"]})


class UnreachableMemory(MemoryPersistence):
    """A store that cannot be reached."""

    async def _open(self) -> None:
        try:
            raise ConnectionRefusedError("connection refused on port 1")
        except ConnectionRefusedError as err:
            raise StorageUnavailableError("unreachable", "cannot connect") from err


def registry_providing(name: str, adapter: type[MemoryPersistence]) -> Registry:
    def factory(options: Any) -> PersistenceAdapter:
        return adapter()

    registry = Registry()
    registry.register_plugin(Provides(backend(name, factory=factory)))
    return registry


def test_check_on_memory_is_ok() -> None:
    result = run(["check", "memory://"])
    assert result.exit_code == 0
    assert result.output.startswith("OK: memory://")


def test_check_lists_every_missing_table_and_column_and_exits_1() -> None:
    result = run(["check", "drifted://db"], registry_providing("drifted", DriftedMemory))
    assert result.exit_code == EXIT_FAILED
    assert "missing table app.sessions" in result.output
    assert "table app.messages: missing column parts_json" in result.output
    assert "table app.messages: missing column role" in result.output
    assert "Traceback" not in result.output


def test_check_on_an_unreachable_store_exits_2_with_the_cause() -> None:
    result = run(["check", "unreachable://"], registry_providing("unreachable", UnreachableMemory))
    assert_clean_error(result, EXIT_CONFIG, "cannot connect", "connection refused on port 1")


def test_check_with_an_unknown_scheme_exits_2() -> None:
    assert_clean_error(run(["check", "mongo://x"]), EXIT_CONFIG, "no backend handles")


def test_check_with_an_unknown_option_exits_2() -> None:
    assert_clean_error(
        run(["check", "memory://?colour=red"]), EXIT_CONFIG, "unknown option 'colour'"
    )


def with_tables(dsn: str, schema: PgSchema) -> str:
    tables = schema.tables()
    query = f"messages_table={tables['messages']}&sessions_table={tables['sessions']}"
    return f"{dsn}{'&' if '?' in dsn else '?'}{query}"


def test_ddl_output_passes_check_on_a_real_postgres(pg_schema: PgSchema) -> None:
    tables = pg_schema.tables()
    ddl = run(
        ["ddl", "--messages-table", tables["messages"], "--sessions-table", tables["sessions"]]
    )
    assert ddl.exit_code == 0
    with psycopg.connect(pg_schema.dsn, autocommit=True) as conn:
        conn.execute(ddl.output.encode())
    url = with_tables(pg_schema.dsn, pg_schema)
    ok = run(["check", url])
    assert ok.exit_code == 0, ok.output
    assert "matches the column contract" in ok.output

    with psycopg.connect(pg_schema.dsn, autocommit=True) as conn:
        messages = pg_schema.qualified("chat_messages")
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN role TYPE varchar(5)").format(messages))
    assert run(["check", url]).exit_code == 0  # the default probe checks presence only
    strict = run(["check", f"{url}&strict_schema=true"])
    assert strict.exit_code == EXIT_FAILED
    [problem] = strict.output.splitlines()[1:-1]
    assert "role is character varying, expected text" in problem

    with psycopg.connect(pg_schema.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER TABLE {} DROP COLUMN parts_json").format(messages))
        conn.execute(sql.SQL("DROP TABLE {}").format(pg_schema.qualified("chat_sessions")))
    drifted = run(["check", url])
    assert drifted.exit_code == EXIT_FAILED
    assert "missing column parts_json" in drifted.output
    assert "missing table" in drifted.output
    assert "chat_sessions" in drifted.output


@pytest.fixture
def broken_tables_url(pg_schema: PgSchema) -> str:
    """Tables with every column, but no key on messages and an integer sdk_version."""
    ddl = reference_ddl(pg_schema.tables())
    ddl = ddl.replace("sdk_version text", "sdk_version integer")
    ddl = ddl.replace(",\n  primary key (thread_id, message_id)", "")
    with psycopg.connect(pg_schema.dsn, autocommit=True) as conn:
        conn.execute(ddl.encode())
    return with_tables(pg_schema.dsn, pg_schema)


def test_check_fails_on_what_breaks_at_run_time_with_exit_1(broken_tables_url: str) -> None:
    result = run(["check", broken_tables_url])
    assert result.exit_code == EXIT_FAILED, result.output
    assert "chat_sessions.sdk_version is integer, expected text" in result.output
    assert "has no primary key (or unique index) on (thread_id, message_id)" in result.output
    assert "Traceback" not in result.output


def test_demo_on_tables_it_cannot_use_is_one_line_exit_1(broken_tables_url: str) -> None:
    result = run(["demo", broken_tables_url])
    assert_clean_error(result, EXIT_FAILED, "failed on the tables", "chat-persistence check")


def test_ddl_for_new_schemas_runs_as_is_and_passes_check(pg_schema: PgSchema) -> None:
    schemas = [f"{pg_schema.name}_m", f"{pg_schema.name} S"]
    messages, sessions = f"{schemas[0]}.m", f'"{schemas[1]}"."S s"'
    ddl = run(["ddl", "--messages-table", messages, "--sessions-table", sessions])
    assert ddl.exit_code == 0, ddl.output
    assert ddl.output.count("create schema if not exists") == 2
    try:
        with psycopg.connect(pg_schema.dsn, autocommit=True) as conn:
            conn.execute(ddl.output.encode())
        url = f"{pg_schema.dsn}{'&' if '?' in pg_schema.dsn else '?'}"
        url += f"messages_table={messages}&sessions_table=%22{schemas[1]}%22.%22S%20s%22"
        ok = run(["check", f"{url}&strict_schema=true"])
        assert ok.exit_code == 0, ok.output
    finally:
        with psycopg.connect(pg_schema.dsn, autocommit=True) as conn:
            for schema in schemas:
                drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                conn.execute(drop.format(sql.Identifier(schema)))


# -- contract ----------------------------------------------------------------------------------


def test_contract_runs_the_named_checks_and_exits_0_when_they_pass() -> None:
    result = run(
        [
            "contract",
            "memory://",
            "--only",
            "archive_twice_keeps_the_first_time",
            "--only",
            "rejects_empty_role",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "archive_twice_keeps_the_first_time" in result.output
    assert "rejects_empty_role" in result.output
    assert "delete_thread_removes_messages_and_sessions" not in result.output


class ForgetfulMemory(MemoryPersistence):
    """Breaks a rule: ``delete_thread`` deletes nothing."""

    async def delete_thread(self, thread_id: str) -> None:
        self._check_open()


@pytest.fixture
def forgetful_backend() -> Iterator[str]:
    def factory(options: Any) -> PersistenceAdapter:
        return ForgetfulMemory()

    plugin = Provides(backend(f"forgetful-{uuid.uuid4().hex[:6]}", factory=factory))
    name = chat_persistence.register_plugin(plugin)
    try:
        yield plugin.backends[0].name
    finally:
        chat_persistence.unregister_plugin(name)


def test_contract_exits_1_when_a_check_fails(forgetful_backend: str) -> None:
    result = run(
        ["contract", forgetful_backend, "--only", "delete_thread_removes_messages_and_sessions"]
    )
    assert result.exit_code == EXIT_FAILED
    assert "delete_thread_removes_messages_and_sessions" in result.output
    assert "FAIL" in result.output


def test_contract_with_an_unknown_check_exits_2() -> None:
    assert_clean_error(
        run(["contract", "memory://", "--only", "no_such_check"]), EXIT_CONFIG, "no_such_check"
    )


def test_contract_without_the_suite_installed_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "chat_persistence_contract", None)
    assert_clean_error(
        run(["contract", "memory://"]), EXIT_CONFIG, "pip install chat-persistence-contract"
    )


# -- demo -----------------------------------------------------------------------------------


def sections(output: str) -> dict[str, str]:
    """The demo's output split at each ``list_...`` explanation."""
    found: dict[str, str] = {}
    for block in re.split(r"\n(?=list_)", output):
        found[block.split(":", 1)[0]] = block
    return found


def test_demo_shows_the_archive_rules() -> None:
    result = run(["demo"])
    assert result.exit_code == 0, result.output
    out = sections(result.output)
    default = out["list_messages(thread)"]
    assert "And tomorrow?" in default
    assert "Tomorrow looks clear too." in default
    assert "Lisbon" not in default  # session 1 is archived
    browser = out["list_messages(thread, session_id=<session 1>)"]
    assert "What's the weather in Lisbon?" in browser
    for kind in ("reasoning", "tool-call get_weather", "tool-result get_weather", "text "):
        assert kind in browser
    assert "And tomorrow?" not in browser
    live = out["list_sessions(thread)"]
    assert "session 2" in live
    assert "session 1" not in live
    every = out["list_sessions(thread, include_archived=True)"]
    [first] = [line for line in every.splitlines() if line.startswith("  session 1")]
    [second] = [line for line in every.splitlines() if line.startswith("  session 2")]
    assert not first.rstrip().endswith("-")  # archived_at is set
    assert second.rstrip().endswith("-")  # not archived
    assert "kept the first archived_at" in result.output


def demo_thread(output: str) -> str:
    found = re.search(r"thread (demo-[0-9a-f]{12})", output)
    assert found is not None, output
    return found.group(1)


async def stored_sessions(store_url: str, thread: str) -> int:
    async with chat_persistence.create_adapter(store_url) as adapter:
        return len(await adapter.list_sessions(thread, include_archived=True))


async def test_demo_deletes_its_thread_from_a_durable_store() -> None:
    url = f"memory://cli-demo-{uuid.uuid4().hex}"  # a named store outlives its adapter
    result = await _run_in_thread(["demo", url])
    assert result.exit_code == 0, result.output
    thread = demo_thread(result.output)
    assert f"Deleted thread {thread}" in result.output
    assert await stored_sessions(url, thread) == 0


async def test_demo_keep_keeps_its_thread() -> None:
    url = f"memory://cli-demo-{uuid.uuid4().hex}"
    result = await _run_in_thread(["demo", url, "--keep"])
    assert result.exit_code == 0, result.output
    thread = demo_thread(result.output)
    assert f"Kept thread {thread}" in result.output
    assert await stored_sessions(url, thread) == 2


async def _run_in_thread(args: Sequence[str]) -> Result:
    # The command runs its own event loop: keep it off this test's loop.
    return await asyncio.to_thread(run, args)


def test_demo_with_a_bad_url_is_a_one_line_error() -> None:
    assert_clean_error(run(["demo", "memroy://"]), EXIT_CONFIG, "did you mean 'memory://'?")


def test_demo_runs_as_a_real_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chat_persistence", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Session 1" in done.stdout
    assert "include_archived=True" in done.stdout
    assert done.stderr == ""


def test_the_installed_script_reports_errors_without_a_traceback() -> None:
    script = Path(sys.executable).with_name("chat-persistence")
    done = subprocess.run(
        [str(script), "check", "nosuch://x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_CONFIG
    assert done.stderr.startswith("Error: no backend handles URL scheme 'nosuch'")
    assert "Traceback" not in done.stderr


# -- hostile input: never a traceback, never a secret (issue 10) ---------------------------

SECRET = "hunter2"
UNREACHABLE = "postgresql://app:hunter2@127.0.0.1:1/chat?pool_timeout=0.5"
HOSTILE: list[tuple[list[str], int]] = [
    (["check", UNREACHABLE], EXIT_CONFIG),
    (["check", "postgresql://app@127.0.0.1:1/chat?password=hunter2&pool_timeout=0.5"], EXIT_CONFIG),
    (
        ["contract", "postgresql://app@127.0.0.1:1/chat?password=hunter2&pool_timeout=0.5"],
        EXIT_CONFIG,
    ),
    (["demo", f"{UNREACHABLE}&sslpassword=hunter2"], EXIT_CONFIG),
    (["check", "postgresql://app:hunter2@127.0.0.1:1/chat?min_size=many"], EXIT_CONFIG),
    (["check", "host=db password=hunter2"], EXIT_CONFIG),
    (["demo", "dbname=chat password='hunter2 x'"], EXIT_CONFIG),
    (["contract", "user=app password=hunter2"], EXIT_CONFIG),
    (["check", "memory://[::1"], EXIT_CONFIG),
    (["check", "memory://shared?password=hunter2"], EXIT_CONFIG),
    (["check", "memory://shared?pass%77ord=hunter2"], EXIT_CONFIG),
    (["check", "://app:hunter2@db"], EXIT_CONFIG),
    (["check", "nosuch://app:hunter2@db"], EXIT_CONFIG),
    (["check"], EXIT_CONFIG),
    (["ddl", "--messages-table", "same", "--sessions-table", "same"], EXIT_CONFIG),
    (["ddl", "--backend", "nosuch"], EXIT_CONFIG),
    (["demo", "--no-such-flag"], EXIT_CONFIG),
]


def assert_safe(output: str, code: int, expected: int) -> None:
    assert code == expected, output
    assert "Traceback" not in output
    assert SECRET not in output


@pytest.mark.parametrize(("args", "code"), HOSTILE)
def test_hostile_input_in_process_is_one_clean_line(args: list[str], code: int) -> None:
    result = run(args)
    assert_safe(result.output, result.exit_code, code)
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.startswith(("Error: ", "Usage: "))
    if result.stderr.startswith("Error: "):
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("verbosity", [[], ["-vv"]])
def test_hostile_input_through_the_installed_script(verbosity: list[str]) -> None:
    script = Path(sys.executable).with_name("chat-persistence")
    for args, code in HOSTILE:
        done = subprocess.run(
            [str(script), *verbosity, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert_safe(done.stdout + done.stderr, done.returncode, code)


def test_log_lines_are_redacted_too() -> None:
    probe = (
        "import logging\n"
        "from chat_persistence._cli import main\n"
        "main(['-vv', 'backends'], standalone_mode=False)\n"
        "logging.getLogger('psycopg.pool').warning("
        "'error connecting to postgresql://app:hunter2@db/chat?sslpassword=hunter2')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert "error connecting to postgresql://app:***@db/chat?sslpassword=***" in done.stderr
    assert SECRET not in done.stderr


class BuggyMemory(MemoryPersistence):
    """A backend with a bug: its schema probe raises what no backend should."""

    async def validate_schema(self) -> None:
        raise KeyError("postgresql://app:hunter2@db/chat")


def test_a_backend_bug_is_one_line_exit_1_without_its_secret() -> None:
    result = run(["check", "buggy://"], registry_providing("buggy", BuggyMemory))
    assert_clean_error(result, EXIT_FAILED, "unexpected KeyError", "app:***@db")
    assert SECRET not in result.output


def test_a_misspelled_url_option_is_exit_2_naming_the_nearest() -> None:
    result = run(["check", "memory://shared?sdk_versoin=app/1"])
    assert_clean_error(result, EXIT_CONFIG, "did you mean 'sdk_version'?")


def test_contract_against_missing_tables_says_so_once_and_exits_1(pg_schema: PgSchema) -> None:
    url = with_tables(pg_schema.dsn, pg_schema)  # the schema exists, its tables do not
    result = run(["contract", url])
    assert result.exit_code == EXIT_FAILED, result.output
    assert result.output.count("missing table") == 2
    assert "Contract not run: the schema does not match." in result.output
    assert "FAIL" not in result.output
    assert "Traceback" not in result.output


# -- helpers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("memory://", "memory://"),
        ("postgresql://app:s3cret@db:5432/chat", "postgresql://app:***@db:5432/chat"),
        (
            "postgresql://db/chat?password=s3cret&sslmode=require",
            "postgresql://db/chat?password=***&sslmode=require",
        ),
        ("postgresql://app@db/chat", "postgresql://app@db/chat"),
    ],
)
def test_urls_are_shown_without_passwords(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert "s3cret" not in redact(url)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://u@h/db?sslpassword=s3cret", "postgresql://u@h/db?sslpassword=***"),
        ("postgresql://u@h/db?pass%77ord=s3cret&a=1", "postgresql://u@h/db?pass%77ord=***&a=1"),
        ("postgresql://u@h/db?PASSWORD=s3cret", "postgresql://u@h/db?PASSWORD=***"),
        ("postgresql://u:s3/cret@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:s3@cret@h/db", "postgresql://u:***@h/db"),
        ("host=db password=s3cret port=5", "host=db password=*** port=5"),
        ("host=db password = 's3 cret' port=5", "host=db password = *** port=5"),
        ("host=db sslpassword=s3cret", "host=db sslpassword=***"),
        ("unknown backend 'postgresql:u:s3cret@db'", "unknown backend 'postgresql:***@db'"),
        ("URL 'memory://x?password=s3cret' is bad", "URL 'memory://x?password=***' is bad"),
        ("no secrets in host=db port=5432 here", "no secrets in host=db port=5432 here"),
    ],
)
def test_redact_masks_every_form_of_secret(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert "s3" not in redact(text)


_secrets = st.text(
    st.characters(categories=("L", "N", "P", "S"), exclude_characters="@/?#&'\"% "),
    min_size=8,
    max_size=20,
)


@given(_secrets, st.sampled_from(["password", "sslpassword", "Password", "pass%77ord"]))
def test_redact_never_shows_a_password(secret: str, key: str) -> None:
    keyword = key.replace("%77", "w")
    for template in (
        "postgresql://app:{s}@db:5432/chat?sslmode=require",
        "postgresql://app@db/chat?sslmode=require&" + key + "={s}",
        "host=db " + keyword + "={s} dbname=chat",
        "error in 'postgresql://app:{s}@db/chat': refused",
    ):
        # A secret that the rest of the text holds anyway proves nothing.
        assume(secret not in template.format(s=""))
        assert secret not in redact(template.format(s=secret))
