"""What a run requires and what an adapter lacks: ``required_capabilities`` (runner,
pytest class, ``chat-persistence contract --require``), and adapters written against
0.1, without ``delete_messages``, which pass the rest with the delete checks skipped."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import cast

import pytest
from click.testing import CliRunner

from broken_adapters import ForgetsDurable
from chat_persistence import (
    AdapterBase,
    Capability,
    Message,
    Session,
    supports_delete_messages,
    supports_stored_parts,
)
from chat_persistence._cli import main
from chat_persistence_contract import (
    AdapterFactory,
    ContractSettings,
    arun_contract,
    ordered_checks,
)
from chat_persistence_contract._runner import run_one
from chat_persistence_contract._table import CHECKS
from chat_persistence_memory import MemoryPersistence

pytest_plugins = ["pytester"]

DELETE_CHECKS = [c.name for c in ordered_checks() if c.operation == "delete_messages"]
NOT_IMPLEMENTED = "the adapter does not implement delete_messages() (new in chat-persistence 0.2)"
STORED_CHECKS = [c.name for c in ordered_checks() if c.operation == "list_stored_parts"]
NO_STORED_PARTS = "the adapter does not implement list_stored_parts() (new in chat-persistence 0.2)"


async def test_a_backend_lacking_a_required_capability_fails_naming_it() -> None:
    report = await arun_contract(ForgetsDurable, required_capabilities=["durable"])
    assert not report.passed
    failed = {r.name: r.reason for r in report.failed}
    assert set(failed) == {"declares_required_capabilities", "data_survives_reopening"}
    assert failed["declares_required_capabilities"] == (
        "the run requires capability durable, but the adapter declares only: any-loop,"
        " ties-in-save-order"
    )
    assert failed["data_survives_reopening"] == (
        "the adapter does not declare capability durable, which this run requires"
    )
    unrequired = await arun_contract(ForgetsDurable)
    assert unrequired.passed
    assert [r.name for r in unrequired.skipped] == ["data_survives_reopening"]


async def test_a_required_capability_without_a_reopen_factory_fails() -> None:
    adapter = MemoryPersistence(store=f"contract-{uuid.uuid4().hex}")
    async with adapter:
        check = CHECKS["data_survives_reopening"]
        required = frozenset({Capability.DURABLE})
        result = await run_one(check, adapter, None, ContractSettings(), required)
        assert result.outcome == "failed"
        assert "needs a factory of new adapters" in result.reason
        result = await run_one(check, adapter, None, ContractSettings())
        assert result.outcome == "skipped"


async def test_only_with_requirements_still_checks_the_declaration() -> None:
    report = await arun_contract(
        ForgetsDurable, only=["implements_protocol"], required_capabilities={Capability.DURABLE}
    )
    assert [(r.name, r.outcome) for r in report.results] == [
        ("implements_protocol", "passed"),
        ("declares_required_capabilities", "failed"),
    ]


async def test_an_unknown_required_capability_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown capability 'durabel'; known: durable, "):
        await arun_contract("memory://", required_capabilities=["durabel"])


_DOOR = """
import pytest_asyncio
from chat_persistence import Capability, create_adapter
from chat_persistence_contract import PersistenceAdapterContract


class TestPrivateMemory(PersistenceAdapterContract):
    required_capabilities = frozenset({Capability.DURABLE})

    @pytest_asyncio.fixture
    async def adapter(self):
        async with create_adapter("memory://") as adapter:
            yield adapter
"""


def test_the_pytest_class_fails_what_it_requires(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_door=_DOOR)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-rf", "-k", "required or survives or protocol"
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "E*ContractViolation: the run requires capability durable, but the adapter declares"
            " only: any-loop, ties-in-save-order",
            "the adapter does not declare capability durable, which this run requires",
        ]
    )


def test_contract_require_fails_a_backend_without_it() -> None:
    runner = CliRunner()
    args = ["contract", "memory://", "--only", "implements_protocol"]
    done = runner.invoke(main, [*args, "--require", "durable"], prog_name="chat-persistence")
    assert done.exit_code == 1, done.output
    assert "FAIL declares_required_capabilities" in done.output
    assert "the run requires capability durable" in done.output
    named = f"memory://contract-{uuid.uuid4().hex}"
    ok = ["contract", named, "--only", "data_survives_reopening"]
    done = runner.invoke(main, [*ok, "--require", "durable", "--require", "ties-in-save-order"])
    assert done.exit_code == 0, done.output
    assert "2 passed, 0 failed, 0 skipped of 2 checks: PASSED" in done.output
    done = runner.invoke(main, [*args, "--require", "durabel"])
    assert done.exit_code == 2
    assert "Invalid value for '--require'" in done.output


# -- adapters written against 0.1 ----------------------------------------------------


class OldOnTheTemplate(MemoryPersistence):
    """An ``AdapterBase`` adapter that never implemented the ``_delete_messages`` hook."""

    _delete_messages = AdapterBase._delete_messages


class OldOnTheProtocol:
    """A 0.1 adapter implementing the protocol directly: no ``delete_messages`` at all."""

    def __init__(self) -> None:
        self.inner = MemoryPersistence()
        self.capabilities = self.inner.capabilities
        self.sdk_version = self.inner.sdk_version

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> OldOnTheProtocol:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        return await self.inner.save_messages(thread_id, messages)

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        return await self.inner.list_messages(
            thread_id, session_id=session_id, limit=limit, before=before, after=after
        )

    async def get_message(self, thread_id: str, message_id: str) -> Message | None:
        return await self.inner.get_message(thread_id, message_id)

    async def delete_thread(self, thread_id: str) -> None:
        await self.inner.delete_thread(thread_id)

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        return await self.inner.save_session(session, expected_updated_at=expected_updated_at)

    async def get_session(self, session_id: str) -> Session | None:
        return await self.inner.get_session(session_id)

    async def list_sessions(
        self, thread_id: str, *, include_archived: bool = False
    ) -> list[Session]:
        return await self.inner.list_sessions(thread_id, include_archived=include_archived)

    async def archive_session(self, session_id: str, *, thread_id: str) -> Session:
        return await self.inner.archive_session(session_id, thread_id=thread_id)

    async def validate_schema(self) -> None:
        await self.inner.validate_schema()


@pytest.mark.parametrize("old", [OldOnTheTemplate, OldOnTheProtocol])
async def test_an_adapter_without_delete_messages_passes_the_rest(old: type[object]) -> None:
    assert supports_delete_messages(MemoryPersistence())
    assert not supports_delete_messages(old())
    # On the template it has list_stored_parts (derived from _list_messages).
    on_template = old is OldOnTheTemplate
    assert supports_stored_parts(old()) is on_template
    report = await arun_contract(
        cast(AdapterFactory, old),  # a 0.1 adapter lacks a member the 0.2 protocol names
        required_capabilities={Capability.TIES_IN_SAVE_ORDER},
    )
    assert report.passed, report.format()
    assert len(DELETE_CHECKS) >= 5
    skipped = {r.name: r.reason for r in report.skipped}
    assert skipped == {
        "data_survives_reopening": "the adapter does not declare capability durable",
        **dict.fromkeys(DELETE_CHECKS, NOT_IMPLEMENTED),
        **dict.fromkeys([] if on_template else STORED_CHECKS, NO_STORED_PARTS),
    }
    assert len(STORED_CHECKS) >= 2
    ran = {r.name for r in report.results if r.outcome == "passed"}
    assert set(STORED_CHECKS) <= (ran if on_template else set(skipped))
    text = report.format()
    assert all(f"SKIP {name}" in text for name in DELETE_CHECKS)
