"""The fast path of validation never says yes to a message the full rules reject."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import attrs
from hypothesis import example, given, settings

from chat_persistence import FilePart, InvalidMessageError, Message, TextPart, ToolCallPart
from chat_persistence._fastcheck import surely_valid
from strategies import hostile_messages, unchecked


def passes_every_rule(message: Any) -> bool:
    try:
        attrs.validate(message)
        for part in message.parts:
            attrs.validate(part)
            if isinstance(part, FilePart):
                part.__attrs_post_init__()
    except (InvalidMessageError, TypeError, AttributeError):
        return False
    return True


@settings(max_examples=300)
@given(hostile_messages())
@example(
    unchecked(
        Message,
        id="0",
        role="user",
        parts=(unchecked(TextPart, text="", extra=None),),
        session_id=None,
        created_at=None,
    )
)
@example(
    unchecked(
        Message,
        id="0",
        role="user",
        parts=(unchecked(TextPart, text="", extra=OrderedDict()),),
        session_id=None,
        created_at=None,
    )
)
def test_a_fast_yes_is_always_a_full_yes(message: Any) -> None:
    if isinstance(message, Message) and surely_valid(message):
        assert passes_every_rule(message)


def test_the_common_message_takes_the_fast_path() -> None:
    message = Message(
        "m1", "assistant", [TextPart("é" * 300), ToolCallPart("c1", "get", {"n": [1, 2.5]})]
    )
    assert surely_valid(message)


def test_the_fast_path_refuses_what_validators_disabled_let_through() -> None:
    for bad in (
        unchecked(TextPart, text="a\x00", extra={}),
        unchecked(TextPart, text="\ud800", extra={}),
        unchecked(ToolCallPart, tool_call_id="c", tool_name="t", input=math.nan, extra={}),
        unchecked(ToolCallPart, tool_call_id="c", tool_name="t", input={1: "x"}, extra={}),
    ):
        message = unchecked(
            Message, id="m", role="user", parts=(bad,), session_id=None, created_at=None
        )
        assert not surely_valid(message)
        assert not passes_every_rule(message)
