"""The wire codec: parts to and from the JSON objects stored in ``parts_json``.

Total and lossless on every JSON object with a string ``"type"``: a well-formed
known part becomes its class (keys it does not model kept in ``extra``); anything
else becomes an ``UnknownPart`` holding the object, so for every such ``p``,
``unstructure_part(structure_part(p)) == p``.

One decoder per known part class, generated from its declared wire schema
(``_partschema``), is the only decoding path: the read path uses it as it is, and
``structure_part`` runs the write path's rules on what it makes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from ._errors import InvalidMessageError
from ._fastcheck import surely_valid_part
from ._generated import compile_function
from ._json import JSON
from ._model import KNOWN_PARTS, KnownPart, Message, Part, UnknownPart, check_part
from ._partschema import modeled_keys, one_of, wire_fields


def _make_encoder(cls: type[KnownPart]) -> Callable[[KnownPart], dict[str, JSON]]:
    """The wire object of a part of ``cls``: modeled keys (an absent optional one left
    out), then extras."""
    body = ["wire = {'type': part.type}"]
    for f in wire_fields(cls):
        if f.required:
            body.append(f"wire[{f.key!r}] = part.{f.name}")
        else:
            body += [f"if part.{f.name} is not None:", f"    wire[{f.key!r}] = part.{f.name}"]
    body += ["if part.extra:", "    wire.update(part.extra)", "return wire"]
    return compile_function("encode", "part", body, {}, label=f"encoder of {cls.__name__}")


_ENCODERS = {cls: _make_encoder(cls) for cls in KNOWN_PARTS}


def _raw(part: UnknownPart) -> JSON:
    return part.raw


_ENCODE_EXACT: dict[type[Any], Callable[[Any], JSON]] = {**_ENCODERS, UnknownPart: _raw}


def structure_part(value: dict[str, JSON]) -> Part:
    """Turn one wire object into a part (an ``UnknownPart`` when it is not a
    well-formed known part).

    Raises ``InvalidMessageError`` if ``value`` is not an object with a string
    ``"type"`` (that is not a part at all), or holds what cannot be stored.
    """
    if not isinstance(value, dict):
        raise InvalidMessageError("part", value, "must be a JSON object")
    kind = value.get("type")
    if not isinstance(kind, str):
        raise InvalidMessageError("part", value, 'must have a string "type"')
    # The read path's decoder, then the write path's rules: one mapping of shapes.
    part = _decoder_for(kind, _trusted_unknown)(value)
    if not surely_valid_part(part):
        check_part("part", part)
    return part


def unstructure_part(part: Part) -> dict[str, JSON] | JSON:
    """Turn a part into its wire object (an ``UnknownPart`` gives back its raw value)."""
    if isinstance(part, UnknownPart):
        return part.raw
    return _ENCODERS[type(part)](part)


def unstructure_parts(parts: tuple[Part, ...]) -> list[JSON]:
    """The ``parts_json`` array of a message."""
    # unstructure_part inlined for the exact classes: this runs for every part written.
    return [_ENCODE_EXACT.get(type(p), unstructure_part)(p) for p in parts]


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
_blank_unknown = _blank_maker(UnknownPart)


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
    part = _blank_unknown()
    part.raw = raw
    part.__class__ = UnknownPart
    return cast(UnknownPart, part)


_Decoder = Callable[[dict[str, Any]], Part]


def _make_decoder(cls: type[KnownPart]) -> _Decoder:
    """The decoder of one known part class: a wire object whose ``"type"`` names the
    class becomes one when every modeled key fits its kind, else an ``UnknownPart``
    of it. Values are taken as they are: the read path does not check content."""
    fields = list(enumerate(wire_fields(cls)))
    names: dict[str, Any] = {
        "blank": _blank_maker(cls),
        "cls": cls,
        "unknown": _trusted_unknown,
        "modeled": modeled_keys(cls),
        **{f"t{i}": f.exact for i, f in fields},
    }
    required = [(i, f) for i, f in fields if f.required]
    optional = [(i, f) for i, f in fields if not f.required]
    body: list[str] = []
    if required:
        # No membership test first: a missing required key is the rare case.
        body.append("try:")
        body += [f"    v{i} = obj[{f.key!r}]" for i, f in required]
        body += ["except KeyError:", "    return unknown(obj)"]
        typed = [f"type(v{i}) is not t{i}" for i, f in required if f.exact]
        if typed:
            body += [f"if {' or '.join(typed)}:", "    return unknown(obj)"]
    # The keys present: "type" and the required ones, plus the optional ones found.
    count = str(1 + len(required))
    if optional:
        body.append(f"n = {count}")
        count = "n"
        for i, f in optional:
            # An explicit null of a typed optional key is mistyped, not absent: a part
            # made of it would lose the null on the way back.
            body += [f"if {f.key!r} in obj:", f"    v{i} = obj[{f.key!r}]"]
            if f.exact:
                body += [f"    if type(v{i}) is not t{i}:", "        return unknown(obj)"]
            body += ["    n += 1", "else:", f"    v{i} = None"]
    index = {f.name: i for i, f in fields}
    needed = one_of(cls)
    if needed:
        absent = " and ".join(f"v{index[f.name]} is None" for f in needed)
        body += [f"if {absent}:", "    return unknown(obj)"]
    body.append("part = blank()")
    body += [f"part.{f.name} = v{i}" for i, f in fields]
    body += [
        # The common case, no keys but the modeled ones, needs no comprehension.
        f"part.extra = {{}} if len(obj) == {count} else "
        "{k: v for k, v in obj.items() if k not in modeled}",
        "part.__class__ = cls",
        "return part",
    ]
    decode = compile_function("decode", "obj", body, names, label=f"decoder of {cls.__name__}")
    return cast(_Decoder, decode)


_DECODERS: dict[str, _Decoder] = {cls.type: _make_decoder(cls) for cls in KNOWN_PARTS}
_decoder_for = _DECODERS.get


class StoredPartsWarning(UserWarning):
    """A stored message's ``parts_json`` did not decode cleanly (kept as ``UnknownPart``)."""
