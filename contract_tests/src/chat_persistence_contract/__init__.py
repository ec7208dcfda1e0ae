"""The contract every chat-persistence backend must pass, with two doors.

- pytest: subclass ``PersistenceAdapterContract`` and give it an ``adapter`` fixture.
- anywhere: ``run_contract("memory://")`` (or ``await arun_contract(...)``) returns a
  ``ContractReport`` naming every check that failed or was skipped, and why.

Every check writes only under fresh random ids and deletes its threads afterwards,
so the suite is safe to run against a live database.

Names load on first use: the pytest plugin (auto-loaded in every pytest run where
this package is installed) imports this package, and must stay cheap.
"""

from __future__ import annotations

import importlib
import typing

if typing.TYPE_CHECKING:
    from ._checks import ordered_checks
    from ._expect import CheckSkipped, ContractViolation
    from ._pytest_class import PersistenceAdapterContract
    from ._report import CheckResult, ContractReport
    from ._runner import ContractTarget, arun_contract, run_contract
    from ._table import AdapterFactory, Check, CheckContext, ContractSettings

__all__ = [
    "AdapterFactory",
    "Check",
    "CheckContext",
    "CheckResult",
    "CheckSkipped",
    "ContractReport",
    "ContractSettings",
    "ContractTarget",
    "ContractViolation",
    "PersistenceAdapterContract",
    "arun_contract",
    "ordered_checks",
    "run_contract",
]

_HOME = {
    "AdapterFactory": "._table",
    "Check": "._table",
    "CheckContext": "._table",
    "CheckResult": "._report",
    "CheckSkipped": "._expect",
    "ContractReport": "._report",
    "ContractSettings": "._table",
    "ContractTarget": "._runner",
    "ContractViolation": "._expect",
    "PersistenceAdapterContract": "._pytest_class",
    "arun_contract": "._runner",
    "ordered_checks": "._checks",
    "run_contract": "._runner",
}


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value: object = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
