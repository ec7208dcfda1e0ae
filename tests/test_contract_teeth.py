"""The contract suite has teeth: it fails on every deliberately broken adapter, naming
the checks that catch it, and passes on the real backends."""

from typing import Any

import pytest

from broken_adapters import BROKEN_ADAPTERS, WrappedMemory
from chat_persistence_contract import arun_contract, ordered_checks


def test_the_broken_adapters_break_many_different_rules() -> None:
    rules = {adapter.broken_rule for adapter in BROKEN_ADAPTERS}
    assert len(rules) == len(BROKEN_ADAPTERS) >= 10
    names = {check.name for check in ordered_checks()}
    for adapter in BROKEN_ADAPTERS:
        assert adapter.caught_by, adapter.__name__
        assert adapter.caught_by <= names, adapter.caught_by - names
    stateful = [a for a in BROKEN_ADAPTERS if "stateful_random_operations" in a.caught_by]
    assert len(stateful) >= 10


@pytest.mark.parametrize("broken", BROKEN_ADAPTERS, ids=lambda adapter: adapter.__name__)
async def test_the_contract_fails_on_a_broken_adapter(broken: type[WrappedMemory]) -> None:
    report = await arun_contract(broken)
    assert not report.passed
    missed = broken.caught_by - report.failed_names
    assert not missed, f"{broken.__name__} escaped {sorted(missed)}:\n{report.format()}"
    for result in report.failed:
        assert result.reason, result.name
    if "stateful_random_operations" in report.failed_names:
        reason = next(r.reason for r in report.failed if r.name == "stateful_random_operations")
        assert "state = ContractMachine()" in reason


async def test_the_unbroken_wrapper_passes() -> None:
    report = await arun_contract(WrappedMemory)
    assert report.passed, report.format()


@pytest.mark.parametrize(
    "target",
    ["memory://", "memory://contract-teeth-shared", {"backend": "memory"}],
    ids=["private", "named", "mapping"],
)
async def test_the_contract_passes_on_the_memory_backend(target: Any) -> None:
    report = await arun_contract(target)
    assert report.passed, report.format()
    assert len(report.results) == len(ordered_checks())
    durable = target == "memory://contract-teeth-shared"
    skipped = {r.name for r in report.skipped}
    assert skipped == (set() if durable else {"data_survives_reopening"})
