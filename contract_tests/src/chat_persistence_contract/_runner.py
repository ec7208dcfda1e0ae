"""Running the whole suite outside pytest: ``run_contract(config) -> ContractReport``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import traceback
from collections.abc import Collection, Generator, Mapping
from typing import Any, cast

from hypothesis.configuration import set_hypothesis_home_dir

from chat_persistence import PersistenceAdapter, create_adapter
from chat_persistence.storage import redact as _redact

from ._checks import ordered_checks
from ._expect import CheckSkipped, ContractViolation
from ._report import CheckResult, ContractReport
from ._table import (
    CHECKS,
    AdapterFactory,
    Check,
    CheckContext,
    ContractSettings,
    declared_capabilities,
    execute_check,
    missing_requirement,
)

URL_ENV = "CHAT_PERSISTENCE_URL"
"""Where ``create_adapter(None)`` finds its configuration."""

ContractTarget = str | Mapping[str, Any] | AdapterFactory | None
"""A configuration as ``create_adapter`` takes it (None: ``CHAT_PERSISTENCE_URL``), or
a factory of unopened adapters."""


def selected_checks(only: Collection[str] | None = None) -> list[Check]:
    """The checks to run, in table order; ``only`` names a subset."""
    checks = ordered_checks()
    if only is None:
        return checks
    unknown = sorted(set(only) - CHECKS.keys())
    if unknown:
        raise ValueError(
            f"unknown contract check(s): {', '.join(unknown)}; known: {', '.join(CHECKS)}"
        )
    return [c for c in checks if c.name in only]


async def run_one(
    check: Check,
    adapter: PersistenceAdapter,
    reopen: AdapterFactory | None,
    settings: ContractSettings,
) -> CheckResult:
    """Run one check against an open adapter and say how it went."""
    start = time.perf_counter()

    def result(outcome: Any, reason: str = "") -> CheckResult:
        return CheckResult(
            check.name, outcome, reason, time.perf_counter() - start, check.description
        )

    missing = missing_requirement(check, adapter, reopen)
    if missing is not None:
        return result("skipped", missing)
    try:
        await execute_check(check, CheckContext(adapter, reopen, settings))
    except CheckSkipped as skip:
        return result("skipped", skip.reason)
    except ContractViolation as err:
        return result("failed", str(err))
    except Exception as err:
        return result("failed", _describe(err))
    return result("passed")


async def arun_contract(
    target: ContractTarget,
    *,
    only: Collection[str] | None = None,
    settings: ContractSettings | None = None,
) -> ContractReport:
    """Run the contract suite against a backend and report every check.

    ``target`` is a configuration as ``chat_persistence.create_adapter`` takes it
    (a URL, a mapping, or None for ``CHAT_PERSISTENCE_URL``) or a zero-argument
    callable returning an unopened adapter. One adapter is opened for the run;
    checks that need a second adapter on the same store get one from the same
    configuration or callable. ``only`` limits the run to the named checks.
    """
    checks = selected_checks(only)
    settings = settings or ContractSettings()
    factory, label = _factory(target)
    adapter = factory()
    capabilities = tuple(sorted(str(c) for c in declared_capabilities(adapter)))
    label = label or type(adapter).__name__
    start = time.perf_counter()
    try:
        await adapter.open()
    except Exception as err:
        failure = CheckResult(
            "open",
            "failed",
            f"could not open the adapter: {_describe(err)}",
            time.perf_counter() - start,
        )
        return ContractReport((failure,), label, capabilities)
    try:
        results = [await run_one(check, adapter, factory, settings) for check in checks]
    finally:
        await adapter.aclose()
    return ContractReport(tuple(results), label, capabilities)


def run_contract(
    target: ContractTarget,
    *,
    only: Collection[str] | None = None,
    settings: ContractSettings | None = None,
) -> ContractReport:
    """``arun_contract`` for synchronous callers (the CLI); runs its own event loop.

    Hypothesis keeps a cache in ``.hypothesis/`` of the working directory; for this
    run it is kept in a temporary folder instead, unless ``HYPOTHESIS_STORAGE_DIRECTORY``
    says where it belongs.
    """
    with _hypothesis_storage_outside_cwd():
        return asyncio.run(arun_contract(target, only=only, settings=settings))


@contextlib.contextmanager
def _hypothesis_storage_outside_cwd() -> Generator[None]:
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="chat-persistence-contract-") as folder:
        set_hypothesis_home_dir(folder)
        try:
            yield
        finally:
            set_hypothesis_home_dir(None)


def _factory(target: ContractTarget) -> tuple[AdapterFactory, str]:
    if target is None:
        return (lambda: create_adapter(None)), _redact(os.environ.get(URL_ENV) or "memory://")
    if isinstance(target, str):
        url = target
        return (lambda: create_adapter(url)), _redact(url)
    if isinstance(target, Mapping):
        config = dict(cast(Mapping[str, Any], target))
        return (lambda: create_adapter(config)), f"backend {config.get('backend')!r}"
    if callable(target):
        return target, ""
    raise TypeError(
        "run_contract takes a configuration URL, a mapping, or a callable returning an "
        f"unopened adapter, not {type(target).__name__}"
    )


def _describe(err: BaseException) -> str:
    """``Type: message`` and where in the adapter it was raised."""
    text = f"{type(err).__name__}: {err}"
    notes: list[str] = getattr(err, "__notes__", [])
    frames = traceback.extract_tb(err.__traceback__)
    if frames:
        last = frames[-1]
        text += f"\n(raised at {last.filename}:{last.lineno} in {last.name})"
    return "\n".join([text, *notes])
