"""``delete_messages`` (new in 0.2): atomic, returns what existed, never twice.

An adapter written against 0.1 has no ``delete_messages``; these checks are then
skipped with that reason, and the rest of the suite still runs.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any, cast

from chat_persistence import InvalidArgumentError, InvalidMessageError, Message, NotFoundError

from .._builders import at, text_message
from .._expect import ContractViolation, expect, expect_equal, expect_ids, expect_raises, ids_of
from .._table import CheckContext, check

DELETE = "delete_messages"


async def _thread_of_six(ctx: CheckContext) -> tuple[str, list[Message], str]:
    """A thread whose listing order is not its save order nor its id order, with
    one message of an archived session; returns it, its full order and that id."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    archived = ctx.session_id()
    await adapter.save_messages(
        thread_id,
        [
            text_message("e-late", created_at=at(50)),
            text_message("b-early", created_at=at(10)),
            text_message("f-hidden", session_id=archived, created_at=at(30)),
        ],
    )
    await adapter.save_messages(
        thread_id, [text_message("a-second", created_at=at(20)), text_message("c-newest")]
    )
    await adapter.save_messages(thread_id, [text_message("d-last", role="assistant")])
    await adapter.archive_session(archived, thread_id=thread_id)
    everything = [
        m
        for i in ("b-early", "a-second", "f-hidden", "e-late", "c-newest", "d-last")
        if (m := await adapter.get_message(thread_id, i)) is not None
    ]
    expect_equal(len(everything), 6, "messages saved before deleting")
    return thread_id, everything, "f-hidden"


@check(operation=DELETE)
async def delete_messages_returns_what_existed(ctx: CheckContext) -> None:
    """``delete_messages`` returns the messages that existed, as they were, in listing
    order (whatever order the ids were given in, an archived session's message
    too), each once; the thread lists the rest and reads the deleted as gone."""
    adapter = ctx.adapter
    thread_id, everything, hidden = await _thread_of_six(ctx)
    by_id = {m.id: m for m in everything}
    asked = ["d-last", "nope", hidden, "b-early", "d-last", "a-second"]
    gone = await adapter.delete_messages(thread_id, asked)
    expect(isinstance(gone, list), f"delete_messages must return a list, got {gone!r}")
    expected = [m for m in everything if m.id in asked]
    expect_equal(gone, expected, "delete_messages result (listing order, as they were)")
    for message_id in asked:
        expect_equal(
            await adapter.get_message(thread_id, message_id), None, f"get_message({message_id!r})"
        )
    rest = ["e-late", "c-newest"]
    expect_ids(await adapter.list_messages(thread_id), rest, "list_messages afterwards")
    expect_ids(await adapter.list_messages(thread_id, limit=1), rest[-1:], "limit=1 afterwards")
    expect_ids(
        await adapter.list_messages(thread_id, after="e-late"), ["c-newest"], "after a survivor"
    )
    await expect_raises(
        NotFoundError, adapter.list_messages(thread_id, before="b-early"), "a deleted cursor"
    )
    again = await adapter.delete_messages(thread_id, ["b-early", "e-late"])
    expect_equal(again, [by_id["e-late"]], "deleting a deleted message and a survivor")
    back = await adapter.save_messages(thread_id, [text_message("b-early", "saved again")])
    expect_ids(await adapter.list_messages(thread_id), ["c-newest", "b-early"], "saved again")
    expect_equal(await adapter.get_message(thread_id, "b-early"), back[0], "the new 'b-early'")


@check(operation=DELETE)
async def delete_messages_of_nothing_is_no_error(ctx: CheckContext) -> None:
    """Ids that are not there, an empty list, an unknown thread, and ids that exist
    only in another thread delete nothing and return []; other threads, and the
    thread's sessions, are untouched."""
    adapter, thread_id, other = ctx.adapter, ctx.thread_id(), ctx.thread_id()
    sid = ctx.session_id()
    await adapter.archive_session(sid, thread_id=thread_id)
    await adapter.save_messages(thread_id, [text_message("mine")])
    kept = await adapter.save_messages(other, [text_message("theirs"), text_message("both")])
    await adapter.save_messages(thread_id, [text_message("both", "in the first thread")])
    for what, ids in (("unknown ids", ["x", "y"]), ("no ids", []), ("another's", ["theirs"])):
        expect_equal(await adapter.delete_messages(thread_id, ids), [], f"deleting {what}")
    expect_equal(await adapter.delete_messages(ctx.thread_id(), ["mine"]), [], "unknown thread")
    gone = await adapter.delete_messages(thread_id, ("both",))
    expect_ids(gone, ["both"], "deleting an id both threads hold (a tuple of ids)")
    expect_equal(await adapter.list_messages(other), kept, "the other thread")
    expect_ids(await adapter.list_messages(thread_id), ["mine"], "the thread afterwards")
    sessions = await adapter.list_sessions(thread_id, include_archived=True)
    expect_equal([s.id for s in sessions], [sid], "the thread's sessions")


def _invalid_calls(thread_id: str) -> list[tuple[str, object, object, type[Exception], str]]:
    """(what, thread id, ids, error type, the field or argument it must name)."""
    return [
        ("empty thread id", "", ["a"], InvalidMessageError, "thread_id"),
        ("NUL in thread id", "t\x00", ["a"], InvalidMessageError, "thread_id"),
        ("an empty id last", thread_id, ["a", "b", ""], InvalidMessageError, "message_ids"),
        ("a NUL id last", thread_id, ["a", "b\x00"], InvalidMessageError, "message_ids"),
        ("a non-string id", thread_id, ["a", 7], InvalidMessageError, "message_ids"),
        ("a string, not a list", thread_id, "ab", InvalidArgumentError, "message_ids"),
        ("None", thread_id, None, InvalidArgumentError, "message_ids"),
    ]


@check(operation=DELETE)
async def delete_messages_rejects_invalid_arguments(ctx: CheckContext) -> None:
    """A bad thread id or any bad message id (empty, NUL, not a string), or ids that
    are not a list or tuple, raise ``InvalidMessageError`` / ``InvalidArgumentError``
    naming the argument, and delete nothing."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    stored = await adapter.save_messages(thread_id, [text_message("a"), text_message("b")])
    for what, bad_thread, ids, kind, name in _invalid_calls(thread_id):
        call = adapter.delete_messages(cast(Any, bad_thread), cast(Any, ids))
        err = await expect_raises(kind, call, f"delete_messages with {what}")
        named = str(getattr(err, "field", None) or getattr(err, "argument", None))
        expect(name in named, f"{what}: the error must name {name!r}, got {named!r}")
        expect_equal(await adapter.list_messages(thread_id), stored, f"{what}: the thread")


@check(operation=DELETE)
async def delete_messages_is_all_or_nothing(ctx: CheckContext) -> None:
    """Readers running beside a ``delete_messages`` of many messages see all of them
    or none of them, never a part."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    doomed = [f"d{i:02d}" for i in range(12)]
    await adapter.save_messages(thread_id, [text_message(i) for i in ["k0", *doomed, "k1"]])
    seen: list[list[str]] = []
    done = asyncio.Event()

    async def reader() -> None:
        while not done.is_set():
            seen.append(ids_of(await adapter.list_messages(thread_id)))
            await asyncio.sleep(0)

    async def deleter() -> list[Message]:
        await asyncio.sleep(0)
        try:
            return await adapter.delete_messages(thread_id, doomed[::-1])
        finally:
            done.set()

    *_, gone = await asyncio.gather(reader(), reader(), deleter())
    expect_ids(gone, doomed, "delete_messages result")
    for listing in seen:
        present = sum(1 for i in doomed if i in listing)
        if present not in (0, len(doomed)):
            raise ContractViolation(f"a reader saw a delete half done: {listing}")
    expect_ids(await adapter.list_messages(thread_id), ["k0", "k1"], "the thread afterwards")


@check(operation=DELETE)
async def concurrent_delete_messages_never_return_one_twice(ctx: CheckContext) -> None:
    """Many tasks deleting overlapping sets of one thread's messages at once: each
    message that existed is returned by exactly one of them, and none is left."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    ids = [f"m{i:02d}" for i in range(30)]
    await adapter.save_messages(thread_id, [text_message(i) for i in ids])
    chooser = random.Random(7)
    asks = [chooser.sample(ids, 12) for _ in range(12)]
    asks[0] = ids[::2]
    asks[1] = ids[1::2]

    async def delete(chosen: list[str]) -> list[Message]:
        await asyncio.sleep(0)
        return await adapter.delete_messages(thread_id, chosen)

    results = await asyncio.gather(*(delete(chosen) for chosen in asks))
    returned = Counter(m.id for result in results for m in result)
    twice = sorted(i for i, n in returned.items() if n > 1)
    expect(not twice, f"messages returned by more than one delete_messages: {twice}")
    expect_equal(sorted(returned), ids, "every message returned once")
    for chosen, result in zip(asks, results, strict=True):
        expect(set(ids_of(result)) <= set(chosen), "a call returned ids it was not asked for")
    expect_equal(await adapter.list_messages(thread_id), [], "the thread afterwards")
