"""The pytest door: a test class to subclass, one test per check."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from chat_persistence import Capability, PersistenceAdapter

from ._checks import ordered_checks
from ._expect import CheckSkipped
from ._table import (
    AdapterFactory,
    Check,
    CheckContext,
    ContractSettings,
    execute_check,
    missing_requirement,
    required_set,
)


class PersistenceAdapterContract:
    """The contract suite as a pytest class: subclass it as ``Test...`` and provide
    an ``adapter`` fixture yielding an open adapter.

    Optionally provide ``reopen_adapter``: a fixture returning a zero-argument
    callable that builds a new, unopened adapter on the same store (needed for the
    durability check, which is otherwise skipped). Every check becomes a test
    method ``test_<check name>``; a check needing a capability the adapter does not
    declare is skipped with the reason. Set ``contract_settings`` to change the
    stateful test's budget, and ``required_capabilities`` to the capabilities the
    backend must declare: then a check needing one fails instead of being skipped.
    """

    contract_settings: ClassVar[ContractSettings] = ContractSettings()
    required_capabilities: ClassVar[frozenset[Capability]] = frozenset()

    # Hidden from type checkers, so a subclass may override them with any kind of
    # fixture (pytest's or pytest-asyncio's) without an incompatible-override error.
    if not TYPE_CHECKING:

        @pytest.fixture
        def adapter(self) -> PersistenceAdapter:
            """Override: yield an open adapter (``async with create_adapter(...) as a``)."""
            pytest.fail(
                f"{type(self).__name__} must define an 'adapter' fixture yielding an open "
                "PersistenceAdapter (see chat_persistence_contract.PersistenceAdapterContract)"
            )

        @pytest.fixture
        def reopen_adapter(self) -> AdapterFactory | None:
            """Override: return a callable making a new unopened adapter on the same store."""
            return None


TestMethod = Callable[..., Coroutine[Any, Any, None]]


def _test_for(check: Check) -> TestMethod:
    async def test(
        self: PersistenceAdapterContract,
        adapter: PersistenceAdapter,
        reopen_adapter: AdapterFactory | None,
    ) -> None:
        required = required_set(type(self).required_capabilities)
        missing = missing_requirement(check, adapter, reopen_adapter, required)
        if missing is not None:
            reason, fails = missing
            if fails:
                pytest.fail(reason, pytrace=False)
            pytest.skip(reason)
        context = CheckContext(adapter, reopen_adapter, type(self).contract_settings, required)
        try:
            await execute_check(check, context)
        except CheckSkipped as skip:
            pytest.skip(skip.reason)

    test.__name__ = f"test_{check.name}"
    test.__qualname__ = f"{PersistenceAdapterContract.__name__}.{test.__name__}"
    test.__doc__ = check.description
    marked: TestMethod = pytest.mark.contract(pytest.mark.asyncio(test))
    return marked


def _add_tests() -> None:
    for check in ordered_checks():
        setattr(PersistenceAdapterContract, f"test_{check.name}", _test_for(check))


_add_tests()
