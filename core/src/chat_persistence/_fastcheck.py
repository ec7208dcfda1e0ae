"""A fast yes for the common case of validation: every write checks its batch again.

``surely_valid`` answers True only when a message certainly passes every rule;
anything unusual (a non-ASCII string with a NUL or surrogate, an extra key, a long
id) answers False, and the caller runs the full validators, which name the problem.
The rules themselves live in ``_model`` and ``_json``; this module only skips work.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from ._generated import compile_function
from ._json import _UNSTORABLE as UNSTORABLE
from ._json import MAX_ID_BYTES
from ._model import KNOWN_PARTS, KnownPart, Message, Part, UnknownPart
from ._partschema import one_of, wire_fields

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


def _make_check(cls: type[KnownPart]) -> Callable[[Any], bool]:
    """The fast check of a known part class: no extra keys, every modeled field of
    its declared kind and storable, and its ``one_of`` rule."""
    tests = [
        # Exactly an empty dict: the validator refuses None and dict subclasses.
        "type(part.extra) is dict",
        "not part.extra",
    ]
    for f in wire_fields(cls):
        value = f"part.{f.name}"
        test = {
            "str": f"text({value})",
            "bool": f"type({value}) is bool",
            "json": f"json({value})",
        }[f.kind]
        tests.append(test if f.required else f"({value} is None or {test})")
    needed = one_of(cls)
    if needed:
        tests.append("(" + " or ".join(f"part.{f.name} is not None" for f in needed) + ")")
    body = ["return (", *(f"    {test} and" for test in tests[:-1]), f"    {tests[-1]}", ")"]
    names: dict[str, Any] = {"text": _text, "json": _json}
    return compile_function("check", "part", body, names, label=f"check of {cls.__name__}")


def _unknown(part: UnknownPart) -> bool:
    return part.type is not None and _json(part.raw)


_CHECKS: dict[type[Any], Callable[[Any], bool]] = {
    **{cls: _make_check(cls) for cls in KNOWN_PARTS},
    UnknownPart: _unknown,
}


def _never(_: object) -> bool:
    return False


def surely_valid_part(part: Part) -> bool:
    """True when ``part`` certainly passes every rule of a part on the write path."""
    return _CHECKS.get(type(part), _never)(part)


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
        and _parts(message.parts)
    )


def _parts(parts: object) -> bool:
    # A loop, not all() over a generator: this runs for every message written.
    if type(parts) is not tuple:
        return False
    for part in cast("tuple[object, ...]", parts):  # noqa: SIM110
        if not _CHECKS.get(type(part), _never)(part):
            return False
    return True
