"""The wire codec: parts to and from the JSON objects stored in ``parts_json``.

Total and lossless on every JSON object with a string ``"type"``: a well-formed
known part becomes its class (keys it does not model kept in ``extra``); anything
else becomes an ``UnknownPart`` holding the object, so for every such ``p``,
``unstructure_part(structure_part(p)) == p``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

import attrs

from ._errors import InvalidMessageError
from ._json import JSON
from ._model import KNOWN_PARTS, FilePart, KnownPart, Message, Part, UnknownPart

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


@functools.cache
def _converter() -> Any:
    # Imported on first use: cattrs and its generated functions cost more at import
    # than the rest of the package together, and reads never need them.
    import cattrs

    conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=False)
    # cattrs coerces by default (str(1) == "1"); the wire codec must not, or it
    # would lose information. A known key with the wrong type makes an UnknownPart.
    for kind in (str, bool):
        conv.register_structure_hook(kind, _exactly(kind))
    return conv


_Setter = Callable[[Any, Any], None]


def _slot_setter(cls: type[Any], name: str) -> _Setter:
    # attrs' frozen classes refuse normal assignment; the slot's own descriptor sets
    # it, as attrs' __init__ does (and faster than object.__setattr__ by name).
    return cls.__dict__[name].__set__


class _PartCodec:
    __slots__ = ("_structure", "cls", "keys", "nullable", "set_extra", "shape")

    cls: type[KnownPart]
    keys: frozenset[str]
    nullable: frozenset[str]
    """Wire keys whose value is any JSON, so an explicit null is a value, not absence."""
    shape: tuple[tuple[str, str, type[Any] | None, bool, _Setter], ...]
    """(wire key, attribute, exact type or None for any JSON, required, setter) per field."""
    set_extra: _Setter
    _structure: Callable[[Mapping[str, Any], Any], KnownPart] | None

    def __init__(self, cls: type[KnownPart]) -> None:
        shape: list[tuple[str, str, type[Any] | None, bool, _Setter]] = []
        for f in attrs.fields(cls):
            if f.name == "extra":
                continue
            json_typed = f.type in ("JSON", "JSON | None")
            exact = None if json_typed else bool if str(f.type).startswith("bool") else str
            wire = _RENAMES.get(f.name) or f.name
            required = f.default is attrs.NOTHING
            shape.append((wire, f.name, exact, required, _slot_setter(cls, f.name)))
        self.cls = cls
        self.shape = tuple(shape)
        self.keys = frozenset(wire for wire, *_ in shape)
        self.nullable = frozenset(wire for wire, _, exact, *_ in shape if exact is None)
        self.set_extra = _slot_setter(cls, "extra")
        self._structure = None

    def structure(self, value: Mapping[str, Any]) -> KnownPart:
        """cattrs' structure function for the class, made on first use."""
        if self._structure is None:
            from cattrs.gen import make_dict_structure_fn, override

            overrides: dict[str, Any] = {
                name: override(rename=wire, struct_hook=_identity if exact is None else None)
                for wire, name, exact, *_ in self.shape
            }
            self._structure = make_dict_structure_fn(
                self.cls,
                _converter(),
                _cattrs_forbid_extra_keys=False,
                extra=override(omit=True),
                **overrides,
            )
        return self._structure(value, self.cls)

    def unstructure(self, part: KnownPart) -> dict[str, JSON]:
        """The wire object: modeled keys (an absent optional one left out), then extras."""
        wire: dict[str, JSON] = {"type": part.type}
        for key, name, _, required, _ in self.shape:
            value = getattr(part, name)
            if value is not None or required:
                wire[key] = value
        if part.extra:
            wire.update(part.extra)
        return wire


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
        part = codec.structure(value)
    except Exception:
        return UnknownPart(value)
    extra = {k: v for k, v in value.items() if k != "type" and k not in codec.keys}
    if extra:
        part = attrs.evolve(part, extra=extra)
    return cast(Part, part)


def unstructure_part(part: Part) -> dict[str, JSON] | JSON:
    """Turn a part into its wire object (an ``UnknownPart`` gives back its raw value)."""
    if isinstance(part, UnknownPart):
        return part.raw
    return _CODEC_BY_CLASS[type(part)].unstructure(part)


def unstructure_parts(parts: tuple[Part, ...]) -> list[JSON]:
    """The ``parts_json`` array of a message."""
    return [unstructure_part(p) for p in parts]


def structure_stored_parts(value: object, *, thread_id: str, message_id: str) -> tuple[Part, ...]:
    """Decode a stored ``parts_json`` value, never failing.

    Rows written by other programs may hold anything: an element that is not an
    object with a string ``"type"`` (or a value that is not an array) comes back as
    an ``UnknownPart`` holding it, and a ``StoredPartsWarning`` names the thread and
    message. Elements are decoded by shape (the same mapping as ``structure_part``)
    without re-running the content rules, which the write path enforced: this is
    the hot path of every read.
    """
    # No typing.cast in this loop: it is a call, and this is the hot path of reads.
    if type(value) is not list:
        parts: list[Part] = [_trusted_unknown(value)]
        problem: str | None = "is not an array"
    else:
        parts = []
        bad = 0
        items: list[Any] = value  # pyright: ignore[reportUnknownVariableType]
        for item in items:
            kind = item.get("type") if type(item) is dict else None  # pyright: ignore[reportUnknownVariableType]
            if type(kind) is str:  # pyright: ignore[reportUnknownArgumentType]
                parts.append(_decode_trusted(item, kind))  # pyright: ignore[reportUnknownArgumentType]
            else:
                bad += 1
                parts.append(_trusted_unknown(item))  # pyright: ignore[reportUnknownArgumentType]
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


def stored_message(
    *,
    thread_id: str,
    message_id: str,
    role: str,
    session_id: str | None,
    created_at: datetime | None,
    parts_json: object,
) -> Message:
    """Build a ``Message`` from a stored row, for adapters' read paths.

    Never fails on what another program stored (see ``structure_stored_parts``) and
    skips the constructor's validators: the row was validated when it was written.
    """
    message = _new(Message)
    _set_message_id(message, message_id)
    _set_message_role(message, role)
    _set_message_parts(
        message, structure_stored_parts(parts_json, thread_id=thread_id, message_id=message_id)
    )
    _set_message_session_id(message, session_id)
    _set_message_created_at(message, created_at)
    return message


_new = object.__new__
_set_message_id = _slot_setter(Message, "id")
_set_message_role = _slot_setter(Message, "role")
_set_message_parts = _slot_setter(Message, "parts")
_set_message_session_id = _slot_setter(Message, "session_id")
_set_message_created_at = _slot_setter(Message, "created_at")
_set_unknown_raw = _slot_setter(UnknownPart, "raw")


def _decode_trusted(obj: dict[str, object], kind: str) -> Part:
    codec = _CODECS.get(kind)
    if codec is None:
        return _trusted_unknown(obj)
    part = _new(codec.cls)
    present = 1
    for wire, _, exact, required, put in codec.shape:
        if wire in obj:
            value = obj[wire]
            if exact is not None and type(value) is not exact:
                return _trusted_unknown(obj)
            present += 1
        elif required:
            return _trusted_unknown(obj)
        else:
            value = None
        put(part, value)
    if codec.cls is FilePart and obj.get("url") is None and obj.get("data") is None:
        return _trusted_unknown(obj)
    extra = (
        {k: v for k, v in obj.items() if k != "type" and k not in codec.keys}
        if len(obj) > present
        else {}
    )
    codec.set_extra(part, extra)
    return part  # pyright: ignore[reportReturnType]


def _trusted_unknown(raw: object) -> UnknownPart:
    part = _new(UnknownPart)
    _set_unknown_raw(part, raw)
    return part


class StoredPartsWarning(UserWarning):
    """A stored message's ``parts_json`` did not decode cleanly (kept as ``UnknownPart``)."""
