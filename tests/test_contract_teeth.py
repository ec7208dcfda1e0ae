"""The contract suite has teeth: it fails on every deliberately broken adapter, naming
the checks that catch it, and passes on the real backends."""

from typing import Any

import pytest

from broken_adapters import BROKEN_ADAPTERS, BrokenMemory
from chat_persistence import Capability
from chat_persistence_contract import arun_contract, ordered_checks


def test_the_broken_adapters_break_many_different_rules() -> None:
    rules = {adapter.broken_rule for adapter in BROKEN_ADAPTERS}
    assert len(rules) == len(BROKEN_ADAPTERS) >= 30
    names = {check.name for check in ordered_checks()}
    for adapter in BROKEN_ADAPTERS:
        assert adapter.caught_by, adapter.__name__
        assert adapter.caught_by <= names, adapter.caught_by - names
    stateful = [a for a in BROKEN_ADAPTERS if "stateful_random_operations" in a.caught_by]
    assert len(stateful) >= 10
    optional = {"delete_messages", "list_stored_parts"}
    optional_checks = {c.name for c in ordered_checks() if c.operation in optional}
    caught = {name for adapter in BROKEN_ADAPTERS for name in adapter.caught_by}
    assert optional_checks <= caught


@pytest.mark.parametrize("broken", BROKEN_ADAPTERS, ids=lambda adapter: adapter.__name__)
async def test_the_contract_fails_on_a_broken_adapter(broken: type[BrokenMemory]) -> None:
    report = await arun_contract(broken, required_capabilities=broken.required)
    assert not report.passed
    missed = broken.caught_by - report.failed_names
    assert not missed, f"{broken.__name__} escaped {sorted(missed)}:\n{report.format()}"
    for result in report.failed:
        assert result.reason, result.name
    if "stateful_random_operations" in broken.caught_by:
        reason = next(r.reason for r in report.failed if r.name == "stateful_random_operations")
        assert "state = ContractMachine(" in reason


async def test_the_unbroken_base_passes() -> None:
    report = await arun_contract(BrokenMemory, required_capabilities=BrokenMemory.required)
    assert report.passed, report.format()
    assert [r.name for r in report.skipped] == ["data_survives_reopening"]


@pytest.mark.parametrize(
    "target",
    ["memory://", "memory://contract-teeth-shared", {"backend": "memory"}],
    ids=["private", "named", "mapping"],
)
async def test_the_contract_passes_on_the_memory_backend(target: Any) -> None:
    durable = target == "memory://contract-teeth-shared"
    required = {Capability.TIES_IN_SAVE_ORDER, *([Capability.DURABLE] if durable else [])}
    report = await arun_contract(target, required_capabilities=required)
    assert report.passed, report.format()
    assert len(report.results) == len(ordered_checks())
    skipped = {r.name for r in report.skipped}
    assert skipped == (set() if durable else {"data_survives_reopening"})
