"""What the store owns: no aliasing, deleting a thread, and durability across reopen."""

from __future__ import annotations

from typing import Any, cast

from chat_persistence import Capability, DataPart, Message, ToolCallPart, UnknownPart

from .._builders import session, text_message
from .._expect import ContractViolation, expect_equal, expect_ids
from .._table import CheckContext, check


def _mutable_message(message_id: str) -> Message:
    return Message(
        id=message_id,
        role="assistant",
        parts=(
            ToolCallPart("c1", "calc", {"args": [1, 2], "opts": {"x": 1}}),
            DataPart({"rows": [{"a": 1}]}, name="table"),
            UnknownPart({"type": "custom", "items": [1, {"k": "v"}]}),
            DataPart([1, 2], extra={"meta": {"m": [0]}}),
        ),
    )


def _scribble(message: Message) -> None:
    """Mutate every mutable thing reachable from ``message`` in place."""
    for part in message.parts:
        containers: list[object] = [getattr(part, "extra", None)]
        if isinstance(part, ToolCallPart):
            containers.append(part.input)
        elif isinstance(part, DataPart):
            containers.append(part.data)
        elif isinstance(part, UnknownPart):
            containers.append(part.raw)
        for container in containers:
            _scribble_json(container)


def _scribble_json(value: object) -> None:
    if isinstance(value, dict):
        mapping = cast(dict[str, Any], value)
        for item in list(mapping.values()):
            _scribble_json(item)
        mapping["scribbled"] = True
    elif isinstance(value, list):
        items = cast(list[Any], value)
        for item in list(items):
            _scribble_json(item)
        items.append("scribbled")


@check()
async def no_aliasing_of_messages(ctx: CheckContext) -> None:
    """Mutating a message after saving it, or a message (or list) that the adapter
    returned, changes nothing stored: JSON inside parts included."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sent = _mutable_message("m1")
    pristine = _mutable_message("m1")
    returned = await adapter.save_messages(thread_id, [sent])
    _scribble(sent)
    _scribble(returned[0])
    got = await adapter.get_message(thread_id, "m1")
    if got is None:
        raise ContractViolation("the saved message was not found")
    expect_equal(got.parts, pristine.parts, "parts after mutating what was passed and returned")
    _scribble(got)
    listed = await adapter.list_messages(thread_id)
    expect_equal(listed[0].parts, pristine.parts, "parts after mutating get_message's result")
    _scribble(listed[0])
    listed.append(text_message("intruder"))
    listed.clear()
    again = await adapter.list_messages(thread_id)
    expect_ids(again, ["m1"], "list_messages after mutating the returned list")
    expect_equal(again[0].parts, pristine.parts, "parts after mutating list_messages' result")


@check()
async def no_aliasing_of_sessions(ctx: CheckContext) -> None:
    """Mutating a session's state or metadata after saving it, or in any session the
    adapter returned, changes nothing stored."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()

    def state() -> dict[str, Any]:
        return {"history": [{"turn": 1}], "vars": {"x": [1]}}

    sent = session(sid, thread_id, state=state(), metadata={"tags": ["a"]})
    returned = await adapter.save_session(sent)
    for item in (sent, returned):
        _scribble_json(item.state)
        _scribble_json(item.metadata)
    got = await adapter.get_session(sid)
    if got is None:
        raise ContractViolation("the saved session was not found")
    expect_equal((got.state, got.metadata), (state(), {"tags": ["a"]}), "state and metadata")
    _scribble_json(got.state)
    listed = await adapter.list_sessions(thread_id)
    expect_equal(listed[0].state, state(), "state after mutating get_session's result")
    _scribble_json(listed[0].state)
    archived = await adapter.archive_session(sid, thread_id=thread_id)
    _scribble_json(archived.state)
    final = await adapter.get_session(sid)
    expect_equal(final and final.state, state(), "state after mutating every returned session")


@check()
async def delete_thread_removes_messages_and_sessions(ctx: CheckContext) -> None:
    """``delete_thread`` removes the thread's messages and every session whose thread
    it is (archived ones too, so another thread's messages naming them are listed
    again), touches no other thread's data, and deleting an empty or already deleted
    thread is no error; the thread can be written again."""
    adapter, thread_id, other = ctx.adapter, ctx.thread_id(), ctx.thread_id()
    live, archived, foreign = ctx.session_id(), ctx.session_id(), ctx.session_id()
    await adapter.save_session(session(live, thread_id))
    await adapter.archive_session(archived, thread_id=thread_id)
    await adapter.save_session(session(foreign, other))
    await adapter.save_messages(
        thread_id, [text_message("a", session_id=live), text_message("b", session_id=foreign)]
    )
    await adapter.save_messages(
        other, [text_message("a", session_id=live), text_message("c", session_id=archived)]
    )
    expect_ids(await adapter.list_messages(other), ["a"], "the other thread before the delete")
    await adapter.delete_thread(thread_id)
    expect_equal(await adapter.list_messages(thread_id), [], "messages after delete_thread")
    expect_equal(await adapter.get_message(thread_id, "a"), None, "get_message after delete")
    expect_equal(
        await adapter.list_sessions(thread_id, include_archived=True), [], "sessions after delete"
    )
    expect_equal(await adapter.get_session(live), None, "the live session after delete")
    expect_equal(await adapter.get_session(archived), None, "the archived session after delete")
    expect_ids(
        await adapter.list_messages(other),
        ["a", "c"],
        "the other thread's messages (the archived session's row is gone with its thread)",
    )
    expect_equal(
        [s.id for s in await adapter.list_sessions(other)], [foreign], "the other thread's sessions"
    )
    await adapter.delete_thread(thread_id)
    await adapter.delete_thread(ctx.thread_id())
    stored = await adapter.save_messages(thread_id, [text_message("again")])
    expect_ids(await adapter.list_messages(thread_id), ["again"], "the thread written again")
    expect_equal(await adapter.get_message(thread_id, "again"), stored[0], "get_message")


@check(requires=[Capability.DURABLE], needs_reopen=True)
async def data_survives_reopening(ctx: CheckContext) -> None:
    """What one adapter wrote, a new adapter on the same store reads back equal after
    it opens."""
    adapter, thread_id = ctx.adapter, ctx.thread_id()
    sid = ctx.session_id()
    messages = await adapter.save_messages(
        thread_id, [_mutable_message("m1"), text_message("m2", session_id=sid)]
    )
    stored = await adapter.save_session(session(sid, thread_id, state={"k": 1}))
    await adapter.archive_session(ctx.session_id(), thread_id=thread_id)
    sessions = await adapter.list_sessions(thread_id, include_archived=True)
    fresh = ctx.fresh_adapter()
    async with fresh:
        expect_equal(await fresh.list_messages(thread_id), messages, "messages after reopening")
        expect_equal(await fresh.get_session(sid), stored, "session after reopening")
        expect_equal(
            await fresh.list_sessions(thread_id, include_archived=True),
            sessions,
            "list_sessions after reopening",
        )
        later = await fresh.save_messages(thread_id, [text_message("m3")])
    expect_equal(await adapter.get_message(thread_id, "m3"), later[0], "written by the new adapter")
