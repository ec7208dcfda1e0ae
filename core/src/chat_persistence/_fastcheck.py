"""A fast yes for the common case of validation: every write checks its batch again.

``surely_valid`` answers True only when a message certainly passes every rule;
anything unusual (a non-ASCII string with a NUL or surrogate, an extra key, a long
id) answers False, and the caller runs the full validators, which name the problem.
The rules themselves live in ``_model`` and ``_json``; this module only skips work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._json import _UNSTORABLE as UNSTORABLE
from ._json import MAX_ID_BYTES
from ._model import (
    DataPart,
    FilePart,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    UnknownPart,
)

_SHORT_ID = MAX_ID_BYTES // 4
"""Ids up to this many characters fit the byte limit whatever they hold (UTF-8 takes at
most 4 bytes a character); longer ones go the slow way, which counts bytes."""
_MAX_DEPTH = 64
_BIG = 10**18


def _text(value: object) -> bool:
    if type(value) is not str:
        return False
    if value.isascii():
        return "\x00" not in value
    return UNSTORABLE.search(value) is None


def _optional_text(value: object) -> bool:
    return value is None or _text(value)


def _id(value: object) -> bool:
    return type(value) is str and 0 < len(value) <= _SHORT_ID and _text(value)


def _json(value: Any, depth: int = 0) -> bool:
    kind = type(value)  # pyright: ignore[reportUnknownVariableType]
    if kind is str:
        return _text(value)
    if kind is int:
        # Huge ints are rare: the full check counts their digits.
        return -_BIG < value < _BIG
    if value is None or kind is bool:
        return True
    if kind is float:
        return value - value == 0.0  # false for NaN and the infinities
    if depth >= _MAX_DEPTH:
        return False
    if kind is dict:
        return all(type(k) is str and _text(k) and _json(v, depth + 1) for k, v in value.items())
    if kind is list:
        return all(_json(v, depth + 1) for v in value)
    return False


def _no_extra(extra: object) -> bool:
    # Exactly an empty dict: the validator refuses None and dict subclasses.
    return type(extra) is dict and not extra


def _part(part: Part) -> bool:
    if type(part) is UnknownPart:
        return part.type is not None and _json(part.raw)
    if type(part) is TextPart:
        return _no_extra(part.extra) and _text(part.text)
    if type(part) is ToolCallPart:
        return (
            _no_extra(part.extra)
            and _text(part.tool_call_id)
            and _text(part.tool_name)
            and _json(part.input)
        )
    if type(part) is ToolResultPart:
        return (
            _no_extra(part.extra)
            and _text(part.tool_call_id)
            and _text(part.tool_name)
            and _json(part.output)
            and (part.is_error is None or type(part.is_error) is bool)
        )
    if type(part) is ReasoningPart:
        return _no_extra(part.extra) and _text(part.text) and _optional_text(part.signature)
    if type(part) is DataPart:
        return _no_extra(part.extra) and _json(part.data) and _optional_text(part.name)
    if type(part) is FilePart:
        return (
            _no_extra(part.extra)
            and _text(part.media_type)
            and _optional_text(part.url)
            and _optional_text(part.data)
            and _optional_text(part.filename)
            and (part.url is not None or part.data is not None)
        )
    return False


def surely_valid(message: Message) -> bool:
    """True when ``message`` certainly passes every validation rule."""
    created = message.created_at
    return (
        _id(message.id)
        and _id(message.role)
        and (message.session_id is None or _id(message.session_id))
        and (
            created is None
            or (
                isinstance(created, datetime)
                and created.utcoffset() is not None
                and 1 < created.year < 9999
            )
        )
        and type(message.parts) is tuple
        and all(_part(p) for p in message.parts)
    )
