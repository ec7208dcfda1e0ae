"""Times at the edges: the ends of the datetime range, far-future instants, and
store-assigned times that follow the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chat_persistence import InvalidMessageError, Message

from .._builders import session, text_message
from .._expect import ContractViolation, expect, expect_equal, expect_ids, expect_raises
from .._table import CheckContext, check

FIRST = datetime.min.replace(tzinfo=UTC)
LAST = datetime.max.replace(tzinfo=UTC)
CLOCK_SLACK = timedelta(minutes=10)
"""How far a store's clock may be from this process's for store-assigned times."""

FAR_FUTURE = (
    datetime(2256, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(2999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(9000, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC),
)
"""Instants past 2255, where microseconds since 1970 no longer fit a float exactly."""


@check()
async def extreme_times_round_trip(ctx: CheckContext) -> None:
    """``created_at`` exactly ``datetime.min`` and ``datetime.max`` (in UTC) and
    instants long after 2255 are stored and read back to the microsecond, in order."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    batch = [
        text_message("last", created_at=LAST),
        *(text_message(f"far-{i}", created_at=t) for i, t in enumerate(FAR_FUTURE)),
        text_message("first", created_at=FIRST),
    ]
    stored = await adapter.save_messages(thread_id, batch)
    expect_equal(
        [m.created_at for m in stored], [m.created_at for m in batch], "save_messages result"
    )
    listed = await adapter.list_messages(thread_id)
    expect_ids(listed, ["first", "far-0", "far-1", "far-2", "last"], "list_messages")
    expected = [FIRST, *FAR_FUTURE, LAST]
    expect_equal([m.created_at for m in listed], expected, "created_at as listed")
    for message in stored:
        got = await adapter.get_message(thread_id, message.id)
        expect_equal(got, message, f"get_message({message.id!r})")
    for index, when in enumerate((FIRST, FAR_FUTURE[2])):
        sent = session(ctx.session_id(), thread_id, created_at=when)
        back = await adapter.save_session(sent)
        expect_equal(back.created_at, when, f"session #{index} created_at")
        got = await adapter.get_session(sent.id)
        expect_equal(got and got.created_at, when, f"session #{index} read back")


@check()
async def no_store_time_left_after_the_last_instant(ctx: CheckContext) -> None:
    """Once a thread holds a message at ``datetime.max``, a message without
    ``created_at`` cannot get a later time: the batch raises ``InvalidMessageError``
    naming that message and ``created_at``, and writes nothing."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    await adapter.save_messages(thread_id, [text_message("end", created_at=LAST)])
    before = await adapter.list_messages(thread_id)
    batch = [text_message("timed", created_at=FIRST), text_message("untimed")]
    err = await expect_raises(
        InvalidMessageError,
        adapter.save_messages(thread_id, batch),
        "a store-assigned time after datetime.max",
    )
    expect_equal(err.message_id, "untimed", "InvalidMessageError.message_id")
    expect("created_at" in str(err.field), f"the error must name created_at, got {err.field!r}")
    expect_equal(await adapter.list_messages(thread_id), before, "the thread afterwards")
    expect_equal(await adapter.get_message(thread_id, "timed"), None, "the timed message")
    explicit = await adapter.save_messages(thread_id, [text_message("also-end", created_at=LAST)])
    expect_equal(explicit[0].created_at, LAST, "an explicit datetime.max is still accepted")


def _near_clock(value: datetime | None, start: datetime, end: datetime, what: str) -> None:
    if value is None or not start - CLOCK_SLACK <= value <= end + CLOCK_SLACK:
        raise ContractViolation(
            f"{what} must be the store's current time (between {start.isoformat()} and "
            f"{end.isoformat()}, give or take {CLOCK_SLACK}), got {value!r}"
        )


@check()
async def store_assigned_times_follow_the_clock(ctx: CheckContext) -> None:
    """Times the store assigns (a message's ``created_at`` in a new thread, a
    session's ``created_at``, ``updated_at`` and ``archived_at``) are the current
    time, within ten minutes of this process's clock."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    start = datetime.now(UTC)
    messages: list[Message] = await adapter.save_messages(
        thread_id, [text_message("a"), text_message("b")]
    )
    saved = await adapter.save_session(session(ctx.session_id(), thread_id))
    again = await adapter.save_session(session(saved.id, thread_id, state=1))
    archived = await adapter.archive_session(saved.id, thread_id=thread_id)
    created = await adapter.archive_session(ctx.session_id(), thread_id=thread_id)
    end = datetime.now(UTC)
    for message in messages:
        _near_clock(message.created_at, start, end, f"created_at of {message.id!r}")
    _near_clock(saved.created_at, start, end, "a new session's created_at")
    _near_clock(saved.updated_at, start, end, "a new session's updated_at")
    _near_clock(again.updated_at, start, end, "updated_at after a save")
    _near_clock(archived.archived_at, start, end, "archived_at")
    _near_clock(archived.updated_at, start, end, "updated_at after archiving")
    _near_clock(created.created_at, start, end, "an archive-created session's created_at")
