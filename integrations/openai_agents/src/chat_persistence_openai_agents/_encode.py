"""SDK item -> ``Message``: one message per item, readable by any other runtime.

What other readers see: a text message is ``TextPart``s with the item's role, a
``function_call`` is a ``ToolCallPart``, its output a ``ToolResultPart``, reasoning a
``ReasoningPart``, and any other item a ``DataPart`` named ``openai-agents:<type>``
that holds it whole. What is needed to give the item back exactly rides along in
the parts' extra keys (``ITEM_KEY``), so ``decode`` returns a JSON-equal item.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

from chat_persistence import (
    JSON,
    DataPart,
    InvalidMessageError,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    UnknownPart,
    stored_message,
)

ITEM_KEY = "openaiAgentsItem"
"""Extra key holding the item (for a message item: all of it but its content)."""
CONTENT_KEY = "openaiAgentsContent"
"""Extra key on a message item's first part: ``"string"`` or ``"list"`` content."""
TYPE_KEY = "openaiType"
"""Extra key on a text part that was an ``input_text`` / ``output_text`` element."""
WRAPPED = "openai-agents-content"
"""Part type holding a content element whose type would clash with a known part."""
EMPTY = "openai-agents-empty"
"""Part type standing for a message item whose content list is empty."""
DATA_PREFIX = "openai-agents:"
"""Name prefix of the ``DataPart`` holding an item the bridge does not map."""

_TEXT_ELEMENTS = frozenset({"input_text", "output_text"})
# Element types that would be read as one of our known parts, or as our own markers.
_CLASHING = frozenset(
    {"text", "reasoning", "tool-call", "tool-result", "file", "data", WRAPPED, EMPTY}
)
_RESERVED = frozenset({"type", "text", TYPE_KEY, ITEM_KEY, CONTENT_KEY})
_MESSAGE_ROLES = frozenset({"user", "assistant", "system", "developer"})


def new_message_ids(count: int) -> list[str]:
    """Fresh message ids for ``count`` items (items carry no id that is unique in a
    thread): 32 hex digits, a nanosecond clock then 64 random bits. The clock keeps a
    thread's new messages side by side in the store's key index (random ids would
    scatter them over its pages); the random bits keep ids apart across processes."""
    start = time.time_ns()
    noise = os.urandom(8 * count).hex()
    return [f"{start + i:016x}{noise[16 * i : 16 * i + 16]}" for i in range(count)]


def new_message_id() -> str:
    """One fresh message id (see ``new_message_ids``)."""
    return new_message_ids(1)[0]


def is_message_item(item: Mapping[str, Any]) -> bool:
    """Whether ``item`` is a role-and-content message (``EasyInputMessage`` and kin)."""
    kind = item.get("type", "message")
    if kind != "message" or item.get("role") not in _MESSAGE_ROLES:
        return False
    content = item.get("content")
    return isinstance(content, str) or (
        isinstance(content, list) and all(isinstance(e, dict) for e in cast(list[Any], content))
    )


def encode_all(items: Sequence[object], tool_names: Mapping[str, str]) -> list[Message]:
    """The messages of ``items``, in order, built for speed: a message item with string
    content (the commonest kind) without the model's validators, which the adapter's
    ``save_messages`` runs on every message anyway; any other item by ``encode``.
    When a save refuses them, ``encode`` each item again to name the one at fault."""
    ids = new_message_ids(len(items))
    return [
        _quick_text(item, ids[i]) or encode(i, item, tool_names, message_id=ids[i])
        for i, item in enumerate(items)
    ]


def _quick_text(item: object, message_id: str) -> Message | None:
    """``encode`` of a message item with string content, unvalidated; None for any
    other item. The part is made from its wire object, as a read makes it."""
    if type(item) is not dict:
        return None
    found = cast("dict[str, Any]", item)  # by name: cast(dict[str, Any], ...) builds a type
    role, content = found.get("role"), found.get("content")
    if type(content) is not str or type(role) is not str or role not in _MESSAGE_ROLES:
        return None
    if len(found) == 2:  # as in ``_message_parts``: nothing rides along
        wire: dict[str, Any] = {"type": "text", "text": content}
    elif found.get("type", "message") == "message":
        envelope = {k: v for k, v in found.items() if k != "content"}
        wire = {"type": "text", "text": content, ITEM_KEY: envelope, CONTENT_KEY: "string"}
    else:
        return None
    return stored_message(
        thread_id="",
        message_id=message_id,
        role=role,
        session_id=None,
        created_at=None,
        parts_json=[wire],
    )


def encode(
    index: int, item: object, tool_names: Mapping[str, str], *, message_id: str | None = None
) -> Message:
    """The ``Message`` for ``items[index]``; ``tool_names`` maps call ids to tool names.

    Raises ``InvalidMessageError`` naming ``items[index]`` for an item that is not a
    JSON object, or holds a value no store keeps (a NUL character, NaN).
    """
    field = f"items[{index}]"
    if not isinstance(item, dict):
        raise InvalidMessageError(field, item, "must be a dict (a TResponseInputItem)")
    found = cast(dict[str, Any], item)
    try:
        return Message(id=message_id or new_message_id(), **_role_and_parts(found, tool_names))
    except InvalidMessageError as err:
        raise InvalidMessageError(f"{field}: {err.field}", err.value, err.reason) from None
    except TypeError as err:  # a key that is not a string, met by the part validators
        raise InvalidMessageError(field, found, f"is not JSON: {err}") from None


def _role_and_parts(item: dict[str, Any], tool_names: Mapping[str, str]) -> dict[str, Any]:
    if is_message_item(item):
        return {"role": item["role"], "parts": _message_parts(item)}
    kind = item.get("type")
    whole = cast(JSON, item)
    if kind == "function_call" and _all_str(item, "call_id", "name", "arguments"):
        return {"role": "assistant", "parts": (_tool_call(item, whole),)}
    if kind == "function_call_output" and _all_str(item, "call_id"):
        name = tool_names.get(item["call_id"], "")
        part: Part = ToolResultPart(
            item["call_id"], name, cast(JSON, item.get("output")), extra={ITEM_KEY: whole}
        )
        return {"role": "tool", "parts": (part,)}
    if kind == "reasoning":
        part = ReasoningPart(_reasoning_text(item), extra={ITEM_KEY: whole})
        return {"role": "assistant", "parts": (part,)}
    name = DATA_PREFIX + (kind if isinstance(kind, str) else "item")
    role = "tool" if isinstance(kind, str) and kind.endswith("_output") else "assistant"
    return {"role": role, "parts": (DataPart(whole, name=name),)}


def _message_parts(item: dict[str, Any]) -> tuple[Part, ...]:
    content: str | list[dict[str, Any]] = item["content"]
    if isinstance(content, str) and len(item) == 2:
        # ``{"role", "content"}``, the commonest item: a plain text message, which
        # reads back as exactly this item (see ``_decode``), so nothing rides along.
        return (TextPart(content),)
    envelope = cast(JSON, {k: v for k, v in item.items() if k != "content"})
    if isinstance(content, str):
        return (TextPart(content, extra={ITEM_KEY: envelope, CONTENT_KEY: "string"}),)
    parts = [_content_part(element) for element in content]
    marker = {ITEM_KEY: envelope, CONTENT_KEY: "list"}
    if not parts:
        return (UnknownPart({"type": EMPTY, **marker}),)
    return (_with_extra(parts[0], marker), *parts[1:])


def _content_part(element: dict[str, Any]) -> TextPart | UnknownPart:
    kind = element.get("type")
    if kind in _TEXT_ELEMENTS and isinstance(element.get("text"), str):
        rest = {k: v for k, v in element.items() if k not in ("type", "text")}
        if not _RESERVED.intersection(rest):
            return TextPart(element["text"], extra={TYPE_KEY: kind, **rest})
    if isinstance(kind, str) and kind not in _CLASHING:
        return UnknownPart(cast(JSON, element))
    return UnknownPart({"type": WRAPPED, "element": cast(JSON, element)})


def _with_extra(part: TextPart | UnknownPart, marker: dict[str, JSON]) -> Part:
    if isinstance(part, TextPart):
        return TextPart(part.text, extra={**part.extra, **marker})
    raw = cast(dict[str, JSON], part.raw)
    if raw.keys() & marker.keys():
        return UnknownPart({"type": WRAPPED, "element": raw, **marker})
    return UnknownPart({**raw, **marker})


def _tool_call(item: dict[str, Any], whole: JSON) -> Part:
    arguments: str = item["arguments"]
    try:
        return ToolCallPart(
            item["call_id"], item["name"], _arguments(arguments), extra={ITEM_KEY: whole}
        )
    except InvalidMessageError as err:
        if err.field != "ToolCallPart.input":
            raise
        # Parsed JSON no store keeps (a 4,000-digit number): readers get the string.
        return ToolCallPart(item["call_id"], item["name"], arguments, extra={ITEM_KEY: whole})


def _all_str(item: Mapping[str, Any], *keys: str) -> bool:
    return all(isinstance(item.get(key), str) for key in keys)


def _arguments(arguments: str) -> JSON:
    """The call's input as JSON for other readers; the string itself if it is not JSON."""
    try:
        return cast(JSON, json.loads(arguments, parse_constant=_not_json))
    except ValueError:
        return arguments


def _not_json(constant: str) -> JSON:
    raise ValueError(f"{constant} is not JSON")


def _reasoning_text(item: Mapping[str, Any]) -> str:
    summary = item.get("summary")
    if not isinstance(summary, list):
        return ""
    texts = [
        cast(str, s["text"])
        for s in cast(list[Any], summary)
        if isinstance(s, dict) and isinstance(s.get("text"), str)
    ]
    return "\n\n".join(texts)
