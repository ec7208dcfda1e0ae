"""Listing: limits, keyset cursors, paging, and the archive filter."""

from __future__ import annotations

from typing import Any, cast

from chat_persistence import NotFoundError, PersistenceAdapter

from .._builders import at, session, text_message
from .._expect import expect_equal, expect_ids, expect_raises, ids_of
from .._table import CheckContext, check
from .messages import shuffled_ids

TEN = [f"n{9 - i}" for i in range(10)]
"""Ten ids in save order that sort in the reverse order."""


async def _ten(ctx: CheckContext) -> str:
    thread_id = ctx.thread_id()
    await ctx.adapter.save_messages(thread_id, [text_message(i) for i in TEN[:4]])
    await ctx.adapter.save_messages(thread_id, [text_message(i) for i in TEN[4:]])
    return thread_id


@check()
async def limit_keeps_the_newest(ctx: CheckContext) -> None:
    """``limit`` alone returns the newest ``limit`` messages, oldest first; 0 gives
    none; a limit past the end gives all."""
    adapter = ctx.adapter
    thread_id = await _ten(ctx)
    expect_ids(await adapter.list_messages(thread_id, limit=3), TEN[-3:], "limit=3")
    expect_ids(await adapter.list_messages(thread_id, limit=1), TEN[-1:], "limit=1")
    expect_ids(await adapter.list_messages(thread_id, limit=0), [], "limit=0")
    for limit in (10, 11, 13, 19, 500):
        expect_ids(await adapter.list_messages(thread_id, limit=limit), TEN, f"limit={limit}")
    expect_ids(await adapter.list_messages(thread_id, limit=None), TEN, "limit=None")


@check()
async def before_pages_backwards(ctx: CheckContext) -> None:
    """``before=id`` returns the messages strictly before it; with ``limit``, the
    ``limit`` nearest to it (newest side), oldest first."""
    adapter = ctx.adapter
    thread_id = await _ten(ctx)
    expect_ids(await adapter.list_messages(thread_id, before=TEN[6]), TEN[:6], "before=7th")
    expect_ids(
        await adapter.list_messages(thread_id, before=TEN[6], limit=2), TEN[4:6], "before, limit=2"
    )
    for limit in (3, 5, 100):
        expect_ids(
            await adapter.list_messages(thread_id, before=TEN[2], limit=limit),
            TEN[:2],
            f"before the 3rd, limit={limit}",
        )
    expect_ids(await adapter.list_messages(thread_id, before=TEN[0]), [], "before the first")
    expect_ids(
        await adapter.list_messages(thread_id, before=TEN[5], limit=0), [], "before, limit=0"
    )


@check()
async def after_pages_forwards(ctx: CheckContext) -> None:
    """``after=id`` returns the messages strictly after it; with ``limit``, the
    ``limit`` nearest to it (oldest side)."""
    adapter = ctx.adapter
    thread_id = await _ten(ctx)
    expect_ids(await adapter.list_messages(thread_id, after=TEN[6]), TEN[7:], "after=7th")
    expect_ids(
        await adapter.list_messages(thread_id, after=TEN[2], limit=3), TEN[3:6], "after, limit=3"
    )
    expect_ids(
        await adapter.list_messages(thread_id, after=TEN[7], limit=5), TEN[8:], "after 8th, limit=5"
    )
    expect_ids(await adapter.list_messages(thread_id, after=TEN[9]), [], "after the last")
    expect_ids(await adapter.list_messages(thread_id, after=TEN[2], limit=0), [], "after, limit=0")


@check()
async def before_and_after_give_the_window_between(ctx: CheckContext) -> None:
    """``after`` and ``before`` together give the messages strictly between them;
    ``limit`` keeps the ones nearest ``after``; an empty or inverted window is []."""
    adapter = ctx.adapter
    thread_id = await _ten(ctx)
    expect_ids(
        await adapter.list_messages(thread_id, after=TEN[1], before=TEN[7]), TEN[2:7], "window"
    )
    expect_ids(
        await adapter.list_messages(thread_id, after=TEN[1], before=TEN[7], limit=2),
        TEN[2:4],
        "window, limit=2",
    )
    expect_ids(
        await adapter.list_messages(thread_id, after=TEN[3], before=TEN[4]), [], "adjacent cursors"
    )
    expect_ids(
        await adapter.list_messages(thread_id, after=TEN[5], before=TEN[5]), [], "same cursor"
    )
    expect_ids(
        await adapter.list_messages(thread_id, after=TEN[8], before=TEN[2]), [], "inverted window"
    )


@check()
async def unknown_cursor_raises_not_found(ctx: CheckContext) -> None:
    """A ``before`` or ``after`` id that is not a message of the thread (also one of
    another thread) raises ``NotFoundError`` naming it (``kind``, ``key``,
    ``thread_id``); so it does with ``limit=0``."""
    adapter = ctx.adapter
    thread_id = await _ten(ctx)
    other = ctx.thread_id()
    await adapter.save_messages(other, [text_message("foreign")])
    empty = ctx.thread_id()
    for cursor in ("no-such-message", "foreign"):
        calls = [
            (f"before={cursor!r}", thread_id, {"before": cursor}),
            (f"after={cursor!r}", thread_id, {"after": cursor}),
            (f"before={cursor!r}, limit=3", thread_id, {"before": cursor, "limit": 3}),
            (
                f"known after, before={cursor!r}, limit=0",
                thread_id,
                {"after": TEN[0], "before": cursor, "limit": 0},
            ),
            (f"known before, after={cursor!r}", thread_id, {"before": TEN[5], "after": cursor}),
            (f"after={cursor!r} in an empty thread", empty, {"after": cursor}),
        ]
        for what, thread, query in calls:
            err = await expect_raises(
                NotFoundError, adapter.list_messages(thread, **cast(Any, query)), what
            )
            expect_equal(
                (err.kind, err.key, err.thread_id),
                ("message", cursor, thread),
                f"{what}: NotFoundError (kind, key, thread_id)",
            )


async def _walk(
    adapter: PersistenceAdapter, thread_id: str, size: int, *, forwards: bool, first: str
) -> list[str]:
    """Page through the thread ``size`` at a time from ``first`` (kept), keyset only."""
    seen = [first]
    cursor = first
    for _ in range(1000):
        if forwards:
            page = await adapter.list_messages(thread_id, after=cursor, limit=size)
        else:
            page = await adapter.list_messages(thread_id, before=cursor, limit=size)
        if not page:
            return seen
        ids = ids_of(page)
        seen = [*seen, *ids] if forwards else [*ids, *seen]
        cursor = ids[-1] if forwards else ids[0]
    return seen


@check()
async def paging_visits_each_message_once(ctx: CheckContext) -> None:
    """Keyset paging forwards and backwards, at several page sizes, over a thread
    with ties, explicit and store-assigned times and hidden messages of an archived
    session among them, returns every listed message exactly once, in the order of
    the full listing."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    ids = shuffled_ids(23, seed=4)
    same = at(5)
    archived = ctx.session_id()
    await adapter.archive_session(archived, thread_id=thread_id)
    hidden = [text_message(f"hidden-{i}", session_id=archived, created_at=same) for i in range(4)]
    await adapter.save_messages(
        thread_id,
        [text_message(i, created_at=same) for i in ids[:3]]
        + hidden[:2]
        + [text_message(i, created_at=same) for i in ids[3:6]]
        + hidden[2:],
    )
    await adapter.save_messages(thread_id, [text_message(i) for i in ids[6:12]])
    await adapter.save_messages(thread_id, [text_message(i, created_at=at(1)) for i in ids[12:15]])
    await adapter.save_messages(thread_id, [text_message(i, created_at=same) for i in ids[15:19]])
    await adapter.save_messages(thread_id, [text_message(i) for i in ids[19:]])
    full = ids_of(await adapter.list_messages(thread_id))
    expect_equal(sorted(full), sorted(ids), "ids in the full listing (each exactly once)")
    for size in (1, 3, 5, 50):
        forwards = await _walk(adapter, thread_id, size, forwards=True, first=full[0])
        expect_equal(forwards, full, f"paging forwards with limit={size}")
        backwards = await _walk(adapter, thread_id, size, forwards=False, first=full[-1])
        expect_equal(backwards, full, f"paging backwards with limit={size}")
    for low, high in ((0, 22), (2, 9), (4, 5), (7, 20)):
        window = await adapter.list_messages(thread_id, after=full[low], before=full[high])
        expect_ids(window, full[low + 1 : high], f"window between positions {low} and {high}")


@check()
async def archived_sessions_are_hidden_by_default(ctx: CheckContext) -> None:
    """The default listing leaves out messages of archived sessions and keeps
    messages without a session, of live sessions, and of sessions with no row."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    live, archived, ghost = ctx.session_id(), ctx.session_id(), ctx.session_id()
    await adapter.archive_session(archived, thread_id=thread_id)
    await adapter.save_session(session(live, thread_id))
    await adapter.save_messages(
        thread_id,
        [
            text_message("no-session"),
            text_message("live", session_id=live),
            text_message("archived-1", session_id=archived),
            text_message("ghost", session_id=ghost),
            text_message("archived-2", session_id=archived),
            text_message("last"),
        ],
    )
    expected = ["no-session", "live", "ghost", "last"]
    expect_ids(await adapter.list_messages(thread_id), expected, "default listing")
    expect_ids(await adapter.list_messages(thread_id, limit=3), expected[-3:], "limit=3")
    expect_ids(
        await adapter.list_messages(thread_id, after="no-session", limit=2),
        ["live", "ghost"],
        "after, limit=2",
    )


@check()
async def sessions_of_another_thread_follow_their_row(ctx: CheckContext) -> None:
    """A message may name a session whose row belongs to another thread: the
    filter goes by that row, hiding the message when it is archived and keeping it
    when it is live, as for the thread's own sessions."""
    adapter, thread_id, elsewhere = ctx.adapter, ctx.thread_id(), ctx.thread_id()
    own_live, own_archived = ctx.session_id(), ctx.session_id()
    other_live, other_archived = ctx.session_id(), ctx.session_id()
    await adapter.save_session(session(own_live, thread_id))
    await adapter.archive_session(own_archived, thread_id=thread_id)
    await adapter.save_session(session(other_live, elsewhere))
    await adapter.archive_session(other_archived, thread_id=elsewhere)
    await adapter.save_messages(
        thread_id,
        [
            text_message("own-live", session_id=own_live),
            text_message("other-archived", session_id=other_archived),
            text_message("own-archived", session_id=own_archived),
            text_message("other-live", session_id=other_live),
        ],
    )
    expected = ["own-live", "other-live"]
    expect_ids(await adapter.list_messages(thread_id), expected, "default listing")
    expect_ids(await adapter.list_messages(thread_id, limit=10), expected, "limit=10")
    expect_ids(await adapter.list_messages(thread_id, after="own-live"), ["other-live"], "after")


@check()
async def archiving_hides_existing_messages(ctx: CheckContext) -> None:
    """Archiving a session hides its messages already stored; re-saving one of them
    without a session brings it back in its old place."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    await adapter.save_messages(
        thread_id,
        [text_message("a"), text_message("b", session_id=sid), text_message("c", session_id=sid)],
    )
    await adapter.save_messages(thread_id, [text_message("d")])
    expect_ids(await adapter.list_messages(thread_id), ["a", "b", "c", "d"], "before archiving")
    await adapter.archive_session(sid, thread_id=thread_id)
    expect_ids(await adapter.list_messages(thread_id), ["a", "d"], "after archiving")
    await adapter.save_messages(thread_id, [text_message("c", "moved out")])
    expect_ids(await adapter.list_messages(thread_id), ["a", "c", "d"], "after moving c out")


@check()
async def explicit_session_lists_archived_messages(ctx: CheckContext) -> None:
    """An explicit ``session_id`` returns exactly that session's messages, archived
    or not (the archived-session browser), with limits and cursors applied."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid, other = ctx.session_id(), ctx.session_id()
    await adapter.save_messages(
        thread_id,
        [
            text_message("s1", session_id=sid),
            text_message("free"),
            text_message("o1", session_id=other),
            text_message("s2", session_id=sid),
            text_message("s3", session_id=sid),
        ],
    )
    await adapter.archive_session(sid, thread_id=thread_id)
    expect_ids(await adapter.list_messages(thread_id, session_id=sid), ["s1", "s2", "s3"], "all")
    expect_ids(
        await adapter.list_messages(thread_id, session_id=sid, limit=2), ["s2", "s3"], "limit=2"
    )
    expect_ids(
        await adapter.list_messages(thread_id, session_id=sid, after="s1", limit=1),
        ["s2"],
        "after, limit=1",
    )
    expect_ids(await adapter.list_messages(thread_id, session_id=other), ["o1"], "the live session")
    expect_ids(
        await adapter.list_messages(thread_id, session_id=ctx.session_id()),
        [],
        "a session with no messages",
    )


@check()
async def cursor_may_be_a_hidden_message(ctx: CheckContext) -> None:
    """A cursor keeps its own position even when the filter hides it: an archived
    session's message, or one outside the ``session_id`` asked for."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    archived, sid = ctx.session_id(), ctx.session_id()
    await adapter.save_messages(
        thread_id,
        [
            text_message("one"),
            text_message("hidden", session_id=archived),
            text_message("two", session_id=sid),
            text_message("three"),
            text_message("four", session_id=sid),
        ],
    )
    await adapter.archive_session(archived, thread_id=thread_id)
    expect_ids(
        await adapter.list_messages(thread_id, after="hidden"), ["two", "three", "four"], "after"
    )
    expect_ids(await adapter.list_messages(thread_id, before="hidden"), ["one"], "before")
    expect_ids(
        await adapter.list_messages(thread_id, after="hidden", limit=1), ["two"], "after, limit=1"
    )
    expect_ids(
        await adapter.list_messages(thread_id, before="three", limit=2),
        ["one", "two"],
        "before, limit=2, over a hidden message",
    )
    expect_ids(
        await adapter.list_messages(thread_id, session_id=sid, after="three"),
        ["four"],
        "other session's cursor",
    )
    expect_ids(
        await adapter.list_messages(thread_id, session_id=sid, before="three"),
        ["two"],
        "before, other session",
    )
