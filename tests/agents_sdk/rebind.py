"""A pytest plugin for the SDK's own session tests: ``SQLiteSession`` (and the HITL
scenario's ``SimpleListSession``) become factories of ``ChatPersistenceSession`` over
the backend that ``CP_AGENTS_SDK_BACKEND`` names. Loaded with ``-p agents_sdk.rebind``
in a pytest run rooted in the SDK's sdist.

Tests of ``SQLiteSession``'s own machinery are deselected (``DESELECTED``, with
why); each outcome is written as JSON to ``CP_AGENTS_SDK_REPORT``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from agents_sdk.backends import (
    db_key,
    fresh_key,
    memory_url,
    postgres_tables,
    postgres_url,
    sqlite_url,
)
from chat_persistence_openai_agents import ChatPersistenceSession

_MACHINERY = "tests SQLiteSession's own machinery: "
DESELECTED: dict[str, str] = {
    "tests/memory/test_session.py::"
    "test_await_mutation_cancellation_hides_later_failure_without_loop_error": _MACHINERY
    + "its private _await_mutation helper, not a session",
    "tests/memory/test_session.py::test_sqlite_session_close_closes_worker_thread_connections": (
        _MACHINERY + "its per-thread sqlite3 connections (session._connections)"
    ),
    "tests/memory/test_session.py::"
    "test_sqlite_session_reaps_connections_from_exited_worker_threads": _MACHINERY
    + "its per-thread sqlite3 connections (session._connections)",
    "tests/memory/test_session.py::"
    "test_sqlite_session_closes_retired_connections_before_the_next_allocation": _MACHINERY
    + "its connection threads, by patching sqlite3.connect",
    "tests/memory/test_session.py::test_sqlite_session_keeps_connections_of_live_worker_threads": (
        _MACHINERY + "its per-thread sqlite3 connections (session._connections)"
    ),
    "tests/memory/test_session.py::test_sqlite_session_closed_rejects_empty_add_items": (
        "asserts SQLiteSession's own error text ('SQLiteSession is closed'); the same"
        " behaviour, with our SessionClosedError, is tests/test_openai_agents_session.py::"
        "test_closed_session_rejects_every_operation"
    ),
    "tests/memory/test_session.py::test_sqlite_session_pop_item_skips_corrupt_most_recent": (
        _MACHINERY + "rows corrupted through its private agent_messages table"
    ),
    "tests/memory/test_session.py::"
    "test_sqlite_session_pop_item_returns_none_after_dropping_only_corrupt_rows": _MACHINERY
    + "rows corrupted through its private agent_messages table",
    "tests/memory/test_session.py::test_sqlite_session_get_items_limit_skips_corrupt_newest_rows": (
        _MACHINERY + "rows corrupted through its private agent_messages table"
    ),
    "tests/memory/test_session.py::"
    "test_sqlite_session_get_items_session_settings_limit_skips_corrupt_rows": _MACHINERY
    + "rows corrupted through its private agent_messages table",
    "tests/memory/test_session.py::test_sqlite_session_file_lock_is_shared_across_instances": (
        _MACHINERY + "its process-wide file locks (SQLiteSession._file_locks)"
    ),
    "tests/memory/test_session.py::test_sqlite_session_failed_add_items_releases_write_lock": (
        _MACHINERY + "its rollback path, probed through its private agent_sessions table"
    ),
    "tests/memory/test_session.py::test_sqlite_session_failed_clear_session_rolls_back": (
        _MACHINERY + "its rollback path, by dropping its private agent_sessions table"
    ),
    "tests/memory/test_session.py::test_sqlite_session_failed_pop_item_releases_write_lock": (
        _MACHINERY + "its rollback path, by dropping its private agent_messages table"
    ),
    "tests/memory/test_session.py::test_sqlite_session_rollback_failure_evicts_connection": (
        _MACHINERY + "its rollback path, on a connection patched into session._connections"
    ),
    "tests/memory/test_session.py::test_sqlite_session_close_retries_quarantined_connection": (
        _MACHINERY + "its quarantined connections (session._quarantined_connections)"
    ),
}
"""Node ids (a parametrized test: every case) left out, each with why."""

# The post-commit cancellation test is parametrized; all its cases patch connections.
DESELECTED_PREFIXES: dict[str, str] = {
    "tests/memory/test_session.py::"
    "test_sqlite_session_post_commit_cancellation_propagates_after_known_outcome": _MACHINERY
    + "its commit path, on a connection patched into session._connections; the same"
    " behaviour is tests/test_openai_agents_session.py::"
    "test_a_cancelled_write_finishes_before_the_cancellation_goes_through",
}

REBOUND = {
    "tests/memory/test_session.py": "SQLiteSession",
    "tests/memory/test_session_limit.py": "SQLiteSession",
    "tests/test_hitl_session_scenario.py": "SimpleListSession",
}
"""The module-level name each suite file's sessions are made through."""

_results: dict[str, Any] = {"tests": {}, "deselected": []}
_made: dict[str, int] = {}
_current: list[str] = []
_lock = threading.Lock()


def _url(key: str) -> str:
    backend = os.environ.get("CP_AGENTS_SDK_BACKEND", "memory")
    if backend == "memory":
        return memory_url(key)
    if backend == "postgres":
        dsn, schema = os.environ["CP_AGENTS_SDK_PG_DSN"], os.environ["CP_AGENTS_SDK_PG_SCHEMA"]
        _create_pg_tables(dsn, schema, key)
        return postgres_url(dsn, schema, key)
    if backend == "sqlite":
        return sqlite_url(os.environ["CP_AGENTS_SDK_SQLITE_DIR"], key)
    raise pytest.UsageError(f"unknown CP_AGENTS_SDK_BACKEND {backend!r}")


_created: set[str] = set()


def _create_pg_tables(dsn: str, schema: str, key: str) -> None:
    """The reference tables of ``key``, made once per run (every session on one
    ``db_path`` shares them)."""
    import psycopg

    from chat_persistence_postgres import reference_ddl

    with _lock:
        if key in _created:
            return
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(reference_ddl(postgres_tables(schema, key)).encode())
        _created.add(key)


def _count() -> None:
    with _lock:
        if _current:
            _made[_current[0]] = _made.get(_current[0], 0) + 1


def sqlite_session(
    session_id: str,
    db_path: str | Path = ":memory:",
    sessions_table: str = "agent_sessions",
    messages_table: str = "agent_messages",
    session_settings: Any = None,
) -> ChatPersistenceSession:
    """``SQLiteSession``'s signature: a session per file (a fresh store per ``:memory:``)."""
    _count()
    key = f"{db_key(db_path)}|{sessions_table}|{messages_table}"
    return ChatPersistenceSession.from_url(session_id, _url(key), session_settings=session_settings)


def simple_list_session(
    session_id: str = "test", history: list[Any] | None = None
) -> ChatPersistenceSession:
    """``SimpleListSession``'s signature: a fresh store, holding ``history`` if given."""
    _count()
    url = _url(fresh_key())
    if history:
        # A constructor cannot await, and a loop runs here: seed from a thread's own loop.
        _in_thread(lambda: asyncio.run(_seed(session_id, url, history)))
    return ChatPersistenceSession.from_url(session_id, url)


async def _seed(session_id: str, url: str, history: list[Any]) -> None:
    async with ChatPersistenceSession.from_url(session_id, url) as seeder:
        await seeder.add_items(history)


def _in_thread(coro_fn: Any) -> Any:
    """Run ``asyncio.run`` from a thread of its own when a loop already runs here."""
    result: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(coro_fn())
        except BaseException as exc:
            error.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if error:
        raise error[0]
    return result[0] if result else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    seen = {item.nodeid.split("[")[0] for item in items}
    stale = sorted((set(DESELECTED) | set(DESELECTED_PREFIXES)) - seen)
    if stale:
        raise pytest.UsageError(f"deselection list names tests that are not there: {stale}")
    keep = [i for i in items if i.nodeid.split("[")[0] not in {**DESELECTED, **DESELECTED_PREFIXES}]
    dropped = [i for i in items if i not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    _results["deselected"] = [i.nodeid for i in dropped]


@pytest.fixture(autouse=True)
def _rebind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    path = request.node.nodeid.split("::")[0]
    name = REBOUND.get(path)
    if name is not None:
        factory = sqlite_session if name == "SQLiteSession" else simple_list_session
        module = cast(types.ModuleType, request.module)
        monkeypatch.setattr(module, name, factory)
    with _lock:
        _current[:] = [request.node.nodeid]
    yield
    with _lock:
        _current.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _results["tests"].setdefault(report.nodeid, {"outcome": "not run"})
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
    elif report.skipped:
        entry["outcome"] = "skipped"
    elif report.when == "call" and entry["outcome"] == "not run":
        entry["outcome"] = "passed"


def pytest_collection_finish(session: pytest.Session) -> None:
    for item in session.items:
        path = item.nodeid.split("::")[0]
        name = REBOUND.get(path)
        obj: Any = getattr(item, "obj", None)
        function = inspect.unwrap(obj) if callable(obj) else None
        code = getattr(function, "__code__", None)
        uses = bool(name and code is not None and name in code.co_names)
        _results["tests"].setdefault(item.nodeid, {"outcome": "not run"})["uses_rebound"] = uses


def pytest_sessionfinish(session: pytest.Session) -> None:
    for nodeid, count in _made.items():
        _results["tests"].setdefault(nodeid, {})["sessions_made"] = count
    target = os.environ.get("CP_AGENTS_SDK_REPORT")
    if target:
        Path(target).write_text(json.dumps(_results, indent=1, sort_keys=True))
