"""Concurrent writers: many tasks at once lose nothing and duplicate nothing."""

from __future__ import annotations

import asyncio
from collections import Counter

from chat_persistence import Capability, ConflictError, Message, Session

from .._builders import session, text_message
from .._expect import ContractViolation, expect, expect_equal, ids_of
from .._table import CheckContext, check
from .messages import expect_increasing

TASKS = 12
PER_BATCH = 4


def _batch(task: int, round_: int) -> list[Message]:
    # Ids sort against the save order: later tasks and rounds get smaller ids.
    return [
        text_message(f"t{99 - task:02d}-r{9 - round_}-{chr(ord('z') - i)}")
        for i in range(PER_BATCH)
    ]


async def _writer(ctx: CheckContext, thread_id: str, task: int, rounds: int) -> list[list[str]]:
    batches: list[list[str]] = []
    for round_ in range(rounds):
        batch = _batch(task, round_)
        stored = await ctx.adapter.save_messages(thread_id, batch)
        expect_equal(ids_of(stored), ids_of(batch), "save_messages result under concurrency")
        expect_increasing(stored, "store-assigned created_at under concurrency")
        batches.append(ids_of(batch))
    return batches


def _expect_all_once(listed: list[Message], batches: list[list[str]], what: str) -> None:
    ids = ids_of(listed)
    duplicated = sorted(i for i, n in Counter(ids).items() if n > 1)
    expect(not duplicated, f"{what}: duplicated messages {duplicated}")
    expected = {i for batch in batches for i in batch}
    lost = sorted(expected - set(ids))
    expect(not lost, f"{what}: lost messages {lost}")
    extra = sorted(set(ids) - expected)
    expect(not extra, f"{what}: unexpected messages {extra}")
    position = {message_id: index for index, message_id in enumerate(ids)}
    for batch in batches:
        places = [position[i] for i in batch]
        if places != sorted(places):
            raise ContractViolation(f"{what}: batch {batch} is not listed in its save order")


@check()
async def concurrent_writers_one_thread(ctx: CheckContext) -> None:
    """Many tasks saving batches to one thread at once: every message is stored
    exactly once, each batch keeps its order, and re-saves do not duplicate."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    results = await asyncio.gather(*(_writer(ctx, thread_id, t, 3) for t in range(TASKS)))
    batches = [batch for result in results for batch in result]
    _expect_all_once(await adapter.list_messages(thread_id), batches, "after concurrent saves")
    resaves = [
        adapter.save_messages(thread_id, [text_message(i, "re-saved") for i in batch])
        for batch in batches[::2]
    ]
    await asyncio.gather(*resaves)
    listed = await adapter.list_messages(thread_id)
    _expect_all_once(listed, batches, "after concurrent re-saves")
    expect_equal(len(listed), TASKS * 3 * PER_BATCH, "number of messages")


@check()
async def concurrent_writers_many_threads(ctx: CheckContext) -> None:
    """Many tasks saving to several threads at once: each thread holds exactly its
    own messages, once each, every batch in order."""
    adapter = ctx.adapter
    threads = [ctx.thread_id() for _ in range(4)]
    jobs = [_writer(ctx, threads[t % 4], t, 2) for t in range(TASKS)]
    results = await asyncio.gather(*jobs)
    for index, thread_id in enumerate(threads):
        batches = [b for t, result in enumerate(results) if t % 4 == index for b in result]
        _expect_all_once(await adapter.list_messages(thread_id), batches, f"thread #{index}")


@check(requires=[Capability.ANY_LOOP])
async def other_loops_and_threads_share_the_adapter(ctx: CheckContext) -> None:
    """Saving from new event loops in two OS threads while the loop that opened the
    adapter saves too: every message stored exactly once, each batch in order."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()

    def on_a_new_loop(task: int) -> list[list[str]]:
        return asyncio.run(_writer(ctx, thread_id, task, 3))

    results = await asyncio.gather(
        asyncio.to_thread(on_a_new_loop, 0),
        asyncio.to_thread(on_a_new_loop, 1),
        _writer(ctx, thread_id, 2, 3),
    )
    batches = [batch for result in results for batch in result]
    listed = await adapter.list_messages(thread_id)
    _expect_all_once(listed, batches, "after saves from other loops and threads")
    read = await asyncio.to_thread(asyncio.run, adapter.list_messages(thread_id))
    expect_equal(ids_of(read), ids_of(listed), "a listing from another loop")


@check()
async def concurrent_compare_and_set_has_one_winner(ctx: CheckContext) -> None:
    """Many tasks doing a compare-and-set from the same read: exactly one wins, the
    others raise ``ConflictError``, and the winner's state is stored."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    read = await adapter.save_session(session(sid, thread_id, state=-1))

    async def attempt(n: int) -> Session | None:
        try:
            return await adapter.save_session(
                session(sid, thread_id, state=n), expected_updated_at=read.updated_at
            )
        except ConflictError:
            return None

    outcomes = await asyncio.gather(*(attempt(n) for n in range(TASKS)))
    winners = [o for o in outcomes if o is not None]
    expect_equal(len(winners), 1, "number of compare-and-set winners")
    expect_equal(await adapter.get_session(sid), winners[0], "the stored session")


@check()
async def concurrent_archive_agrees(ctx: CheckContext) -> None:
    """Many tasks archiving one session at once (existing or missing) all succeed
    and all return the one stored ``archived_at`` and ``updated_at``."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    for existing in (True, False):
        sid = ctx.session_id()
        if existing:
            await adapter.save_session(session(sid, thread_id))
        outcomes = await asyncio.gather(
            *(adapter.archive_session(sid, thread_id=thread_id) for _ in range(TASKS))
        )
        stored = await adapter.get_session(sid)
        if stored is None or stored.archived_at is None:
            raise ContractViolation(f"session not archived after concurrent archiving: {stored!r}")
        times = {o.archived_at for o in outcomes}
        expect_equal(times, {stored.archived_at}, f"archived_at returned (existing={existing})")
        updated = {o.updated_at for o in outcomes}
        expect_equal(updated, {stored.updated_at}, f"updated_at returned (existing={existing})")
