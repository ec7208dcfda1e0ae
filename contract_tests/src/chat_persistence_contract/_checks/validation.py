"""Validation (SPEC §2): each rule rejects with ``InvalidMessageError`` and writes nothing.

Bad messages are built with attrs validators disabled, as a careless caller could:
the adapter must validate every batch again before writing. Each bad message is the
last of a batch that also re-saves a stored message and adds a new one, so a
partial write shows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

from chat_persistence import (
    JSON,
    DataPart,
    FilePart,
    InvalidArgumentError,
    InvalidMessageError,
    Message,
    Session,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    UnknownPart,
)

from .._builders import SDK_VERSION, bypassing_init, session, text_message, unchecked
from .._expect import expect, expect_equal, expect_ids, expect_raises
from .._table import CheckContext, check


def _message(**fields: Any) -> Message:
    values: dict[str, Any] = {"id": "bad", "role": "user", "parts": (TextPart("fine"),)}
    values.update(fields)
    return unchecked(lambda: Message(**values))


async def _rejected(ctx: CheckContext, bad: object, field: str, what: str) -> None:
    """Saving ``[re-save of a stored message, a new message, bad]`` raises
    ``InvalidMessageError`` naming ``field`` and leaves the thread as it was."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    await adapter.save_messages(thread_id, [text_message("kept", "original")])
    before = await adapter.list_messages(thread_id)
    batch = cast(list[Message], [text_message("kept", "changed"), text_message("fresh"), bad])
    err = await expect_raises(InvalidMessageError, adapter.save_messages(thread_id, batch), what)
    expect(
        field.lower() in str(err.field).lower(),
        f"{what}: InvalidMessageError.field must name {field!r}, got {err.field!r}",
    )
    bad_id = getattr(bad, "id", None)
    if isinstance(bad, Message) and isinstance(bad_id, str) and bad_id.isalnum():
        expect_equal(err.message_id, bad_id, f"{what}: InvalidMessageError.message_id")
    expect_equal(await adapter.list_messages(thread_id), before, f"{what}: thread afterwards")
    expect_equal(await adapter.get_message(thread_id, "fresh"), None, f"{what}: new message")


def _part(factory: Callable[[], object]) -> Message:
    return _message(parts=(unchecked(factory),))


@check()
async def rejects_empty_message_id(ctx: CheckContext) -> None:
    """A message id that is the empty string is rejected."""
    await _rejected(ctx, _message(id=""), "id", "empty message id")


@check()
async def rejects_nul_in_message_id(ctx: CheckContext) -> None:
    """A message id holding a NUL character is rejected."""
    await _rejected(ctx, _message(id="a\x00b"), "id", "NUL in message id")


@check()
async def rejects_empty_role(ctx: CheckContext) -> None:
    """An empty role is rejected."""
    await _rejected(ctx, _message(role=""), "role", "empty role")


@check()
async def rejects_nul_in_role(ctx: CheckContext) -> None:
    """A role holding a NUL character is rejected."""
    await _rejected(ctx, _message(role="us\x00er"), "role", "NUL in role")


@check()
async def rejects_nul_in_text(ctx: CheckContext) -> None:
    """Text holding a NUL character (Postgres cannot store one) is rejected."""
    await _rejected(ctx, _part(lambda: TextPart("a\x00b")), "text", "NUL in text")


@check()
async def rejects_lone_surrogate_in_text(ctx: CheckContext) -> None:
    """Text holding a lone surrogate (not encodable as UTF-8) is rejected."""
    await _rejected(ctx, _part(lambda: TextPart("a\ud800b")), "text", "lone surrogate in text")


@check()
async def rejects_nul_in_session_id(ctx: CheckContext) -> None:
    """A message whose session id holds a NUL character, or is empty, is rejected."""
    await _rejected(ctx, _message(session_id="s\x00"), "session_id", "NUL in session_id")
    await _rejected(ctx, _message(session_id=""), "session_id", "empty session_id")


@check()
async def rejects_naive_created_at(ctx: CheckContext) -> None:
    """A naive (timezone-less) ``created_at`` is rejected."""
    naive = datetime(2024, 1, 1, 12, 0)
    await _rejected(ctx, _message(created_at=naive), "created_at", "naive created_at")


@check()
async def rejects_created_at_outside_utc_range(ctx: CheckContext) -> None:
    """An aware ``created_at`` with no UTC form (year 1 at +01:00, ``datetime.max``
    at -05:00) is rejected, naming the field and the message; so it is for a session."""
    early = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    late = datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))
    await _rejected(ctx, _message(created_at=early), "created_at", "year 1 at +01:00")
    await _rejected(ctx, _message(created_at=late), "created_at", "datetime.max at -05:00")
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    err = await expect_raises(
        InvalidMessageError,
        adapter.save_session(session(sid, thread_id, created_at=early)),
        "a session created in year 1 at +01:00",
    )
    expect("created_at" in str(err.field), f"the error must name created_at, got {err.field!r}")
    expect_equal(await adapter.get_session(sid), None, "the rejected session")


@check()
async def rejects_nan_in_json(ctx: CheckContext) -> None:
    """NaN anywhere in a part's JSON is rejected."""
    bad = _part(lambda: DataPart({"x": [1.0, float("nan")]}))
    await _rejected(ctx, bad, "data", "NaN in data")


@check()
async def rejects_infinity_in_json(ctx: CheckContext) -> None:
    """Infinity or -Infinity anywhere in a part's JSON is rejected."""
    bad = _part(lambda: ToolCallPart("c", "t", {"deep": {"x": float("inf")}}))
    await _rejected(ctx, bad, "input", "Infinity in tool input")
    bad = _part(lambda: ToolResultPart("c", "t", [float("-inf")]))
    await _rejected(ctx, bad, "output", "-Infinity in tool output")


@check()
async def rejects_nul_in_json_strings(ctx: CheckContext) -> None:
    """A NUL character in a JSON string value or key (jsonb cannot hold one) is
    rejected, also inside an unknown part and in extra wire keys."""
    await _rejected(
        ctx, _part(lambda: ToolResultPart("c", "t", {"k": "a\x00"})), "output", "NUL in value"
    )
    await _rejected(ctx, _part(lambda: DataPart({"a\x00": 1})), "data", "NUL in key")
    await _rejected(
        ctx, _part(lambda: UnknownPart({"type": "x", "v": ["\x00"]})), "raw", "NUL in unknown part"
    )
    await _rejected(
        ctx, _part(lambda: TextPart("ok", extra={"meta": "\x00"})), "extra", "NUL in extra key"
    )


@check()
async def rejects_non_string_json_keys(ctx: CheckContext) -> None:
    """A JSON object with a key that is not a string is rejected."""
    data: Any = {"ok": {1: "one"}}
    bad = _part(lambda: DataPart(data))
    await _rejected(ctx, bad, "data", "non-string key")


@check()
async def rejects_part_that_is_not_a_part(ctx: CheckContext) -> None:
    """A part that is not a Part instance (a wire dict, a string) is rejected."""
    bad = _message(parts=({"type": "text", "text": "a dict, not a Part"},))
    await _rejected(ctx, bad, "parts", "dict as part")
    await _rejected(ctx, _message(parts=("text",)), "parts", "str as part")


@check()
async def rejects_file_part_without_url_or_data(ctx: CheckContext) -> None:
    """A file part with neither ``url`` nor ``data`` is rejected."""
    part = bypassing_init(
        FilePart, media_type="image/png", url=None, data=None, filename=None, extra={}
    )
    bad = _message(parts=(part,))
    await _rejected(ctx, bad, "url", "file part without url or data")


@check()
async def rejects_unknown_part_that_is_not_a_wire_object(ctx: CheckContext) -> None:
    """An ``UnknownPart`` is written back as it is: one whose raw value is not an
    object with a string ``"type"`` is not a part, and is rejected."""
    cases: list[tuple[JSON, str]] = [(5, "a number"), ({"kind": "x"}, "an object with no type")]
    for raw, what in cases:
        await _rejected(ctx, _message(parts=(UnknownPart(raw),)), "parts", f"{what} as part")


@check()
async def rejects_non_message_in_batch(ctx: CheckContext) -> None:
    """A batch element that is not a Message is rejected."""
    await _rejected(ctx, {"id": "bad", "role": "user", "parts": []}, "messages", "dict as message")


@check()
async def rejects_duplicate_ids_in_batch(ctx: CheckContext) -> None:
    """A batch holding one id twice is rejected as a whole, both for two new
    messages and for a stored message given twice."""
    await _rejected(ctx, text_message("fresh", "again"), "id", "a new id given twice")
    await _rejected(ctx, text_message("kept", "third"), "id", "a stored id given twice")


def _id_calls(
    ctx: CheckContext, thread_id: str, session_id: str, bad: str
) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    adapter = ctx.adapter
    return [
        ("save_messages(thread_id)", lambda: adapter.save_messages(bad, [text_message("x")])),
        ("list_messages(thread_id)", lambda: adapter.list_messages(bad)),
        ("get_message(thread_id)", lambda: adapter.get_message(bad, "m")),
        ("get_message(message_id)", lambda: adapter.get_message(thread_id, bad)),
        ("delete_thread(thread_id)", lambda: adapter.delete_thread(bad)),
        ("list_messages(before)", lambda: adapter.list_messages(thread_id, before=bad)),
        ("list_messages(after)", lambda: adapter.list_messages(thread_id, after=bad)),
        ("list_messages(session_id)", lambda: adapter.list_messages(thread_id, session_id=bad)),
        ("get_session(session_id)", lambda: adapter.get_session(bad)),
        ("list_sessions(thread_id)", lambda: adapter.list_sessions(bad)),
        ("archive_session(session_id)", lambda: adapter.archive_session(bad, thread_id=thread_id)),
        ("archive_session(thread_id)", lambda: adapter.archive_session(session_id, thread_id=bad)),
    ]


@check()
async def rejects_invalid_id_arguments(ctx: CheckContext) -> None:
    """Empty or NUL-holding ids passed as arguments (thread, message, session, cursor)
    raise ``InvalidMessageError`` whose ``field`` names the argument; nothing is written."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    await adapter.save_messages(thread_id, [text_message("m")])
    for bad in ("", "a\x00b"):
        for what, call in _id_calls(ctx, thread_id, sid, bad):
            err = await expect_raises(InvalidMessageError, call(), f"{what} = {bad!r}")
            argument = what.split("(")[1].rstrip(")")
            expect(
                argument in str(err.field),
                f"{what} = {bad!r}: InvalidMessageError.field must name {argument!r}, "
                f"got {err.field!r}",
            )
    expect_ids(await adapter.list_messages(thread_id), ["m"], "the thread afterwards")
    expect_equal(await adapter.get_session(sid), None, "the session afterwards")
    expect_equal(await adapter.list_sessions(thread_id, include_archived=True), [], "sessions")


@check()
async def rejects_bad_limit(ctx: CheckContext) -> None:
    """A negative or non-integer ``limit`` raises ``InvalidArgumentError``."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    await adapter.save_messages(thread_id, [text_message("m")])
    for bad in (-1, "3", 1.5):
        err = await expect_raises(
            InvalidArgumentError,
            adapter.list_messages(thread_id, limit=cast(Any, bad)),
            f"limit={bad!r}",
        )
        expect_equal(err.argument, "limit", "InvalidArgumentError.argument")


@check()
async def rejects_bad_expected_updated_at(ctx: CheckContext) -> None:
    """An ``expected_updated_at`` that is not a timezone-aware datetime (a naive one,
    a string, a number) raises ``InvalidArgumentError`` naming it; nothing is written."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    stored = await adapter.save_session(session(sid, thread_id, state=1))
    naive = (stored.updated_at or datetime.now(UTC)).replace(tzinfo=None)
    for bad in (naive, naive.isoformat(), 1.5):
        err = await expect_raises(
            InvalidArgumentError,
            adapter.save_session(
                session(sid, thread_id, state=2), expected_updated_at=cast(Any, bad)
            ),
            f"expected_updated_at={bad!r}",
        )
        expect_equal(err.argument, "expected_updated_at", "InvalidArgumentError.argument")
        expect_equal(await adapter.get_session(sid), stored, f"the session after {bad!r}")


@check()
async def rejects_invalid_sessions(ctx: CheckContext) -> None:
    """A session built with validators disabled and breaking a rule (empty id, NUL
    in sdk_version, NaN in state, a non-string metadata key, a naive time, an
    empty thread id) is rejected and writes nothing, also over a stored session."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    stored = await adapter.save_session(session(sid, thread_id, state={"v": 1}))
    naive = datetime(2024, 1, 1)
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("empty id", "id", {"id": ""}),
        ("NUL in sdk_version", "sdk_version", {"sdk_version": "v\x00"}),
        ("NaN in state", "state", {"state": {"v": float("nan")}}),
        ("NUL in state", "state", {"state": ["\x00"]}),
        ("non-string metadata key", "metadata", {"metadata": {2: "x"}}),
        ("naive created_at", "created_at", {"created_at": naive}),
        ("empty thread_id", "thread_id", {"thread_id": ""}),
    ]
    for what, field, change in cases:
        values: dict[str, Any] = {
            "id": sid,
            "thread_id": thread_id,
            "sdk_version": SDK_VERSION,
            "state": {"v": 2},
        }
        values.update(change)
        bad = unchecked(lambda values=values: Session(**values))
        err = await expect_raises(InvalidMessageError, adapter.save_session(bad), what)
        expect(
            field in str(err.field),
            f"{what}: InvalidMessageError.field must name {field!r}, got {err.field!r}",
        )
        expect_equal(await adapter.get_session(sid), stored, f"{what}: the stored session")
    fresh = ctx.session_id()
    bad = unchecked(lambda: Session(fresh, thread_id, "v", state={"x": float("inf")}))
    await expect_raises(InvalidMessageError, adapter.save_session(bad), "a new invalid session")
    expect_equal(await adapter.get_session(fresh), None, "the rejected new session")
