"""The wire codec: parts to and from the JSON objects stored in ``parts_json``.

Total and lossless on every JSON object with a string ``"type"``: a well-formed
known part becomes its class (keys it does not model kept in ``extra``); anything
else becomes an ``UnknownPart`` holding the object, so for every such ``p``,
``unstructure_part(structure_part(p)) == p``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, cast

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._errors import InvalidMessageError
from ._json import JSON
from ._model import KNOWN_PARTS, Part, UnknownPart

# camelCase wire key for each snake_case attribute that differs.
_RENAMES = {
    "tool_call_id": "toolCallId",
    "tool_name": "toolName",
    "is_error": "isError",
    "media_type": "mediaType",
}


def _exactly(kind: type[Any]) -> Callable[[Any, Any], Any]:
    def check(value: Any, _: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return check


def _identity(value: Any, _: Any) -> Any:
    return value


def _build_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=False)
    # cattrs coerces by default (str(1) == "1"); the wire codec must not, or it
    # would lose information. A known key with the wrong type makes an UnknownPart.
    for kind in (str, bool):
        conv.register_structure_hook(kind, _exactly(kind))
    return conv


_converter = _build_converter()


class _PartCodec:
    __slots__ = ("cls", "keys", "structure", "unstructure")

    def __init__(self, cls: type[Any]) -> None:
        fields = [f for f in attrs.fields(cls) if f.name != "extra"]
        overrides: dict[str, Any] = {}
        for f in fields:
            wire = _RENAMES.get(f.name, f.name)
            json_typed = f.type in ("JSON", "JSON | None")
            overrides[f.name] = override(
                rename=wire,
                struct_hook=_identity if json_typed else None,
                omit_if_default=f.default is None,
            )
        self.cls = cls
        self.keys = frozenset(_RENAMES.get(f.name, f.name) for f in fields)
        self.structure = make_dict_structure_fn(
            cls, _converter, _cattrs_forbid_extra_keys=False, extra=override(omit=True), **overrides
        )
        self.unstructure = make_dict_unstructure_fn(
            cls, _converter, extra=override(omit=True), **overrides
        )


_CODECS: dict[str, _PartCodec] = {cls.type: _PartCodec(cls) for cls in KNOWN_PARTS}
_CODEC_BY_CLASS: dict[type[Any], _PartCodec] = {c.cls: c for c in _CODECS.values()}


def structure_part(value: Mapping[str, JSON]) -> Part:
    """Turn one wire object into a part (an ``UnknownPart`` when it is not a
    well-formed known part).

    Raises ``InvalidMessageError`` if ``value`` is not an object with a string
    ``"type"``: that is not a part at all.
    """
    if not isinstance(value, dict):
        raise InvalidMessageError("part", value, "must be a JSON object")
    kind = value.get("type")
    if not isinstance(kind, str):
        raise InvalidMessageError("part", value, 'must have a string "type"')
    return _structure_object(cast(dict[str, JSON], value), kind)


def _structure_object(value: dict[str, JSON], kind: str) -> Part:
    codec = _CODECS.get(kind)
    if codec is None:
        return UnknownPart(value)
    for key in codec.keys:
        # An explicit null where the model means "absent" would be lost.
        if value.get(key, 0) is None and key not in ("input", "output", "data"):
            return UnknownPart(value)
    try:
        part = codec.structure(value, codec.cls)
    except (TypeError, ValueError, KeyError, cattrs.BaseValidationError):
        return UnknownPart(value)
    extra = {k: v for k, v in value.items() if k != "type" and k not in codec.keys}
    if extra:
        part = attrs.evolve(part, extra=extra)
    return cast(Part, part)


def unstructure_part(part: Part) -> dict[str, JSON] | JSON:
    """Turn a part into its wire object (an ``UnknownPart`` gives back its raw value)."""
    if isinstance(part, UnknownPart):
        return part.raw
    codec = _CODEC_BY_CLASS[type(part)]
    body = cast(dict[str, JSON], codec.unstructure(part))
    wire: dict[str, JSON] = {"type": part.type, **body}
    if part.extra:
        wire.update(part.extra)
    return wire


def unstructure_parts(parts: tuple[Part, ...]) -> list[JSON]:
    """The ``parts_json`` array of a message."""
    return [unstructure_part(p) for p in parts]


def structure_stored_parts(value: object, *, thread_id: str, message_id: str) -> tuple[Part, ...]:
    """Decode a stored ``parts_json`` value, never failing.

    Rows written by other programs may hold anything: an element that is not an
    object with a string ``"type"`` (or a value that is not an array) comes back as
    an ``UnknownPart`` holding it, and a warning names the thread and message.
    """
    items: list[Any] = cast(list[Any], value) if type(value) is list else [value]
    parts: list[Part] = []
    bad = 0
    for item in items:
        if type(item) is dict:
            kind = item.get("type")
            if type(kind) is str:
                parts.append(_structure_object(item, kind))
                continue
        bad += 1
        parts.append(UnknownPart(cast(JSON, item)))
    if bad or type(value) is not list:
        warnings.warn(
            StoredPartsWarning(
                f"thread {thread_id!r}, message {message_id!r}: parts_json "
                + (
                    "is not an array"
                    if type(value) is not list
                    else f"has {bad} malformed element(s)"
                )
                + "; kept as UnknownPart"
            ),
            stacklevel=2,
        )
    return tuple(parts)


class StoredPartsWarning(UserWarning):
    """A stored message's ``parts_json`` did not decode cleanly (kept as ``UnknownPart``)."""
