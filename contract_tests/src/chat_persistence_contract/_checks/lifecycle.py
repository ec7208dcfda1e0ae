"""Lifecycle: the protocol, capabilities, open/close, and operations on a closed adapter."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from chat_persistence import (
    AdapterNotOpenError,
    Capability,
    PersistenceAdapter,
    supports_delete_messages,
    supports_stored_parts,
)
from chat_persistence._protocol import missing_members

from .._builders import session, text_message
from .._expect import ContractViolation, expect, expect_equal, expect_raises, short
from .._table import CheckContext, check


@check()
async def implements_protocol(ctx: CheckContext) -> None:
    """The adapter is a ``PersistenceAdapter`` and declares its capabilities as a
    frozenset of ``Capability`` (or declares none)."""
    adapter = ctx.adapter
    missing = missing_members(adapter)
    expect(
        not missing,
        f"{type(adapter).__name__} lacks {', '.join(missing)} of PersistenceAdapter",
    )
    declared: object = getattr(adapter, "capabilities", frozenset[Capability]())
    if not isinstance(declared, frozenset):
        raise ContractViolation(f"capabilities must be a frozenset, got {short(declared)}")
    for item in cast(frozenset[object], declared):
        expect(isinstance(item, Capability), f"capabilities holds a non-Capability {item!r}")


@check()
async def declares_required_capabilities(ctx: CheckContext) -> None:
    """The adapter declares every capability the run requires
    (``required_capabilities``, ``--require``): a backend cannot pass by dropping one."""
    missing = sorted(str(c) for c in ctx.required - ctx.capabilities)
    declared = ", ".join(sorted(str(c) for c in ctx.capabilities)) or "(none)"
    expect(
        not missing,
        f"the run requires capability {', '.join(missing)}, but the adapter declares "
        f"only: {declared}",
    )


@check()
async def validate_schema_passes(ctx: CheckContext) -> None:
    """``validate_schema()`` returns None on a store that matches the contract."""
    result = await ctx.adapter.validate_schema()
    expect_equal(result, None, "validate_schema() result")


def _operations(
    adapter: PersistenceAdapter, thread_id: str, session_id: str
) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("save_messages", lambda: adapter.save_messages(thread_id, [text_message("m")])),
        ("list_messages", lambda: adapter.list_messages(thread_id)),
        ("get_message", lambda: adapter.get_message(thread_id, "m")),
        ("delete_thread", lambda: adapter.delete_thread(thread_id)),
        ("save_session", lambda: adapter.save_session(session(session_id, thread_id))),
        ("get_session", lambda: adapter.get_session(session_id)),
        ("list_sessions", lambda: adapter.list_sessions(thread_id)),
        ("archive_session", lambda: adapter.archive_session(session_id, thread_id=thread_id)),
        ("validate_schema", lambda: adapter.validate_schema()),
    ]
    if supports_delete_messages(adapter):
        calls.append(("delete_messages", lambda: adapter.delete_messages(thread_id, ["m"])))
    if supports_stored_parts(adapter):
        calls.append(("list_stored_parts", lambda: adapter.list_stored_parts(thread_id)))
    return calls


async def _all_refused(adapter: PersistenceAdapter, thread_id: str, when: str) -> None:
    for name, call in _operations(adapter, thread_id, "contract-never-written"):
        await expect_raises(AdapterNotOpenError, call(), f"{name}() {when}")


@check()
async def operations_need_an_open_adapter(ctx: CheckContext) -> None:
    """Every operation raises ``AdapterNotOpenError`` before ``open()`` and after
    ``aclose()``; ``open``/``aclose`` are idempotent; ``async with`` opens and closes.

    Uses a new adapter from the reopen factory when there is one, else closes and
    reopens the adapter under test.
    """
    thread_id = ctx.thread_id()
    fresh = ctx.reopen() if ctx.reopen is not None else None
    adapter = fresh if fresh is not None else ctx.adapter
    try:
        if fresh is None:
            await adapter.aclose()
            await _all_refused(adapter, thread_id, "after aclose()")
        else:
            await _all_refused(adapter, thread_id, "before open()")
        await adapter.open()
        await adapter.open()
        expect_equal(await adapter.list_messages(thread_id), [], "list_messages after open()")
        await adapter.aclose()
        await adapter.aclose()
        await _all_refused(adapter, thread_id, "after aclose()")
        async with adapter as entered:
            expect(entered is adapter, "'async with adapter as x' must bind x to the adapter")
            await adapter.save_messages(thread_id, [text_message("inside")])
        await _all_refused(adapter, thread_id, "after leaving 'async with'")
    finally:
        if fresh is None:
            await ctx.adapter.open()
        else:
            await fresh.aclose()
