"""``Message`` -> SDK items: exactly what was added, or the nearest items the SDK accepts.

A message the bridge wrote gives back its one item, JSON-equal. A message another
runtime wrote becomes zero or more items: its text (and files, for non-assistant
roles) one message item, each tool call a ``function_call``, each tool result a
``function_call_output``. Parts with no SDK meaning (reasoning without the
provider's ids, data, unknown parts) are left out of the items, and stay stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, cast

from chat_persistence import (
    DataPart,
    FilePart,
    Message,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    UnknownPart,
    unstructure_part,
)

from ._encode import CONTENT_KEY, DATA_PREFIX, EMPTY, ITEM_KEY, TYPE_KEY, WRAPPED

Item = dict[str, Any]

_ROLES = frozenset({"user", "assistant", "system", "developer"})


def decode(message: Message) -> list[Item]:
    """The SDK items ``message`` stands for, oldest first."""
    plain = plain_text(message)
    if plain is not None:
        return [plain]
    ours = _our_item(message)
    if ours is not None:
        return [ours]
    return _foreign_items(message)


def plain_text(message: Message) -> Item | None:
    """The item of a plain text message (one ``TextPart``, no extra keys, a role the
    SDK knows), the commonest kind; None for any other message."""
    parts = message.parts
    if len(parts) != 1 or message.role not in _ROLES:
        return None
    part = parts[0]
    if type(part) is not TextPart or part.extra:
        return None
    return {"role": message.role, "content": part.text}


def decode_rows(
    rows: Iterable[tuple[str, str, Any]], other: Callable[[str, str, object], list[Item]]
) -> list[Item]:
    """The items of stored ``(message_id, role, parts JSON)`` rows, oldest first: a
    plain text message (parts exactly one ``{"type": "text", "text": ...}``, what
    decodes to one ``TextPart`` without extra keys) straight from its JSON, as
    ``plain_text`` gives it; the items of any other row from ``other``."""
    items: list[Item] = []
    append = items.append
    # This runs once a row: no cast() calls, and ``__class__ is`` (as fast as
    # ``type() is``) keeps the values typed Any.
    for message_id, role, parts in rows:
        if parts.__class__ is list and len(parts) == 1 and role in _ROLES:
            part = parts[0]
            if part.__class__ is dict and len(part) == 2 and part.get("type") == "text":
                text = part.get("text")
                if text.__class__ is str:
                    append({"role": role, "content": text})
                    continue
        items += other(message_id, role, parts)
    return items


def _our_item(message: Message) -> Item | None:
    if not message.parts:
        return None
    first = message.parts[0]
    if isinstance(first, DataPart):
        ours = len(message.parts) == 1 and (first.name or "").startswith(DATA_PREFIX)
        return cast(Item, first.data) if ours and isinstance(first.data, dict) else None
    if isinstance(first, TextPart) and len(message.parts) == 1:
        found = first.extra.get(ITEM_KEY)
        if isinstance(found, dict) and first.extra.get(CONTENT_KEY) == "string":
            return {**cast(Item, found), "content": first.text}
    marker = _marker(first)
    if marker is None:
        return None
    whole, form = marker
    if form is None:  # a call, an output or reasoning: the item itself rode along
        return whole if len(message.parts) == 1 else None
    elements = [_element(part) for part in message.parts]
    if form == "string":
        texts = [e["text"] for e in elements if e is not None and isinstance(e.get("text"), str)]
        return {**whole, "content": "".join(texts)}
    return {**whole, "content": [e for e in elements if e is not None]}


def _marker(part: Part) -> tuple[Item, str | None] | None:
    extra: dict[str, Any] | None
    if isinstance(part, UnknownPart):
        extra = cast(dict[str, Any], part.raw) if isinstance(part.raw, dict) else None
    else:
        extra = cast(dict[str, Any], part.extra)
    if extra is None:
        return None
    whole = extra.get(ITEM_KEY)
    if not isinstance(whole, dict):
        return None
    form = extra.get(CONTENT_KEY)
    if form is None:
        return (cast(Item, whole), None) if not isinstance(part, TextPart) else None
    return (cast(Item, whole), form) if form in ("string", "list") else None


def _element(part: Part) -> Item | None:
    """The content element a part of a message item came from (None: no element)."""
    if isinstance(part, TextPart):
        rest = {k: v for k, v in part.extra.items() if k not in (ITEM_KEY, CONTENT_KEY)}
        kind = rest.pop(TYPE_KEY, None)
        if kind is None:
            return {"type": "input_text", "text": part.text, **rest}
        return {"type": kind, "text": part.text, **rest}
    if isinstance(part, UnknownPart) and isinstance(part.raw, dict):
        raw = {k: v for k, v in part.raw.items() if k not in (ITEM_KEY, CONTENT_KEY)}
        if raw.get("type") == EMPTY:
            return None
        if raw.get("type") == WRAPPED and isinstance(raw.get("element"), dict):
            return cast(Item, raw["element"])
        return raw
    return cast(Item, unstructure_part(part))


def _foreign_items(message: Message) -> list[Item]:
    items: list[Item] = []
    content: list[Item] = []

    def flush() -> None:
        if content:
            items.append(_message_item(message.role, content.copy()))
            content.clear()

    for part in message.parts:
        if isinstance(part, ToolCallPart):
            flush()
            items.append(_function_call(part))
        elif isinstance(part, ToolResultPart):
            flush()
            items.append(_function_call_output(part))
        elif message.role in _ROLES:
            element = _foreign_element(part, message.role)
            if element is not None:
                content.append(element)
    flush()
    return items


def _message_item(role: str, content: list[Item]) -> Item:
    texts = [e["text"] for e in content if e["type"] in ("input_text", "output_text")]
    if len(texts) == len(content) and (role == "assistant" or len(texts) == 1):
        # The shape every model provider takes for plain text.
        return {"role": role, "content": "".join(texts)}
    return {"role": role, "content": content}


def _foreign_element(part: Part, role: str) -> Item | None:
    if isinstance(part, TextPart):
        return {"type": "output_text" if role == "assistant" else "input_text", "text": part.text}
    if isinstance(part, FilePart) and role != "assistant":
        if part.media_type.startswith("image/"):
            url = part.url if part.url is not None else f"data:{part.media_type};base64,{part.data}"
            return {"type": "input_image", "image_url": url, "detail": "auto"}
        element: Item = {"type": "input_file"}
        if part.data is not None:
            element["file_data"] = f"data:{part.media_type};base64,{part.data}"
        else:
            element["file_url"] = part.url
        if part.filename is not None:
            element["filename"] = part.filename
        return element
    return None


def _function_call(part: ToolCallPart) -> Item:
    arguments = part.input if isinstance(part.input, str) else json.dumps(part.input)
    return {
        "type": "function_call",
        "call_id": part.tool_call_id,
        "name": part.tool_name,
        "arguments": arguments,
    }


def _function_call_output(part: ToolResultPart) -> Item:
    output = part.output if isinstance(part.output, str) else json.dumps(part.output)
    return {"type": "function_call_output", "call_id": part.tool_call_id, "output": output}
