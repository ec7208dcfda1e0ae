"""The table of checks, the context each one runs in, and running one check."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import cast

import attrs

from chat_persistence import (
    Capability,
    PersistenceAdapter,
    supports_delete_messages,
    supports_stored_parts,
)

from ._expect import CheckSkipped, ContractViolation

AdapterFactory = Callable[[], PersistenceAdapter]
"""A zero-argument callable returning a new adapter, not yet opened."""

CheckFunction = Callable[["CheckContext"], Awaitable[None]]


@attrs.frozen
class ContractSettings:
    """How much work the randomized parts of the suite do.

    ``stateful_examples`` sequences of up to ``stateful_steps`` operations are run
    by the stateful test. ``stateful_shrink`` lets Hypothesis shrink a failing
    sequence to a minimal one: clearer, but it can run the sequence thousands of
    times. ``timeout`` bounds each check, in seconds (ten times that for the
    stateful test).
    """

    stateful_examples: int = 30
    stateful_steps: int = 25
    stateful_shrink: bool = False
    timeout: float = 60.0


@attrs.frozen
class Check:
    """One rule of the contract: an async function taking a ``CheckContext``.

    ``requires`` lists the capabilities the adapter must declare for the check to
    run; ``needs_reopen`` says it needs a factory of fresh adapters on the same store;
    ``operation`` names an optional protocol operation (``delete_messages``, new in
    0.2) that the adapter must implement for the check to run.
    """

    name: str
    function: CheckFunction
    description: str
    requires: frozenset[Capability] = frozenset()
    needs_reopen: bool = False
    stateful: bool = False
    operation: str | None = None


CHECKS: dict[str, Check] = {}
"""Every check, by name, in the order they run."""


def check(
    *,
    requires: Iterable[Capability] = (),
    needs_reopen: bool = False,
    stateful: bool = False,
    operation: str | None = None,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated coroutine function as a check named after it."""

    def register(function: CheckFunction) -> CheckFunction:
        name = function.__name__
        if name in CHECKS:
            raise ValueError(f"a contract check named {name!r} is already registered")
        doc = inspect.getdoc(function) or ""
        CHECKS[name] = Check(
            name=name,
            function=function,
            description=doc.split("\n\n", 1)[0].replace("\n", " "),
            requires=frozenset(requires),
            needs_reopen=needs_reopen,
            stateful=stateful,
            operation=operation,
        )
        return function

    return register


@attrs.define
class CheckContext:
    """What a check works with: the open adapter, fresh ids, and cleanup.

    Every thread id handed out by ``thread_id()`` is deleted (``delete_thread``)
    when the check ends, and with it the sessions whose thread it is; checks only
    write under ids handed out here, so the suite is safe on a live store.
    """

    adapter: PersistenceAdapter
    reopen: AdapterFactory | None = None
    settings: ContractSettings = attrs.field(factory=ContractSettings)
    required: frozenset[Capability] = frozenset()
    """The capabilities the run demands (``required_capabilities``)."""
    _threads: list[str] = attrs.field(factory=list[str], init=False)

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What the adapter declares (empty when it has no ``capabilities``)."""
        return declared_capabilities(self.adapter)

    def thread_id(self) -> str:
        """A new random thread id, deleted when the check ends."""
        thread_id = f"contract-{uuid.uuid4().hex}"
        self._threads.append(thread_id)
        return thread_id

    def session_id(self) -> str:
        """A new random session id (give its session a thread from ``thread_id()``)."""
        return f"contract-{uuid.uuid4().hex}"

    def fresh_adapter(self) -> PersistenceAdapter:
        """A new, unopened adapter on the same store; skips the check without a factory."""
        if self.reopen is None:
            raise CheckSkipped(
                "needs a factory of new adapters on the same store "
                "(a 'reopen_adapter' fixture, or run_contract with a config)"
            )
        return self.reopen()

    async def cleanup(self) -> None:
        """Delete every thread handed out (sessions go with their thread)."""
        threads, self._threads = self._threads, []
        for thread_id in threads:
            await self.adapter.delete_thread(thread_id)


def declared_capabilities(adapter: object) -> frozenset[Capability]:
    """The capabilities ``adapter`` declares: its ``capabilities`` attribute, if any."""
    declared: object = getattr(adapter, "capabilities", None)
    if not isinstance(declared, (set, frozenset, list, tuple)):
        return frozenset()
    items = cast(Iterable[object], declared)
    return frozenset(item for item in items if isinstance(item, Capability))


OPTIONAL_OPERATIONS = {
    "delete_messages": supports_delete_messages,
    "list_stored_parts": supports_stored_parts,
}
"""Protocol operations newer than 0.1, and how to tell whether an adapter has one."""


def required_set(required: Iterable[Capability | str] | None) -> frozenset[Capability]:
    """``required_capabilities`` as Capability values; ``ValueError`` naming an unknown one."""
    if required is None:
        return frozenset()
    if isinstance(required, str):
        required = [required]
    chosen: set[Capability] = set()
    for item in required:
        try:
            chosen.add(Capability(item))
        except ValueError:
            known = ", ".join(c.value for c in Capability)
            raise ValueError(f"unknown capability {item!r}; known: {known}") from None
    return frozenset(chosen)


def missing_requirement(
    check: Check,
    adapter: object,
    reopen: AdapterFactory | None,
    required: frozenset[Capability] = frozenset(),
) -> tuple[str, bool] | None:
    """Why ``check`` cannot run against ``adapter`` and whether that is a failure
    (it lacks what the run requires), or None when it can run."""
    declared = declared_capabilities(adapter)
    missing = sorted(c for c in check.requires if c not in declared)
    if missing:
        names = ", ".join(str(c) for c in missing)
        if set(missing) & required:
            return f"the adapter does not declare capability {names}, which this run requires", True
        return f"the adapter does not declare capability {names}", False
    if check.needs_reopen and reopen is None:
        reason = (
            "needs a factory of new adapters on the same store "
            "(a 'reopen_adapter' fixture, or run_contract with a config)"
        )
        return reason, bool(check.requires & required)
    supported = OPTIONAL_OPERATIONS.get(check.operation or "")
    if supported is not None and not supported(adapter):
        return (
            f"the adapter does not implement {check.operation}() (new in chat-persistence 0.2)",
            False,
        )
    return None


async def execute_check(check: Check, context: CheckContext) -> None:
    """Run one check and clean up after it; raises what the check raised.

    A check that runs out of time raises ``ContractViolation``. A cleanup failure
    is raised only when the check itself passed.
    """
    timeout = context.settings.timeout * (10 if check.stateful else 1)
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            await check.function(context)
    except BaseException as err:
        with contextlib.suppress(Exception):
            await context.cleanup()
        if isinstance(err, TimeoutError) and scope.expired():
            raise ContractViolation(f"did not finish within {timeout:g} s") from err
        raise
    await context.cleanup()
