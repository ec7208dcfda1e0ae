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
from ._model import KNOWN_PARTS, KnownPart, Part, UnknownPart

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
    __slots__ = ("cls", "keys", "nullable", "structure", "unstructure")

    cls: type[KnownPart]
    keys: frozenset[str]
    nullable: frozenset[str]
    """Wire keys whose value is any JSON, so an explicit null is a value, not absence."""
    structure: Callable[[Mapping[str, Any], Any], KnownPart]
    unstructure: Callable[[KnownPart], dict[str, Any]]

    def __init__(self, cls: type[KnownPart]) -> None:
        fields = [f for f in attrs.fields(cls) if f.name != "extra"]
        overrides: dict[str, Any] = {}
        keys: set[str] = set()
        nullable: set[str] = set()
        for f in fields:
            wire = str(_RENAMES.get(f.name, f.name))
            keys.add(wire)
            json_typed = f.type in ("JSON", "JSON | None")
            if json_typed:
                nullable.add(wire)
            overrides[f.name] = override(
                rename=wire,
                struct_hook=_identity if json_typed else None,
                omit_if_default=f.default is None,
            )
        self.cls = cls
        self.keys = frozenset(keys)
        self.nullable = frozenset(nullable)
        self.structure = make_dict_structure_fn(
            cls, _converter, _cattrs_forbid_extra_keys=False, extra=override(omit=True), **overrides
        )
        self.unstructure = make_dict_unstructure_fn(
            cls, _converter, extra=override(omit=True), **overrides
        )


_CODECS: dict[str, _PartCodec] = {cls.type: _PartCodec(cls) for cls in KNOWN_PARTS}
_CODEC_BY_CLASS: dict[type[KnownPart], _PartCodec] = {c.cls: c for c in _CODECS.values()}


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
    return _structure_object(value, kind)


def _structure_object(value: dict[str, JSON], kind: str) -> Part:
    codec = _CODECS.get(kind)
    if codec is None:
        return UnknownPart(value)
    for key in codec.keys - codec.nullable:
        # An explicit null where the model means "absent" would be lost.
        if key in value and value[key] is None:
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
    an ``UnknownPart`` holding it, and a ``StoredPartsWarning`` names the thread and
    message.
    """
    if type(value) is not list:
        parts = [_unchecked_unknown(value)]
        problem = "is not an array"
    else:
        parts = []
        bad = 0
        for item in cast(list[object], value):
            part = _structure_stored(item)
            if part is None:
                bad += 1
                part = _unchecked_unknown(item)
            parts.append(part)
        problem = f"has {bad} malformed element(s)" if bad else None
    if problem is not None:
        warnings.warn(
            StoredPartsWarning(
                f"thread {thread_id!r}, message {message_id!r}: parts_json {problem}; "
                "kept as UnknownPart"
            ),
            stacklevel=2,
        )
    return tuple(parts)


def _structure_stored(item: object) -> Part | None:
    """The part ``item`` decodes to, or None when it is not a part at all."""
    if type(item) is not dict:
        return None
    obj = cast(dict[str, JSON], item)
    kind = obj.get("type")
    if type(kind) is not str:
        return None
    try:
        return _structure_object(obj, kind)
    except Exception:
        # Something no backend can store (a NUL, NaN, a non-string key): keep it raw.
        return None


def _unchecked_unknown(raw: object) -> UnknownPart:
    """An ``UnknownPart`` holding ``raw`` even when ``raw`` breaks the validation
    rules: reading must never fail. Saving it again is rejected by validation."""
    try:
        return UnknownPart(cast(JSON, raw))
    except Exception:
        # Not attrs.validators.disabled(): that switch is process-wide, not per thread.
        part = object.__new__(UnknownPart)
        object.__setattr__(part, "raw", raw)
        return part


class StoredPartsWarning(UserWarning):
    """A stored message's ``parts_json`` did not decode cleanly (kept as ``UnknownPart``)."""
