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
    __slots__ = ("_structure", "cls", "keys", "nullable", "shape")

    cls: type[KnownPart]
    keys: frozenset[str]
    nullable: frozenset[str]
    """Wire keys whose value is any JSON, so an explicit null is a value, not absence."""
    shape: tuple[tuple[str, str, type[Any] | None, bool], ...]
    """(wire key, attribute, exact type or None for any JSON, required) per field."""
    _structure: Callable[[Mapping[str, Any], Any], KnownPart] | None

    def __init__(self, cls: type[KnownPart]) -> None:
        shape: list[tuple[str, str, type[Any] | None, bool]] = []
        for f in attrs.fields(cls):
            if f.name == "extra":
                continue
            json_typed = f.type in ("JSON", "JSON | None")
            exact = None if json_typed else bool if str(f.type).startswith("bool") else str
            wire = _RENAMES.get(f.name) or f.name
            required = f.default is attrs.NOTHING
            shape.append((wire, f.name, exact, required))
        self.cls = cls
        self.shape = tuple(shape)
        self.keys = frozenset(wire for wire, *_ in shape)
        self.nullable = frozenset(wire for wire, _, exact, *_ in shape if exact is None)
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
        for key, name, _, required in self.shape:
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
    parts = _decode_stored_parts(value) if type(value) is list else None  # pyright: ignore[reportUnknownArgumentType]
    if parts is None:
        # Attributed to our caller, as when this function warned itself.
        parts = _decode_stored_parts_warning(value, thread_id, message_id, stacklevel=2)  # pyright: ignore[reportUnknownArgumentType]
    return parts


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
    # structure_stored_parts inlined: this runs once for every message read.
    parts = _decode_stored_parts(parts_json) if type(parts_json) is list else None  # pyright: ignore[reportUnknownArgumentType]
    if parts is None:
        parts = _decode_stored_parts_warning(parts_json, thread_id, message_id, stacklevel=1)  # pyright: ignore[reportUnknownArgumentType]
    message = _blank_message()
    message.id = message_id
    message.role = role
    message.parts = parts
    message.session_id = session_id
    message.created_at = created_at
    message.__class__ = Message
    return message


def _blank_maker(cls: type[object]) -> Callable[[], Any]:
    """What makes a blank instance of the frozen attrs class ``cls`` for the read
    path to fill in: its fields take plain assignment until it sets ``__class__``
    to ``cls``.

    The instance is of a subclass that adds nothing to the layout, so Python allows
    the ``__class__`` change, and the result is exactly what ``cls(...)`` makes
    without its validators. A plain store into a slot is several times cheaper than
    calling its descriptor's ``__set__``, and with the class change and this
    ``__init__`` that does nothing, filling an instance costs about half as much.
    """
    namespace = {
        "__slots__": (),
        "__init__": object.__init__,
        "__setattr__": object.__setattr__,
        # With __setattr__, so that the type's one set/delete slot is the generic one.
        "__delattr__": object.__delattr__,
        "__module__": __name__,
    }
    return type(f"_Blank{cls.__name__}", (cls,), namespace)


_blank_message = _blank_maker(Message)
_new = object.__new__
_set_unknown_raw = _slot_setter(UnknownPart, "raw")


def _decode_stored_parts(items: list[Any]) -> tuple[Part, ...] | None:
    """The elements of a stored array decoded, or None if one is malformed (the
    caller then decodes again on the path that counts them and warns)."""
    if len(items) == 1:
        [item] = items
        if type(item) is dict:
            kind = item.get("type")  # pyright: ignore[reportUnknownVariableType]
            if type(kind) is str:  # pyright: ignore[reportUnknownArgumentType]
                return (_decoder_for(kind, _trusted_unknown)(item),)  # pyright: ignore[reportUnknownArgumentType]
        return None
    parts: list[Part] = []
    append = parts.append
    for item in items:
        if type(item) is not dict:
            return None
        kind = item.get("type")  # pyright: ignore[reportUnknownVariableType]
        if type(kind) is not str:  # pyright: ignore[reportUnknownArgumentType]
            return None
        append(_decoder_for(kind, _trusted_unknown)(item))  # pyright: ignore[reportUnknownArgumentType]
    return tuple(parts)


def _decode_stored_parts_warning(
    value: object, thread_id: str, message_id: str, *, stacklevel: int
) -> tuple[Part, ...]:
    """``structure_stored_parts`` of a value with something malformed: decode what
    can be, keep the rest as ``UnknownPart`` and warn once (``stacklevel`` counted
    from the caller of this function)."""
    if type(value) is not list:
        parts: list[Part] = [_trusted_unknown(value)]
        problem = "is not an array"
    else:
        parts = []
        bad = 0
        items: list[Any] = value  # pyright: ignore[reportUnknownVariableType]
        for item in items:
            kind = item.get("type") if type(item) is dict else None  # pyright: ignore[reportUnknownVariableType]
            if type(kind) is str:  # pyright: ignore[reportUnknownArgumentType]
                parts.append(_decoder_for(kind, _trusted_unknown)(item))  # pyright: ignore[reportUnknownArgumentType]
            else:
                bad += 1
                parts.append(_trusted_unknown(item))  # pyright: ignore[reportUnknownArgumentType]
        problem = f"has {bad} malformed element(s)"
    warnings.warn(
        StoredPartsWarning(
            f"thread {thread_id!r}, message {message_id!r}: parts_json {problem}; "
            "kept as UnknownPart"
        ),
        stacklevel=stacklevel + 1,
    )
    return tuple(parts)


def _trusted_unknown(raw: object) -> UnknownPart:
    part = _new(UnknownPart)
    _set_unknown_raw(part, raw)
    return part


_Decoder = Callable[[dict[str, Any]], Part]

_ONE_OF: dict[type[KnownPart], tuple[str, ...]] = {FilePart: ("url", "data")}
"""Typed optional wire keys of which a part needs one (its class checks it after init)."""


def _make_decoder(codec: _PartCodec) -> _Decoder:
    """The read-path decoder of one known part class, from source specialised to its
    fields (as attrs makes ``__init__``): a wire object whose ``"type"`` names the
    class becomes one when every modeled key fits, else an ``UnknownPart`` of it."""
    cls = codec.cls
    names: dict[str, Any] = {
        "blank": _blank_maker(cls),
        "cls": cls,
        "unknown": _trusted_unknown,
        "modeled": frozenset({"type", *codec.keys}),
    }
    fields = list(enumerate(codec.shape))
    required = [(i, wire, exact) for i, (wire, _, exact, req) in fields if req]
    optional = [(i, wire, exact) for i, (wire, _, exact, req) in fields if not req]
    for i, (_, _, exact, _) in fields:
        names[f"t{i}"] = exact
    body: list[str] = []
    if required:
        # No membership test first: a missing required key is the rare case.
        body.append("try:")
        body += [f"    v{i} = obj[{wire!r}]" for i, wire, _ in required]
        body += ["except KeyError:", "    return unknown(obj)"]
        typed = [f"type(v{i}) is not t{i}" for i, _, exact in required if exact]
        if typed:
            body += [f"if {' or '.join(typed)}:", "    return unknown(obj)"]
    # The keys present: "type" and the required ones, plus the optional ones found.
    count = str(1 + len(required))
    if optional:
        body.append(f"n = {count}")
        count = "n"
        for i, wire, exact in optional:
            body += [f"if {wire!r} in obj:", f"    v{i} = obj[{wire!r}]"]
            if exact:
                body += [f"    if type(v{i}) is not t{i}:", "        return unknown(obj)"]
            body += ["    n += 1", "else:", f"    v{i} = None"]
    if cls in _ONE_OF:
        # Typed, so None means absent (a KeyError here means _ONE_OF names a JSON key).
        typed_index = {wire: i for i, wire, exact in optional if exact}
        absent = " and ".join(f"v{typed_index[wire]} is None" for wire in _ONE_OF[cls])
        body += [f"if {absent}:", "    return unknown(obj)"]
    body.append("part = blank()")
    body += [f"part.{name} = v{i}" for i, (_, name, _, _) in fields]
    body += [
        # The common case, no keys but the modeled ones, needs no comprehension.
        f"part.extra = {{}} if len(obj) == {count} else "
        "{k: v for k, v in obj.items() if k not in modeled}",
        "part.__class__ = cls",
        "return part",
    ]
    source = "def decode(obj):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(source, f"<chat_persistence decoder of {cls.__name__}>", "exec"), names)
    return cast(_Decoder, names["decode"])


_DECODERS: dict[str, _Decoder] = {kind: _make_decoder(codec) for kind, codec in _CODECS.items()}
_decoder_for = _DECODERS.get


class StoredPartsWarning(UserWarning):
    """A stored message's ``parts_json`` did not decode cleanly (kept as ``UnknownPart``)."""
