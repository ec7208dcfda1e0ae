"""The data model: messages, their parts, and sessions. Constructors validate."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ClassVar, TypeAlias, cast

import attrs

from ._errors import InvalidMessageError
from ._json import JSON, check_id, check_json, check_text
from ._partschema import declared, modeled_keys, one_of, wire


def _text(inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    check_text(f"{type(inst).__name__}.{attribute.name}", value)


def _optional_text(inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _text(inst, attribute, value)


def _json(inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    check_json(f"{type(inst).__name__}.{attribute.name}", value)


def _optional_bool(inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and type(value) is not bool:
        raise InvalidMessageError(
            f"{type(inst).__name__}.{attribute.name}", value, "must be a bool or None"
        )


def _extra(inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    field = f"{type(inst).__name__}.extra"
    if type(value) is not dict:
        raise InvalidMessageError(field, value, "must be a dict of extra wire keys")
    extra = cast(dict[str, object], value)
    check_json(field, extra)
    cls = cast(type[object], type(inst))
    taken = modeled_keys(cls).intersection(extra)
    if taken:
        raise InvalidMessageError(
            field, extra, f"repeats key(s) the part models itself: {', '.join(sorted(taken))}"
        )


_VALIDATORS: dict[tuple[str, bool], Callable[[Any, attrs.Attribute[Any], object], None]] = {
    ("str", True): _text,
    ("str", False): _optional_text,
    ("bool", False): _optional_bool,
    ("json", True): _json,
    ("json", False): _json,
}


def _wire_validators(
    cls: type[Any], fields: list[attrs.Attribute[Any]]
) -> list[attrs.Attribute[Any]]:
    """Give each modeled field the validator its declared kind implies."""
    out: list[attrs.Attribute[Any]] = []
    for attribute in fields:
        field = declared(attribute)
        if field is not None:
            attribute = attribute.evolve(validator=_VALIDATORS[field.kind, field.required])
        out.append(attribute)
    return out


def _require_one_of(part: KnownPart) -> None:
    """The rule of ``one_of`` fields: at least one of them is set."""
    cls = type(part)
    fields = one_of(cls)
    if fields and all(getattr(part, f.name) is None for f in fields):
        names = " or ".join(f.name for f in fields)
        raise InvalidMessageError(
            f"{type(part).__name__}.{fields[0].name}", None, f"a {part.type} part needs a {names}"
        )


def _aware(inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    field = f"{type(inst).__name__}.{attribute.name}"
    if value is None:
        return
    if not isinstance(value, datetime):
        raise InvalidMessageError(field, value, "must be a datetime or None")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidMessageError(
            field, value, "must be timezone-aware (naive datetimes are ambiguous)"
        )


def _id(inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    check_id(f"{type(inst).__name__}.{attribute.name}", value)


def _optional_id(inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _id(inst, attribute, value)


def _extra_field() -> Any:
    return attrs.field(factory=dict, kw_only=True, validator=_extra)


# Each modeled field declares its wire key and JSON kind once (see _partschema);
# _wire_validators derives its validator from them.


@attrs.frozen(field_transformer=_wire_validators)
class TextPart:
    """Plain text. Wire: ``{"type": "text", "text": ...}``."""

    type: ClassVar[str] = "text"
    text: str = attrs.field(metadata=wire("text", "str"))
    extra: dict[str, JSON] = _extra_field()


@attrs.frozen(field_transformer=_wire_validators)
class ReasoningPart:
    """Model reasoning. Wire: ``{"type": "reasoning", "text": ..., "signature"?: ...}``."""

    type: ClassVar[str] = "reasoning"
    text: str = attrs.field(metadata=wire("text", "str"))
    signature: str | None = attrs.field(default=None, metadata=wire("signature", "str"))
    extra: dict[str, JSON] = _extra_field()


@attrs.frozen(field_transformer=_wire_validators)
class ToolCallPart:
    """A tool call. Wire: ``{"type": "tool-call", "toolCallId", "toolName", "input"}``."""

    type: ClassVar[str] = "tool-call"
    tool_call_id: str = attrs.field(metadata=wire("toolCallId", "str"))
    tool_name: str = attrs.field(metadata=wire("toolName", "str"))
    input: JSON = attrs.field(metadata=wire("input", "json"))
    extra: dict[str, JSON] = _extra_field()


@attrs.frozen(field_transformer=_wire_validators)
class ToolResultPart:
    """A tool's result. Wire: ``{"type": "tool-result", "toolCallId", "toolName",
    "output", "isError"?}``."""

    type: ClassVar[str] = "tool-result"
    tool_call_id: str = attrs.field(metadata=wire("toolCallId", "str"))
    tool_name: str = attrs.field(metadata=wire("toolName", "str"))
    output: JSON = attrs.field(metadata=wire("output", "json"))
    is_error: bool | None = attrs.field(default=None, metadata=wire("isError", "bool"))
    extra: dict[str, JSON] = _extra_field()


@attrs.frozen(field_transformer=_wire_validators)
class FilePart:
    """A file by ``url`` or inline base64 ``data`` (at least one). Wire:
    ``{"type": "file", "mediaType", "url"? , "data"?, "filename"?}``."""

    type: ClassVar[str] = "file"
    media_type: str = attrs.field(metadata=wire("mediaType", "str"))
    url: str | None = attrs.field(default=None, metadata=wire("url", "str", one_of=True))
    data: str | None = attrs.field(default=None, metadata=wire("data", "str", one_of=True))
    filename: str | None = attrs.field(default=None, metadata=wire("filename", "str"))
    extra: dict[str, JSON] = _extra_field()

    def __attrs_post_init__(self) -> None:
        _require_one_of(self)


@attrs.frozen(field_transformer=_wire_validators)
class DataPart:
    """Arbitrary JSON data. Wire: ``{"type": "data", "data", "name"?}``."""

    type: ClassVar[str] = "data"
    data: JSON = attrs.field(metadata=wire("data", "json"))
    name: str | None = attrs.field(default=None, metadata=wire("name", "str"))
    extra: dict[str, JSON] = _extra_field()


@attrs.frozen
class UnknownPart:
    """A part this library does not model, kept exactly as found in ``raw``.

    Written back unchanged, so parts from newer runtimes survive a round trip.
    """

    raw: JSON = attrs.field(validator=_json)

    @property
    def type(self) -> str | None:
        """The part's ``"type"`` when ``raw`` is an object that has a string one."""
        if isinstance(self.raw, dict):
            kind = self.raw.get("type")
            if isinstance(kind, str):
                return kind
        return None


KnownPart: TypeAlias = (
    TextPart | ReasoningPart | ToolCallPart | ToolResultPart | FilePart | DataPart
)
"""A part this library models (every ``Part`` but ``UnknownPart``)."""
Part: TypeAlias = KnownPart | UnknownPart
KNOWN_PARTS: tuple[type[KnownPart], ...] = (
    TextPart,
    ReasoningPart,
    ToolCallPart,
    ToolResultPart,
    FilePart,
    DataPart,
)
PART_CLASSES: tuple[type[Part], ...] = (*KNOWN_PARTS, UnknownPart)


def _parts(inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    for i, part in enumerate(cast(tuple[object, ...], value)):
        if not isinstance(part, PART_CLASSES):
            raise InvalidMessageError(
                f"Message.parts[{i}]", part, f"must be a Part, not {type(part).__name__}"
            )


def _to_parts(value: Iterable[Part]) -> tuple[Part, ...]:
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
        # A lone part or a string would otherwise fail with a bare TypeError, or be
        # split into characters.
        raise InvalidMessageError(
            "Message.parts", cast(object, value), "must be a list or tuple of parts"
        )
    return tuple(value)


@attrs.frozen
class Message:
    """One chat message: an id unique in its thread, a role and its parts.

    ``created_at`` is assigned by the store when left out; ``session_id`` ties the
    message to a session (and so to that session's archive state).
    """

    id: str = attrs.field(validator=_id)
    role: str = attrs.field(validator=_id)
    parts: tuple[Part, ...] = attrs.field(converter=_to_parts, validator=_parts)
    session_id: str | None = attrs.field(default=None, validator=_optional_id)
    created_at: datetime | None = attrs.field(default=None, validator=_aware)


@attrs.frozen
class Session:
    """A run of a conversation within a thread, with the runtime's state and metadata.

    Timestamps are set by the store: ``created_at`` on insert, ``updated_at`` on
    every save, ``archived_at`` by ``archive_session`` only.
    """

    id: str = attrs.field(validator=_id)
    thread_id: str = attrs.field(validator=_id)
    sdk_version: str = attrs.field(validator=_id)
    state: JSON | None = attrs.field(default=None, validator=_json)
    metadata: JSON | None = attrs.field(default=None, validator=_json)
    created_at: datetime | None = attrs.field(default=None, validator=_aware)
    updated_at: datetime | None = attrs.field(default=None, validator=_aware)
    archived_at: datetime | None = attrs.field(default=None, validator=_aware)


def check_part(field: str, part: Part) -> None:
    """Run every rule of one part again, as the write path does: its validators, its
    ``one_of`` rule, and for an ``UnknownPart`` an object with a string ``"type"``."""
    attrs.validate(part)
    if isinstance(part, UnknownPart):
        if part.type is None:
            raise InvalidMessageError(
                field, part.raw, 'a part must be a JSON object with a string "type"'
            )
    else:
        _require_one_of(part)
