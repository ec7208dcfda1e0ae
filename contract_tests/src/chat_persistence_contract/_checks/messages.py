"""Saving and reading messages: what is stored, store-assigned times, order, upserts."""

from __future__ import annotations

import contextlib
import itertools
import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

import attrs

from chat_persistence import (
    Capability,
    DataPart,
    InvalidMessageError,
    Message,
    TextPart,
    ToolCallPart,
    unstructure_part,
)

from .._builders import at, every_kind_of_part, plus_two_hours, session, text_message, unchecked
from .._expect import ContractViolation, expect, expect_equal, expect_ids, ids_of, short
from .._table import CheckContext, check


def expect_stored(stored: Message, sent: Message, what: str) -> None:
    """``stored`` is ``sent`` with a timezone-aware ``created_at`` (the sent one if given)."""
    created = stored.created_at
    if created is None or created.utcoffset() is None:
        raise ContractViolation(
            f"{what}: created_at must be a timezone-aware datetime, got {created!r}"
        )
    if sent.created_at is not None:
        expect_equal(created, sent.created_at, f"{what}: explicit created_at")
    expect_equal(stored, attrs.evolve(sent, created_at=created), what)


def expect_increasing(messages: Sequence[Message], what: str) -> None:
    """``created_at`` strictly increases along ``messages``."""
    times = [m.created_at for m in messages]
    for i in range(1, len(times)):
        earlier, later = times[i - 1], times[i]
        if earlier is None or later is None or not earlier < later:
            raise ContractViolation(
                f"{what}: created_at must strictly increase in batch order, but "
                f"{messages[i - 1].id!r} has {earlier!r} and {messages[i].id!r} has {later!r}"
            )


def shuffled_ids(count: int, seed: int) -> list[str]:
    """``count`` ids in an order that is neither sorted nor reverse-sorted."""
    ids = [f"m{n:03d}" for n in range(count)]
    random.Random(seed).shuffle(ids)
    return ids


@check()
async def save_returns_messages_as_stored(ctx: CheckContext) -> None:
    """``save_messages`` returns the batch as stored, in batch order: role, parts and
    session kept, ``created_at`` filled in, an explicit one kept as the same instant;
    ``get_message`` and ``list_messages`` read back the same; an empty batch saves
    nothing and returns []."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    explicit = datetime(2024, 5, 17, 14, 0, 0, 123456, tzinfo=plus_two_hours())
    batch = [
        text_message("b-first"),
        text_message("a-second", role="assistant", session_id=ctx.session_id()),
        text_message("c-third", role="tool", created_at=explicit),
    ]
    stored = await adapter.save_messages(thread_id, batch)
    expect(isinstance(stored, list), f"save_messages must return a list, got {short(stored)}")
    expect_ids(stored, ["b-first", "a-second", "c-third"], "save_messages result")
    for sent, back in zip(batch, stored, strict=True):
        expect_stored(back, sent, f"save_messages result for {sent.id!r}")
        expect_equal(
            await adapter.get_message(thread_id, sent.id), back, f"get_message({sent.id!r})"
        )
    listed = await adapter.list_messages(thread_id)
    expect_equal(listed, [stored[2], stored[0], stored[1]], "list_messages (by created_at)")
    expect_equal(await adapter.save_messages(thread_id, []), [], "saving an empty batch")
    expect_equal(await adapter.list_messages(thread_id), listed, "after an empty batch")


@check()
async def every_part_kind_round_trips(ctx: CheckContext) -> None:
    """Every kind of part (nested JSON, unicode, optional keys, extra wire keys,
    unknown parts) and a message without parts read back equal, with their classes."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    batch = [
        Message(id="msg-ü-🙂 1", role="assistant", parts=every_kind_of_part()),
        Message(id="no-parts", role="system", parts=()),
    ]
    stored = await adapter.save_messages(thread_id, batch)
    for sent, back in zip(batch, stored, strict=True):
        expect_stored(back, sent, f"save_messages result for {sent.id!r}")
        got = await adapter.get_message(thread_id, sent.id)
        expect_equal(got, back, f"get_message({sent.id!r})")
        if got is not None:
            expect_equal(
                [type(p).__name__ for p in got.parts],
                [type(p).__name__ for p in sent.parts],
                f"part classes of {sent.id!r}",
            )
    expect_equal(await adapter.list_messages(thread_id), stored, "list_messages")


def _positive_zeros(value: object) -> bool:
    """Whether every float in ``value`` that is zero is +0.0 (not -0.0)."""
    if isinstance(value, float):
        return value != 0.0 or math.copysign(1.0, value) > 0
    if isinstance(value, list):
        return all(_positive_zeros(v) for v in cast(list[object], value))
    if isinstance(value, dict):
        return all(_positive_zeros(v) for v in cast(dict[str, object], value).values())
    return True


@check()
async def negative_zero_reads_back_as_zero(ctx: CheckContext) -> None:
    """``-0.0`` anywhere in a part's JSON or a session's state is stored as ``0.0``
    (Postgres ``jsonb`` has no negative zero), so every backend reads back ``0.0``."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sent = Message(
        "zeros",
        "tool",
        (DataPart(-0.0), ToolCallPart("c", "t", {"x": [-0.0, 1.5, {"y": -0.0}]})),
    )
    await adapter.save_messages(thread_id, [sent])
    for what, got in (
        ("get_message", await adapter.get_message(thread_id, "zeros")),
        ("list_messages", (await adapter.list_messages(thread_id) or [None])[0]),
    ):
        if got is None:
            raise ContractViolation(f"{what}: the saved message was not found")
        expect_equal(got.parts, sent.parts, f"{what}: parts")
        values = [unstructure_part(p) for p in got.parts]
        expect(_positive_zeros(values), f"{what}: -0.0 must read back as 0.0, got {values!r}")
    sid = ctx.session_id()
    await adapter.save_session(session(sid, thread_id, state=[-0.0], metadata={"z": -0.0}))
    stored = await adapter.get_session(sid)
    if stored is None:
        raise ContractViolation("the saved session was not found")
    pair = [stored.state, stored.metadata]
    expect_equal(pair, [[0.0], {"z": 0.0}], "state and metadata")
    expect(_positive_zeros(pair), f"-0.0 in a session must read back as 0.0, got {pair!r}")


@check()
async def get_message_missing_is_none(ctx: CheckContext) -> None:
    """``get_message`` returns None for an unknown id, an unknown thread, and an id
    that exists only in another thread."""
    adapter, thread_id, other = ctx.adapter, ctx.thread_id(), ctx.thread_id()
    await adapter.save_messages(other, [text_message("elsewhere")])
    expect_equal(await adapter.get_message(thread_id, "nope"), None, "unknown id")
    expect_equal(await adapter.get_message(thread_id, "elsewhere"), None, "id of another thread")
    expect_equal(await adapter.list_messages(thread_id), [], "list_messages of an empty thread")


@check()
async def store_assigned_times_increase_in_batch_order(ctx: CheckContext) -> None:
    """Messages saved without ``created_at`` get store times that strictly increase
    in batch order, so they list in save order whatever their ids."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    ids = shuffled_ids(8, seed=1)
    stored = await adapter.save_messages(thread_id, [text_message(i) for i in ids])
    expect_ids(stored, ids, "save_messages result")
    expect_increasing(stored, "store-assigned created_at")
    expect_ids(await adapter.list_messages(thread_id), ids, "list_messages")


@check()
async def store_assigned_times_follow_everything_stored(ctx: CheckContext) -> None:
    """A store-assigned ``created_at`` is later than every message already in the
    thread: also explicit future times, and messages hidden by an archived session."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    archived = ctx.session_id()
    future = datetime.now(UTC).replace(microsecond=999999) + timedelta(days=1)
    hidden_future = future + timedelta(hours=1)
    await adapter.save_messages(
        thread_id,
        [
            text_message("past", created_at=at(0)),
            text_message("future", created_at=future),
            text_message("hidden", session_id=archived, created_at=hidden_future),
        ],
    )
    await adapter.archive_session(archived, thread_id=thread_id)
    stored = await adapter.save_messages(thread_id, [text_message("x"), text_message("y")])
    for message in stored:
        created = message.created_at
        expect(
            created is not None and created > hidden_future,
            f"store-assigned created_at of {message.id!r} must be later than every stored "
            f"message ({hidden_future.isoformat()}), got {created!r}",
        )
    expect_increasing(stored, "store-assigned created_at")
    expect_ids(await adapter.list_messages(thread_id), ["past", "future", "x", "y"], "list")


@check()
async def explicit_times_order_across_batches(ctx: CheckContext) -> None:
    """Explicit ``created_at`` values order the thread whatever the save order, across
    and within batches, and keep their instant to the microsecond."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    t1 = at(10).replace(microsecond=1)
    t2 = at(10).replace(microsecond=2)
    t3 = datetime(2024, 5, 17, 14, 0, 20, 999999, tzinfo=plus_two_hours())
    await adapter.save_messages(thread_id, [text_message("a-late", created_at=t3)])
    await adapter.save_messages(
        thread_id, [text_message("z-middle", created_at=t2), text_message("q-early", created_at=t1)]
    )
    await adapter.save_messages(thread_id, [text_message("m-earliest", created_at=at(-100))])
    listed = await adapter.list_messages(thread_id)
    expect_ids(listed, ["m-earliest", "q-early", "z-middle", "a-late"], "list_messages")
    expect_equal([m.created_at for m in listed], [at(-100), t1, t2, t3], "created_at values")


@check()
async def many_messages_in_one_batch_keep_save_order(ctx: CheckContext) -> None:
    """A batch of many messages whose ids do not sort in save order lists in save
    order, and pages (``limit``, ``before``) follow that order."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    ids = shuffled_ids(60, seed=2)
    await adapter.save_messages(thread_id, [text_message(i) for i in ids])
    expect_ids(await adapter.list_messages(thread_id), ids, "list_messages")
    expect_ids(await adapter.list_messages(thread_id, limit=7), ids[-7:], "limit=7")
    expect_ids(
        await adapter.list_messages(thread_id, before=ids[30], limit=5),
        ids[25:30],
        "before, limit=5",
    )


@check()
async def batches_list_in_save_order(ctx: CheckContext) -> None:
    """Several batches saved one after another list batch after batch, each in its
    own order, whatever the ids."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    ids = shuffled_ids(20, seed=3)
    for start in range(0, 20, 4):
        await adapter.save_messages(thread_id, [text_message(i) for i in ids[start : start + 4]])
    expect_ids(await adapter.list_messages(thread_id), ids, "list_messages")


async def _save_ties(ctx: CheckContext, thread_id: str) -> list[str]:
    """Save two batches sharing one ``created_at``, ids out of sort order, between
    an earlier and a later message; returns the ids in save order."""
    same = at(50)
    tied_first = ["z9", "m5", "a1", "q7"]
    tied_second = ["y8", "b2", "c3"]
    await ctx.adapter.save_messages(
        thread_id,
        [text_message("after", created_at=at(60)), text_message("before", created_at=at(40))],
    )
    await ctx.adapter.save_messages(
        thread_id, [text_message(i, created_at=same) for i in tied_first]
    )
    await ctx.adapter.save_messages(
        thread_id, [text_message(i, created_at=same) for i in tied_second]
    )
    return ["before", *tied_first, *tied_second, "after"]


@check(requires=[Capability.TIES_IN_SAVE_ORDER])
async def equal_times_list_in_save_order(ctx: CheckContext) -> None:
    """Messages with equal ``created_at`` list in save order, within and across
    batches."""
    thread_id = ctx.thread_id()
    expected = await _save_ties(ctx, thread_id)
    expect_ids(await ctx.adapter.list_messages(thread_id), expected, "list_messages")


@check()
async def equal_times_have_a_stable_total_order(ctx: CheckContext) -> None:
    """Messages with equal ``created_at`` still have one total order: every listing
    repeats it, each message exactly once, ``created_at`` never decreasing."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    expected = await _save_ties(ctx, thread_id)
    first = await adapter.list_messages(thread_id)
    expect_equal(sorted(ids_of(first)), sorted(expected), "ids listed (each exactly once)")
    expect_equal(ids_of(first)[0], "before", "first message")
    expect_equal(ids_of(first)[-1], "after", "last message")
    times = [m.created_at for m in first]
    expect(
        all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(times)),
        f"created_at must never decrease along the listing: {short(times)}",
    )
    for _ in range(3):
        expect_ids(await adapter.list_messages(thread_id), ids_of(first), "a repeated listing")


@check()
async def resave_updates_content_keeps_position(ctx: CheckContext) -> None:
    """Re-saving a message updates its role, parts and session, keeps its stored
    ``created_at`` (a passed one is ignored) and so its place in the thread."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    old_session = ctx.session_id()
    first = await adapter.save_messages(
        thread_id, [text_message("a"), text_message("b", session_id=old_session), text_message("c")]
    )
    original = {m.id: m.created_at for m in first}
    new_session = ctx.session_id()
    changed = Message(
        id="b",
        role="assistant",
        parts=(TextPart("edited"), DataPart({"v": 2})),
        session_id=new_session,
        created_at=datetime.now(UTC) + timedelta(days=3),
    )
    back = await adapter.save_messages(thread_id, [changed])
    expect_ids(back, ["b"], "re-save result")
    expect_stored(back[0], attrs.evolve(changed, created_at=original["b"]), "re-save result")
    listed = await adapter.list_messages(thread_id)
    expect_ids(listed, ["a", "b", "c"], "list_messages after the re-save")
    expect_equal(listed[1], back[0], "re-saved message as listed")
    expect_equal(await adapter.get_message(thread_id, "b"), back[0], "get_message after re-save")
    expect_ids(
        await adapter.list_messages(thread_id, session_id=old_session), [], "its old session"
    )
    expect_ids(
        await adapter.list_messages(thread_id, session_id=new_session), ["b"], "its new session"
    )
    again = await adapter.save_messages(thread_id, [text_message("c", "plain again")])
    expect_equal(again[0].created_at, original["c"], "created_at after a second re-save")
    expect_ids(await adapter.list_messages(thread_id), ["a", "b", "c"], "list after re-saving c")


@check()
async def resave_in_a_mixed_batch(ctx: CheckContext) -> None:
    """A batch mixing new and existing ids: existing ones keep their place and
    time, new ones go after everything stored, in batch order; the result is in
    batch order."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    first = await adapter.save_messages(thread_id, [text_message("k"), text_message("d")])
    batch = [text_message("x-new"), text_message("k", "k edited"), text_message("b-new")]
    back = await adapter.save_messages(thread_id, batch)
    expect_ids(back, ["x-new", "k", "b-new"], "save_messages result")
    expect_equal(back[1].created_at, first[0].created_at, "created_at of the re-saved 'k'")
    newest = first[1].created_at
    for message in (back[0], back[2]):
        expect(
            newest is not None and message.created_at is not None and message.created_at > newest,
            f"new message {message.id!r} must be later than every stored message",
        )
    expect_increasing([back[0], back[2]], "store-assigned created_at of the new messages")
    expect_ids(
        await adapter.list_messages(thread_id), ["k", "d", "x-new", "b-new"], "list_messages"
    )
    expect_equal(
        (await adapter.get_message(thread_id, "k")), back[1], "get_message of the re-saved 'k'"
    )


@check()
async def failing_batch_writes_nothing(ctx: CheckContext) -> None:
    """A large batch of new messages and re-saves whose last message is rejected
    (a repeated id, or one built with validators disabled) writes nothing at all."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    await adapter.save_messages(thread_id, [text_message(i, "original") for i in "abc"])
    before = await adapter.list_messages(thread_id)
    fresh = [text_message(i) for i in shuffled_ids(25, seed=5)]
    resaves = [text_message(i, "changed", session_id=ctx.session_id()) for i in "cab"]
    bad_text = unchecked(lambda: Message("last", "user", (TextPart("nul \x00 inside"),)))
    for last in (bad_text, text_message(fresh[3].id, "repeated"), text_message("b", "again")):
        with contextlib.suppress(InvalidMessageError):
            await adapter.save_messages(thread_id, [*fresh, *resaves, last])
            raise ContractViolation(f"a batch ending in {last!r} was accepted")
        expect_equal(await adapter.list_messages(thread_id), before, "the thread afterwards")
        expect_equal(await adapter.get_message(thread_id, fresh[0].id), None, "a new message")


@check()
async def threads_are_independent(ctx: CheckContext) -> None:
    """The same message id in two threads is two messages: reads, re-saves and
    deletes of one thread never touch the other."""
    adapter, one, two = ctx.adapter, ctx.thread_id(), ctx.thread_id()
    await adapter.save_messages(one, [text_message("shared", "in one"), text_message("only-one")])
    await adapter.save_messages(two, [text_message("shared", "in two")])
    got_one = await adapter.get_message(one, "shared")
    got_two = await adapter.get_message(two, "shared")
    expect_equal(got_one and got_one.parts, (TextPart("in one"),), "thread one's 'shared'")
    expect_equal(got_two and got_two.parts, (TextPart("in two"),), "thread two's 'shared'")
    expect_ids(await adapter.list_messages(two), ["shared"], "list_messages of thread two")
    await adapter.save_messages(two, [text_message("shared", "two edited")])
    got_one = await adapter.get_message(one, "shared")
    expect_equal(
        got_one and got_one.parts, (TextPart("in one"),), "thread one after re-save in two"
    )
    await adapter.delete_thread(one)
    expect_ids(await adapter.list_messages(two), ["shared"], "thread two after deleting one")
    expect_equal(await adapter.list_messages(one), [], "thread one after delete_thread")
