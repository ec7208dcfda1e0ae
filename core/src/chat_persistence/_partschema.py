"""The wire schema of the known parts, declared once on each class's fields.

Each modeled field carries ``wire(key, kind)`` as attrs metadata: its camelCase wire
key and its JSON kind. A field with no default is required on the wire; ``one_of``
marks optional fields of which a part needs at least one. The constructors'
validators, the codec's decoder and encoder, the fast validation check and the
extra-key rule are all derived from it.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, NamedTuple

import attrs

Kind = Literal["str", "bool", "json"]
"""A wire value's kind: an exact ``str``, an exact ``bool``, or any JSON value."""

_METADATA_KEY = "chat_persistence.wire"


class _Declared(NamedTuple):
    key: str
    kind: Kind
    one_of: bool


def wire(key: str, kind: Kind, *, one_of: bool = False) -> dict[str, Any]:
    """The attrs ``metadata`` of a modeled field: its wire key and JSON kind."""
    return {_METADATA_KEY: _Declared(key, kind, one_of)}


class WireField(NamedTuple):
    """One modeled field of a part class, as the wire sees it."""

    key: str
    name: str
    kind: Kind
    required: bool
    one_of: bool

    @property
    def exact(self) -> type[Any] | None:
        """The exact Python type a wire value must have, or None for any JSON."""
        return {"str": str, "bool": bool}.get(self.kind)


def declared(attribute: attrs.Attribute[Any]) -> WireField | None:
    """The wire field an attribute declares, or None (``extra``, non-part fields)."""
    spec: _Declared | None = attribute.metadata.get(_METADATA_KEY)
    if spec is None:
        return None
    required = attribute.default is attrs.NOTHING
    return WireField(spec.key, attribute.name, spec.kind, required, spec.one_of)


@functools.cache
def wire_fields(cls: type[Any]) -> tuple[WireField, ...]:
    """The modeled fields of a part class, in declaration order."""
    found = tuple(f for f in (declared(a) for a in attrs.fields(cls)) if f is not None)
    for f in found:
        if f.kind == "json" and not f.required:
            # An explicit null would read as absent and be dropped on the way back.
            raise TypeError(f"{cls.__name__}.{f.name}: an optional field needs an exact kind")
    return found


@functools.cache
def modeled_keys(cls: type[Any]) -> frozenset[str]:
    """The wire keys a part class models, ``"type"`` included: never extra keys."""
    return frozenset({"type", *(f.key for f in wire_fields(cls))})


@functools.cache
def one_of(cls: type[Any]) -> tuple[WireField, ...]:
    """The optional fields of which a part of ``cls`` needs one (empty: no such rule)."""
    return tuple(f for f in wire_fields(cls) if f.one_of)
