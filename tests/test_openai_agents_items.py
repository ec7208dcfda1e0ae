"""Fidelity and the two-way mapping of ``ChatPersistenceSession``, over every backend.

Every item reads back JSON-equal, in order, whatever its type; each is one
``Message`` other readers understand; messages other runtimes saved read back as
items the SDK accepts.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
from collections.abc import Sequence
from typing import Any, cast

import pytest
from agents import Agent, Runner
from agents.testing import ScriptedModel
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_persistence import (
    DataPart,
    FilePart,
    InvalidMessageError,
    Message,
    PersistenceAdapter,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    UnknownPart,
)
from chat_persistence_memory import MemoryPersistence
from chat_persistence_openai_agents import ChatPersistenceSession
from strategies import json_objects, json_values, storable_text

Item = dict[str, Any]

ITEMS: list[Item] = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {"type": "message", "role": "system", "content": "Be brief."},
    {"role": "developer", "content": [{"type": "input_text", "text": "Use tools."}]},
    {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "Look at this"},
            {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"},
            {"type": "input_file", "file_id": "file-1", "filename": "a.pdf"},
        ],
    },
    {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "Need the weather tool."}],
        "content": [{"type": "reasoning_text", "text": "hidden"}],
        "encrypted_content": "gAAAAABo-opaque==",
    },
    {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "ZZZ"},
    {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{ "city" :"Paris",\n "units": "C" }',
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "18C, sunny"},
    {"type": "function_call", "call_id": "call_2", "name": "f", "arguments": "{not json"},
    {
        "type": "function_call_output",
        "call_id": "call_2",
        "output": [{"type": "input_text", "text": "list output"}],
    },
    {"type": "function_call_output", "call_id": "call_unknown", "output": "orphan"},
    {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [
            {"type": "output_text", "text": "It is 18C.", "annotations": [], "logprobs": []},
            {"type": "refusal", "refusal": "no more"},
        ],
    },
    {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"query": "q"}},
    {"type": "file_search_call", "id": "fs_1", "queries": ["a"], "status": "completed"},
    {"type": "computer_call", "id": "cc", "call_id": "c3", "action": {"type": "click", "x": 1}},
    {"type": "computer_call_output", "call_id": "c3", "output": {"type": "computer_screenshot"}},
    {"type": "code_interpreter_call", "id": "ci", "code": "print(1)", "outputs": None},
    {"type": "image_generation_call", "id": "ig", "result": "aGVsbG8=", "status": "completed"},
    {"type": "mcp_call", "id": "mcp", "server_label": "s", "name": "t", "arguments": "{}"},
    {"type": "mcp_approval_request", "id": "ar", "name": "t", "arguments": "{}"},
    {"type": "item_reference", "id": "ref_1"},
    {"type": "future_item_v9", "payload": {"nested": [1, 2.5, None, True, "x"]}},
    {"payload": "no type at all"},
    {"role": "user", "content": []},
    {"role": "user", "content": [{"type": "text", "text": "clashes with a known part"}]},
    {"role": "user", "content": [{"type": "input_text", "text": "t", "openaiType": "x"}]},
    {"role": "assistant", "content": "Unicode: 你好 🌍 \u200b ñ"},
    {"role": "robot", "content": "a role the SDK does not know"},
]


async def test_every_item_reads_back_json_equal_in_order(
    session: ChatPersistenceSession,
) -> None:
    added: list[Any] = copy.deepcopy(ITEMS)
    await session.add_items(added[:5])
    await session.add_items(added[5:])
    assert await session.get_items() == ITEMS
    # Nothing the caller holds aliases the store.
    added[0]["content"] = "changed"
    got: list[Any] = await session.get_items()
    got[1]["content"] = "changed too"
    assert await session.get_items() == ITEMS
    # Survives JSON text, as the SDK's own sessions store items.
    assert json.loads(json.dumps(await session.get_items())) == ITEMS


async def test_each_item_is_one_message_other_readers_understand(
    session: ChatPersistenceSession, adapter: PersistenceAdapter
) -> None:
    await session.add_items(cast(Any, copy.deepcopy(ITEMS)))
    messages = await adapter.list_messages(session.session_id)
    assert len(messages) == len(ITEMS)
    by_item = dict(zip(range(len(ITEMS)), messages, strict=True))
    user = by_item[0]
    assert user.role == "user"
    assert isinstance(user.parts[0], TextPart)
    assert user.parts[0].text == "What is the weather in Paris?"
    assert [type(p) for p in by_item[3].parts] == [TextPart, UnknownPart, UnknownPart]
    assert isinstance(by_item[4].parts[0], ReasoningPart)
    assert by_item[4].parts[0].text == "Need the weather tool."
    call = by_item[6].parts[0]
    assert isinstance(call, ToolCallPart)
    assert (call.tool_call_id, call.tool_name, call.input) == (
        "call_1",
        "get_weather",
        {"city": "Paris", "units": "C"},
    )
    assert cast(ToolCallPart, by_item[8].parts[0]).input == "{not json"
    result = by_item[7].parts[0]
    assert isinstance(result, ToolResultPart)
    assert (by_item[7].role, result.tool_name, result.output) == (
        "tool",
        "get_weather",
        "18C, sunny",
    )
    # No call in the history: the name is left empty rather than guessed.
    assert cast(ToolResultPart, by_item[10].parts[0]).tool_name == ""
    assistant = by_item[11]
    assert assistant.role == "assistant"
    assert cast(TextPart, assistant.parts[0]).text == "It is 18C."
    hosted = by_item[12].parts[0]
    assert isinstance(hosted, DataPart)
    assert hosted.name == "openai-agents:web_search_call"
    assert hosted.data == ITEMS[12]


async def test_tool_name_is_found_in_the_stored_history(
    adapter: PersistenceAdapter, thread_id: str
) -> None:
    call: Any = {"type": "function_call", "call_id": "c9", "name": "lookup", "arguments": "{}"}
    await ChatPersistenceSession(thread_id, adapter).add_items([call])
    filler = [{"role": "user", "content": f"m{i}"} for i in range(250)]
    await ChatPersistenceSession(thread_id, adapter).add_items(cast(Any, filler))
    # A new session (a rehydrated run) knows nothing: the name comes from the store.
    later = ChatPersistenceSession(thread_id, adapter)
    await later.add_items([{"type": "function_call_output", "call_id": "c9", "output": "x"}])
    newest = (await adapter.list_messages(thread_id, limit=1))[0]
    assert cast(ToolResultPart, newest.parts[0]).tool_name == "lookup"


def foreign_messages() -> list[Message]:
    """A conversation another runtime (say, a TypeScript one) saved in the thread."""
    return [
        Message(id="f1", role="user", parts=[TextPart("Weather in Paris?")]),
        Message(
            id="f2",
            role="assistant",
            parts=[TextPart("Let me check."), ToolCallPart("t1", "get_weather", {"city": "Paris"})],
        ),
        Message(id="f3", role="tool", parts=[ToolResultPart("t1", "get_weather", {"temp": 18})]),
        Message(id="f4", role="assistant", parts=[ReasoningPart("hmm"), TextPart("It is 18C.")]),
        Message(
            id="f5",
            role="user",
            parts=[
                TextPart("See these"),
                FilePart("image/png", data="aGk="),
                FilePart("application/pdf", url="https://example.com/y.pdf", filename="y.pdf"),
            ],
        ),
        Message(id="f6", role="user", parts=[DataPart({"k": 1}), UnknownPart({"type": "x"})]),
    ]


FOREIGN_ITEMS: list[Item] = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "Let me check."},
    {
        "type": "function_call",
        "call_id": "t1",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    },
    {"type": "function_call_output", "call_id": "t1", "output": '{"temp": 18}'},
    {"role": "assistant", "content": "It is 18C."},
    {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "See these"},
            {"type": "input_image", "image_url": "data:image/png;base64,aGk=", "detail": "auto"},
            {"type": "input_file", "file_url": "https://example.com/y.pdf", "filename": "y.pdf"},
        ],
    },
]


async def test_messages_other_runtimes_saved_read_back_as_sdk_items(
    session: ChatPersistenceSession, adapter: PersistenceAdapter
) -> None:
    await adapter.save_messages(session.session_id, foreign_messages())
    assert await session.get_items() == FOREIGN_ITEMS
    assert await session.get_items(limit=2) == FOREIGN_ITEMS[-2:]
    assert await session.get_items(limit=5) == FOREIGN_ITEMS[-5:]
    # The SDK takes them as history: a run sends them to the model, then the new turn.
    model = ScriptedModel()
    model.enqueue([_text_output("Anything else?")])
    result = await Runner.run(Agent(name="a", model=model), "Thanks", session=session)
    assert result.final_output == "Anything else?"
    sent = cast(list[Item], model.calls[-1].input)
    assert sent[: len(FOREIGN_ITEMS)] == FOREIGN_ITEMS
    assert sent[len(FOREIGN_ITEMS)] == {"role": "user", "content": "Thanks"}


async def test_popping_another_runtimes_messages(
    pop_session: ChatPersistenceSession, delete_adapter: PersistenceAdapter
) -> None:
    await delete_adapter.save_messages(pop_session.session_id, foreign_messages())
    # The newest message with no SDK meaning is passed over, and stays stored.
    assert await pop_session.pop_item() == FOREIGN_ITEMS[5]
    assert await pop_session.pop_item() == FOREIGN_ITEMS[4]
    assert await pop_session.pop_item() == FOREIGN_ITEMS[3]
    # A message standing for two items gives its last; the first stays.
    assert await pop_session.pop_item() == FOREIGN_ITEMS[2]
    assert await pop_session.get_items() == FOREIGN_ITEMS[:2]
    stored = [m.id for m in await delete_adapter.list_messages(pop_session.session_id)]
    assert stored[:2] == ["f1", "f6"]


def _text_output(text: str) -> Any:
    from openai.types.responses import ResponseOutputMessage, ResponseOutputText

    return ResponseOutputMessage(
        id="msg_x",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"role": "user", "content": "a\x00b"}, "items[1]: TextPart.text"),
        ({"role": "user", "content": "ok", "name": "\x00"}, "items[1]: TextPart.extra"),
        ({"role": "user", "content": "ok", "score": math.nan}, "items[1]: TextPart.extra"),
        ({"role": "user", "content": "ok", 7: "a key that is no string"}, "items[1]"),
        ({"type": "function_call_output", "call_id": "c", "output": "\x00"}, "items[1]"),
        ({"type": "x", "data": {"k\x00": 1}}, "items[1]"),
        ({"type": "x", "value": math.nan}, "items[1]"),
        ({"type": "x", "value": object()}, "items[1]"),
        ("not a dict", "items[1]"),
    ],
)
async def test_an_item_no_store_keeps_is_refused_and_nothing_is_written(
    session: ChatPersistenceSession, item: object, field: str
) -> None:
    """A NUL (which Postgres jsonb refuses), NaN or a non-JSON value is not encoded:
    the batch is refused with an InvalidMessageError naming the item."""
    await session.add_items([{"role": "user", "content": "kept"}])
    with pytest.raises(InvalidMessageError) as caught:
        await session.add_items(cast(Any, [{"role": "user", "content": "ok"}, item]))
    assert caught.value.field.startswith(field)
    assert await session.get_items() == [{"role": "user", "content": "kept"}]


class Unchecked(MemoryPersistence):
    """A host's adapter whose ``save_messages`` validates nothing."""

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        return await self._save_messages(thread_id, tuple(messages))


async def test_items_are_checked_when_the_adapter_does_not_check(thread_id: str) -> None:
    """Over an adapter that runs no validator, the session still refuses an item no
    store keeps, naming it, and writes nothing."""
    async with Unchecked() as adapter:
        session = ChatPersistenceSession(thread_id, adapter)
        with pytest.raises(InvalidMessageError) as caught:
            await session.add_items([{"role": "user", "content": "ok"}, TEXT_WITH_NUL])
        assert caught.value.field == "items[1]: TextPart.text"
        assert await adapter.list_messages(thread_id) == []
        await session.add_items([{"role": "user", "content": "ok"}])
        assert await session.get_items() == [{"role": "user", "content": "ok"}]


TEXT_WITH_NUL: Any = {"role": "user", "content": "a\x00b"}

_ROLES = st.sampled_from(["user", "assistant", "system", "developer"])
_KINDS = st.sampled_from(
    ["message", "function_call", "function_call_output", "reasoning", "web_search_call"]
)
_ELEMENT_KINDS = st.sampled_from(["input_text", "output_text", "text", "refusal"])


@st.composite
def _element(draw: st.DrawFn) -> Item:
    rest: Item = draw(json_objects(max_leaves=3))
    if draw(st.booleans()):
        return rest
    return {**rest, "type": draw(_ELEMENT_KINDS | storable_text()), "text": draw(storable_text())}


@st.composite
def _item(draw: st.DrawFn) -> Item:
    """An item of any shape: typed or not, a message, a call with any arguments."""
    rest: Item = draw(json_objects())
    shape = draw(st.sampled_from(["typed", "message", "call"]))
    if shape == "typed":
        return {**rest, "type": draw(_KINDS | storable_text())}
    if shape == "message":
        content: str | list[Item] = draw(storable_text() | st.lists(_element(), max_size=3))
        return {**rest, "role": draw(_ROLES), "content": content}
    arguments: str = draw(json_values().map(json.dumps) | storable_text())
    return {
        "type": "function_call",
        "call_id": draw(storable_text()),
        "name": draw(storable_text()),
        "arguments": arguments,
    }


@settings(max_examples=80, deadline=None)
@given(items=st.lists(_item(), min_size=1, max_size=6))
def test_any_json_items_round_trip(items: list[Item]) -> None:
    async def round_trip() -> list[Any]:
        async with ChatPersistenceSession.from_url("prop", "memory://") as session:
            await session.add_items(cast(Any, copy.deepcopy(items)))
            return await session.get_items()

    assert asyncio.run(round_trip()) == items


async def test_mangled_bridge_keys_never_make_a_thread_unreadable(
    session: ChatPersistenceSession, adapter: PersistenceAdapter
) -> None:
    """Another program rewrote what the bridge keeps in extra keys: the messages read
    back as another runtime's would."""
    mangled = [
        Message(id="x1", role="user", parts=[TextPart("hi", extra={"openaiAgentsItem": "?"})]),
        Message(
            id="x2",
            role="assistant",
            parts=[TextPart("yo", extra={"openaiAgentsItem": {}, "openaiAgentsContent": 3})],
        ),
        Message(id="x3", role="assistant", parts=[DataPart([1, 2], name="openai-agents:x")]),
        Message(id="x4", role="tool", parts=[UnknownPart({"type": "openai-agents-empty"})]),
    ]
    await adapter.save_messages(session.session_id, mangled)
    assert await session.get_items() == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
    ]
