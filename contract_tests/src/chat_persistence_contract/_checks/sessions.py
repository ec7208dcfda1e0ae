"""Sessions: upsert, store times, compare-and-set, listing, and the archive rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import attrs

from chat_persistence import ConflictError, Session

from .._builders import SDK_VERSION, at, plus_two_hours, session
from .._expect import ContractViolation, expect, expect_equal, expect_raises, short
from .._table import CheckContext, check


def _aware(value: datetime | None, what: str) -> datetime:
    if value is None or value.utcoffset() is None:
        raise ContractViolation(f"{what} must be a timezone-aware datetime, got {value!r}")
    return value


def _later(later: datetime | None, earlier: datetime | None, what: str) -> None:
    if later is None or earlier is None or not later > earlier:
        raise ContractViolation(f"{what}: expected a time after {earlier!r}, got {later!r}")


def _same_fields(stored: Session, sent: Session, what: str) -> None:
    for name in ("id", "thread_id", "sdk_version", "state", "metadata"):
        expect_equal(getattr(stored, name), getattr(sent, name), f"{what}: {name}")


@check()
async def save_session_inserts_with_store_times(ctx: CheckContext) -> None:
    """Inserting a session stores its fields, sets ``created_at`` (the caller's when
    given) and ``updated_at``, and leaves ``archived_at`` empty whatever the caller
    passed; ``get_session`` reads back what was returned."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    plain = session(ctx.session_id(), thread_id, state={"step": 1}, metadata={"user": "ü"})
    stored = await adapter.save_session(plain)
    _same_fields(stored, plain, "inserted session")
    _aware(stored.created_at, "created_at")
    _aware(stored.updated_at, "updated_at")
    expect_equal(stored.archived_at, None, "archived_at of a new session")
    expect_equal(await adapter.get_session(plain.id), stored, "get_session")
    given = datetime(2023, 3, 4, 5, 6, 7, 890123, tzinfo=plus_two_hours())
    sent = attrs.evolve(
        session(ctx.session_id(), thread_id),
        created_at=given,
        updated_at=at(-9999),
        archived_at=at(1),
    )
    stored = await adapter.save_session(sent)
    expect_equal(stored.created_at, given, "caller's created_at")
    expect(stored.updated_at != at(-9999), "the caller's updated_at must be ignored")
    _aware(stored.updated_at, "updated_at")
    expect_equal(stored.archived_at, None, "archived_at (save_session never sets it)")
    expect_equal(await adapter.get_session(sent.id), stored, "get_session")


@check()
async def save_session_updated_at_strictly_increases(ctx: CheckContext) -> None:
    """Every save of a session sets a strictly later ``updated_at``, even several
    saves within one clock tick, and keeps ``created_at``."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    first = await adapter.save_session(session(sid, thread_id, state=0))
    previous = first
    for step in range(1, 8):
        current = await adapter.save_session(session(sid, thread_id, state=step))
        _later(current.updated_at, previous.updated_at, f"updated_at of save #{step + 1}")
        expect_equal(current.created_at, first.created_at, f"created_at of save #{step + 1}")
        expect_equal(current.state, step, f"state of save #{step + 1}")
        previous = current
    expect_equal(await adapter.get_session(sid), previous, "get_session after the saves")


@check()
async def save_session_updates_fields_only(ctx: CheckContext) -> None:
    """An update writes thread, sdk_version, state and metadata (None clears), and
    never ``created_at`` or ``archived_at`` (passed ones are ignored)."""
    adapter, thread_id, moved_to = ctx.adapter, ctx.thread_id(), ctx.thread_id()
    sid = ctx.session_id()
    first = await adapter.save_session(
        session(sid, thread_id, state={"a": 1}, metadata={"m": [1]}, created_at=at(0))
    )
    update = attrs.evolve(
        session(sid, moved_to, state=None, metadata=["x"], sdk_version="other/2"),
        created_at=at(500),
        archived_at=at(7),
    )
    stored = await adapter.save_session(update)
    _same_fields(stored, update, "updated session")
    expect_equal(stored.created_at, first.created_at, "created_at after an update")
    expect_equal(stored.archived_at, None, "archived_at after an update")
    expect_equal(await adapter.get_session(sid), stored, "get_session after the update")


@check()
async def moving_a_session_keeps_its_old_siblings(ctx: CheckContext) -> None:
    """Saving a session under another thread moves it: it lists under the new
    thread only, and the sessions left in its old thread still list there."""
    adapter, old, new = ctx.adapter, ctx.thread_id(), ctx.thread_id()
    moving, staying, archived = ctx.session_id(), ctx.session_id(), ctx.session_id()
    await adapter.save_session(session(staying, old, created_at=at(1)))
    await adapter.save_session(session(moving, old, created_at=at(2)))
    await adapter.archive_session(archived, thread_id=old)
    moved = await adapter.save_session(session(moving, new, state="moved"))
    expect_equal(moved.thread_id, new, "thread_id after the move")
    listed_old = [s.id for s in await adapter.list_sessions(old, include_archived=True)]
    expect_equal(sorted(listed_old), sorted([staying, archived]), "the old thread's sessions")
    expect_equal([s.id for s in await adapter.list_sessions(old)], [staying], "live, old thread")
    expect_equal([s.id for s in await adapter.list_sessions(new)], [moving], "the new thread")
    await adapter.save_session(session(moving, old, state="back"))
    listed_old = [s.id for s in await adapter.list_sessions(old)]
    expect_equal(listed_old, [staying, moving], "the old thread after moving back")
    expect_equal(await adapter.list_sessions(new, include_archived=True), [], "the new thread")


@check()
async def saving_an_archived_session_keeps_it_archived(ctx: CheckContext) -> None:
    """Saving an archived session updates it and keeps its ``archived_at``; its
    messages stay hidden from the default listing."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    await adapter.save_session(session(sid, thread_id, state=1))
    archived = await adapter.archive_session(sid, thread_id=thread_id)
    update = attrs.evolve(session(sid, thread_id, state=2), archived_at=None)
    stored = await adapter.save_session(update)
    expect_equal(stored.archived_at, archived.archived_at, "archived_at after a save")
    expect_equal(stored.state, 2, "state after the save")
    _later(stored.updated_at, archived.updated_at, "updated_at after the save")
    expect_equal(await adapter.list_sessions(thread_id), [], "list_sessions (default)")


@check()
async def compare_and_set_succeeds_on_current_time(ctx: CheckContext) -> None:
    """``save_session(..., expected_updated_at=stored.updated_at)`` succeeds, bumps
    ``updated_at``, and chains; the same instant in another time zone matches too."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    current = await adapter.save_session(session(sid, thread_id, state=0))
    for step in range(1, 4):
        expected = _aware(current.updated_at, "updated_at")
        if step == 2:
            expected = expected.astimezone(plus_two_hours())
        following = await adapter.save_session(
            session(sid, thread_id, state=step), expected_updated_at=expected
        )
        _later(following.updated_at, current.updated_at, f"updated_at after CAS #{step}")
        expect_equal(following.state, step, f"state after CAS #{step}")
        current = following
    expect_equal(await adapter.get_session(sid), current, "get_session after the CAS saves")


@check()
async def compare_and_set_conflicts_when_stale(ctx: CheckContext) -> None:
    """A compare-and-set against an ``updated_at`` that is no longer stored raises
    ``ConflictError`` (carrying the session id, the expected and the stored
    ``updated_at``) and writes nothing."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    read = await adapter.save_session(session(sid, thread_id, state="mine"))
    theirs = await adapter.save_session(session(sid, thread_id, state="theirs"))
    err = await expect_raises(
        ConflictError,
        adapter.save_session(
            session(sid, thread_id, state="lost"), expected_updated_at=read.updated_at
        ),
        "CAS with a stale updated_at",
    )
    expect_equal(err.session_id, sid, "ConflictError.session_id")
    expect_equal(err.expected, read.updated_at, "ConflictError.expected")
    expect_equal(err.actual, theirs.updated_at, "ConflictError.actual")
    expect_equal(await adapter.get_session(sid), theirs, "the session after the conflict")
    earlier = attrs.evolve(theirs, updated_at=None)
    err = await expect_raises(
        ConflictError,
        adapter.save_session(earlier, expected_updated_at=at(0)),
        "CAS with an unrelated time",
    )
    expect_equal((err.expected, err.actual), (at(0), theirs.updated_at), "expected, actual")
    expect_equal(await adapter.get_session(sid), theirs, "the session after the second conflict")
    no_utc_form = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    err = await expect_raises(
        ConflictError,
        adapter.save_session(earlier, expected_updated_at=no_utc_form),
        "CAS with a time that has no UTC form (year 1 at +01:00)",
    )
    expect(err.expected == no_utc_form, f"ConflictError.expected: got {err.expected!r}")
    expect_equal(await adapter.get_session(sid), theirs, "the session after the third conflict")


@check()
async def compare_and_set_conflicts_when_missing(ctx: CheckContext) -> None:
    """A compare-and-set on a session that has no row raises ``ConflictError``
    (``actual`` None) and creates nothing."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    err = await expect_raises(
        ConflictError,
        adapter.save_session(session(sid, thread_id), expected_updated_at=at(0)),
        "CAS on a missing session",
    )
    expect_equal(err.session_id, sid, "ConflictError.session_id")
    expect_equal((err.expected, err.actual), (at(0), None), "ConflictError expected, actual")
    expect_equal(await adapter.get_session(sid), None, "get_session after the conflict")
    expect_equal(await adapter.list_sessions(thread_id, include_archived=True), [], "sessions")


@check()
async def get_session_missing_is_none(ctx: CheckContext) -> None:
    """``get_session`` of an unknown id returns None; ``list_sessions`` of a thread
    without sessions returns []."""
    expect_equal(await ctx.adapter.get_session(ctx.session_id()), None, "unknown session")
    expect_equal(await ctx.adapter.list_sessions(ctx.thread_id()), [], "list_sessions")


@check()
async def list_sessions_oldest_first_live_only(ctx: CheckContext) -> None:
    """``list_sessions`` orders by ``created_at`` then id, holds only the thread's
    sessions, and leaves out archived ones unless ``include_archived``."""
    adapter, thread_id, other = ctx.adapter, ctx.thread_id(), ctx.thread_id()
    base = ctx.session_id()
    for suffix, created in (("b", at(2)), ("d", None), ("a", at(2)), ("c", at(1)), ("e", at(0))):
        await adapter.save_session(session(f"{base}-{suffix}", thread_id, created_at=created))
    await adapter.save_session(session(f"{base}-x", other, created_at=at(1)))
    await adapter.archive_session(f"{base}-e", thread_id=thread_id)
    live = [s.id for s in await adapter.list_sessions(thread_id)]
    expect_equal(live, [f"{base}-{s}" for s in "cabd"], "list_sessions")
    everything = [s.id for s in await adapter.list_sessions(thread_id, include_archived=True)]
    expect_equal(everything, [f"{base}-{s}" for s in "ecabd"], "list_sessions(include_archived)")
    listed = await adapter.list_sessions(thread_id, include_archived=True)
    for item in listed:
        expect_equal(await adapter.get_session(item.id), item, f"get_session({item.id!r})")


@check()
async def archive_marks_an_existing_session(ctx: CheckContext) -> None:
    """Archiving a live session sets ``archived_at``, bumps ``updated_at`` and keeps
    every other field; it returns the stored session."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    live = await adapter.save_session(session(sid, thread_id, state={"s": 1}, metadata=[1]))
    archived = await adapter.archive_session(sid, thread_id=thread_id)
    _aware(archived.archived_at, "archived_at")
    _later(archived.updated_at, live.updated_at, "updated_at after archiving")
    _same_fields(archived, live, "archived session")
    expect_equal(archived.created_at, live.created_at, "created_at after archiving")
    expect_equal(await adapter.get_session(sid), archived, "get_session after archiving")


@check()
async def archive_creates_a_missing_session(ctx: CheckContext) -> None:
    """Archiving a session with no row creates it with the given thread, the
    adapter's ``sdk_version``, and ``created_at == updated_at == archived_at``."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    created = await adapter.archive_session(sid, thread_id=thread_id)
    expect_equal((created.id, created.thread_id), (sid, thread_id), "id and thread_id")
    expected_version: object = getattr(adapter, "sdk_version", None)
    if isinstance(expected_version, str):
        expect_equal(created.sdk_version, expected_version, "sdk_version (the adapter's)")
    expect(
        isinstance(created.sdk_version, str) and created.sdk_version != "",
        f"sdk_version must be a non-empty string, got {short(created.sdk_version)}",
    )
    when = _aware(created.archived_at, "archived_at")
    expect_equal(created.created_at, when, "created_at of an archive-created session")
    expect_equal(created.updated_at, when, "updated_at of an archive-created session")
    expect_equal((created.state, created.metadata), (None, None), "state and metadata")
    expect_equal(await adapter.get_session(sid), created, "get_session")
    expect_equal(await adapter.list_sessions(thread_id), [], "list_sessions (default)")
    expect_equal(
        await adapter.list_sessions(thread_id, include_archived=True),
        [created],
        "list_sessions(include_archived)",
    )


@check()
async def archive_twice_keeps_the_first_time(ctx: CheckContext) -> None:
    """Archiving an archived session changes nothing: the first ``archived_at``
    (and ``updated_at``) stay, and the stored session is returned."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    for existing in (True, False):
        sid = ctx.session_id()
        if existing:
            await adapter.save_session(session(sid, thread_id, state="x"))
        first = await adapter.archive_session(sid, thread_id=thread_id)
        for attempt in range(2):
            again = await adapter.archive_session(sid, thread_id=thread_id)
            expect_equal(again, first, f"archiving again (#{attempt + 2}, existing={existing})")
        expect_equal(await adapter.get_session(sid), first, "get_session")


@check()
async def archive_keeps_the_stored_thread(ctx: CheckContext) -> None:
    """Archiving an existing session under another thread id keeps its stored
    thread id."""
    adapter, thread_id, elsewhere = ctx.adapter, ctx.thread_id(), ctx.thread_id()
    sid = ctx.session_id()
    await adapter.save_session(session(sid, thread_id))
    archived = await adapter.archive_session(sid, thread_id=elsewhere)
    expect_equal(archived.thread_id, thread_id, "thread_id after archiving elsewhere")
    expect_equal(
        [s.id for s in await adapter.list_sessions(thread_id, include_archived=True)],
        [sid],
        "list_sessions of the stored thread",
    )
    expect_equal(
        await adapter.list_sessions(elsewhere, include_archived=True), [], "the other thread"
    )


@check()
async def session_json_round_trips(ctx: CheckContext) -> None:
    """State and metadata of any JSON shape (objects, arrays, scalars, unicode,
    big integers, null) read back equal."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    shapes: list[tuple[object, object]] = [
        ({"msgs": [{"role": "user", "n": 1.5}], "flags": {"a": True, "b": None}}, ["t", 1]),
        ("just a string ✓", 12345678901234567890),
        ([], {}),
        (0, False),
        (None, {"": {"nested": [[], [{}]]}}),
    ]
    for index, (state, metadata) in enumerate(shapes):
        sent = session(ctx.session_id(), thread_id, state=state, metadata=metadata)
        stored = await adapter.save_session(sent)
        _same_fields(stored, sent, f"session #{index}")
        got = await adapter.get_session(sent.id)
        if got is None:
            raise ContractViolation(f"session #{index} was not found after saving")
        _same_fields(got, sent, f"session #{index} as read back")
        expect_equal(got.sdk_version, SDK_VERSION, "sdk_version")
