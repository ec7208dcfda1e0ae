"""The contract suite itself: its table of checks, the runner and its report, cleanup on
a shared store, and the pytest door (capability skips, failures, strict asyncio mode)."""

import asyncio
import keyword
import uuid
from collections.abc import Sequence
from datetime import datetime

import pytest

from broken_adapters import BrokenMemory, LimitKeepsOldest
from chat_persistence import (
    Message,
    PersistenceAdapter,
    Session,
    StorageUnavailableError,
    create_adapter,
)
from chat_persistence_contract import (
    CheckContext,
    ContractReport,
    ContractSettings,
    PersistenceAdapterContract,
    arun_contract,
    ordered_checks,
    run_contract,
)
from chat_persistence_contract._builders import text_message
from chat_persistence_memory import MemoryPersistence

pytest_plugins = ["pytester"]


def test_every_check_has_a_name_a_description_and_a_test_method() -> None:
    checks = ordered_checks()
    names = [c.name for c in checks]
    assert len(names) == len(set(names)) >= 60
    for check in checks:
        assert check.name.isidentifier()
        assert not keyword.iskeyword(check.name)
        assert check.description.endswith("."), check.name
        method = getattr(PersistenceAdapterContract, f"test_{check.name}")
        assert method.__doc__ == check.description
    assert names[0] == "implements_protocol"
    assert names[-1] == "stateful_random_operations"


def test_run_contract_reports_every_check_and_the_skips() -> None:
    report = run_contract("memory://")
    assert report.passed
    assert [r.name for r in report.results] == [c.name for c in ordered_checks()]
    assert [(r.name, r.reason) for r in report.skipped] == [
        ("data_survives_reopening", "the adapter does not declare capability durable")
    ]
    assert report.target == "memory://"
    assert report.capabilities == ("any-loop", "ties-in-save-order")
    assert all(r.duration >= 0 for r in report.results)


async def test_only_runs_the_named_checks_and_rejects_unknown_names() -> None:
    report = await arun_contract(
        "memory://", only=["limit_keeps_the_newest", "implements_protocol"]
    )
    assert [r.name for r in report.results] == ["implements_protocol", "limit_keeps_the_newest"]
    with pytest.raises(ValueError, match=r"unknown contract check.*no_such_check"):
        await arun_contract("memory://", only=["no_such_check"])


async def test_the_report_is_readable() -> None:
    report = await arun_contract(
        LimitKeepsOldest,
        only=["implements_protocol", "limit_keeps_the_newest", "data_survives_reopening"],
    )
    text = report.format()
    lines = text.splitlines()
    assert lines[0] == "chat-persistence contract: LimitKeepsOldest"
    assert lines[1] == "capabilities: any-loop, ties-in-save-order"
    assert lines[2].startswith("  PASS implements_protocol")
    assert lines[3].startswith("  FAIL limit_keeps_the_newest")
    assert lines[4].startswith("      limit=3: expected ids [")
    assert any(line.startswith("  SKIP data_survives_reopening") for line in lines)
    assert lines[-1] == "1 passed, 1 failed, 1 skipped of 3 checks: FAILED"
    assert report.failed_names == {"limit_keeps_the_newest"}
    assert not report.passed


def test_a_report_without_failures_passes_even_with_skips() -> None:
    report = ContractReport(())
    assert report.passed
    assert report.format().endswith("0 passed, 0 failed, 0 skipped of 0 checks: PASSED")


async def test_no_target_means_the_configured_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_PERSISTENCE_URL", "memory://contract-from-env")
    report = await arun_contract(None, only=["data_survives_reopening"])
    assert report.target == "memory://contract-from-env"
    assert [r.outcome for r in report.results] == ["passed"]


async def test_a_password_in_the_url_is_not_reported() -> None:
    report = await arun_contract("memory://user:s3cret@contract-pw", only=["implements_protocol"])
    assert report.passed
    assert "s3cret" not in report.format()
    assert report.target == "memory://user:***@contract-pw"


class _CannotOpen(BrokenMemory):
    async def _open(self) -> None:
        raise StorageUnavailableError("test", "connection refused")


async def test_an_adapter_that_cannot_open_fails_the_run() -> None:
    report = await arun_contract(_CannotOpen)
    assert not report.passed
    assert [r.name for r in report.results] == ["open"]
    assert "could not open the adapter: StorageUnavailableError" in report.results[0].reason


class _HangingSchema(BrokenMemory):
    async def _validate_schema(self) -> None:
        await asyncio.Event().wait()


async def test_a_hanging_check_fails_after_the_timeout() -> None:
    report = await arun_contract(
        _HangingSchema, only=["validate_schema_passes"], settings=ContractSettings(timeout=0.2)
    )
    assert [(r.name, r.reason) for r in report.failed] == [
        ("validate_schema_passes", "did not finish within 0.2 s")
    ]


class _Recording(MemoryPersistence):
    """A named memory store that records every thread written to and deleted."""

    def __init__(self, store: str, written: set[str], deleted: set[str]) -> None:
        super().__init__(store=store)
        self.written, self.deleted = written, deleted

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        stored = await super().save_messages(thread_id, messages)
        self.written.add(thread_id)
        return stored

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        stored = await super().save_session(session, expected_updated_at=expected_updated_at)
        self.written.add(stored.thread_id)
        return stored

    async def archive_session(self, session_id: str, *, thread_id: str) -> Session:
        stored = await super().archive_session(session_id, thread_id=thread_id)
        self.written.add(thread_id)
        return stored

    async def delete_thread(self, thread_id: str) -> None:
        self.deleted.add(thread_id)
        await super().delete_thread(thread_id)


async def test_the_suite_cleans_up_and_leaves_other_data_alone() -> None:
    store = f"contract-{uuid.uuid4().hex}"
    written: set[str] = set()
    deleted: set[str] = set()
    async with MemoryPersistence(store=store) as owner:
        kept = await owner.save_messages("user-thread", [text_message("mine")])
        report = await arun_contract(lambda: _Recording(store, written, deleted))
        assert report.passed, report.format()
        assert not report.skipped
        assert len(written) > 100
        assert written <= deleted
        assert all(t.startswith("contract-") for t in written)
        for thread_id in written:
            assert await owner.list_messages(thread_id) == []
            assert await owner.list_sessions(thread_id, include_archived=True) == []
        assert await owner.list_messages("user-thread") == kept


async def test_the_context_hands_out_fresh_ids() -> None:
    adapter: PersistenceAdapter = create_adapter("memory://")
    async with adapter:
        context = CheckContext(adapter)
        threads = {context.thread_id() for _ in range(50)}
        sessions = {context.session_id() for _ in range(50)}
        assert len(threads) == len(sessions) == 50
        assert all(t.startswith("contract-") and len(t) == 41 for t in threads | sessions)
        await adapter.save_messages(next(iter(threads)), [text_message("m")])
        await context.cleanup()
        assert all([await adapter.list_messages(t) == [] for t in threads])


def test_the_pytest_plugin_registers_the_marker(pytestconfig: pytest.Config) -> None:
    markers: list[str] = pytestconfig.getini("markers")
    assert any(m.startswith("contract:") for m in markers)


_DOOR = """
import pytest_asyncio
from chat_persistence import create_adapter
from chat_persistence_memory import MemoryPersistence
from chat_persistence_contract import PersistenceAdapterContract


class TestPrivateMemory(PersistenceAdapterContract):
    @pytest_asyncio.fixture
    async def adapter(self):
        async with create_adapter("memory://") as adapter:
            yield adapter


class OldestFirst(MemoryPersistence):
    async def list_messages(self, thread_id, *, limit=None, **filters):
        found = await super().list_messages(thread_id, **filters)
        return found if limit is None else found[:limit]


class TestBroken(PersistenceAdapterContract):
    @pytest_asyncio.fixture
    async def adapter(self):
        async with OldestFirst() as adapter:
            yield adapter


class TestForgotTheFixture(PersistenceAdapterContract):
    pass
"""


def test_the_pytest_door_skips_fails_and_explains(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_door=_DOOR)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rfEs", "-k", "not stateful")
    count = len(ordered_checks()) - 1
    outcomes = result.parseoutcomes()
    assert outcomes["skipped"] == 2
    assert outcomes["errors"] == count
    for line in (
        "*SKIPPED*the adapter does not declare capability durable",
        "E*ContractViolation: limit=3: expected ids*",
        "*TestForgotTheFixture must define an 'adapter' fixture*",
    ):
        result.stdout.fnmatch_lines([line])
    failed = {
        line.split("::")[-1].split(" ")[0] for line in result.outlines if line.startswith("FAILED")
    }
    assert "test_limit_keeps_the_newest" in failed
    assert outcomes["passed"] == 2 * count - len(failed) - 2
