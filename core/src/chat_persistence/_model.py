"""The data model: messages, their parts, and sessions. Constructors validate."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar, TypeAlias, cast

import attrs

from ._errors import InvalidMessageError
from ._json import JSON, check_id, check_json, check_text


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
    modeled = cast(tuple[str, ...], type(inst).wire_keys)
    taken = {"type", *modeled}.intersection(extra)
    if taken:
        raise InvalidMessageError(
            field, extra, f"repeats key(s) the part models itself: {', '.join(sorted(taken))}"
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


@attrs.frozen
class TextPart:
    """Plain text. Wire: ``{"type": "text", "text": ...}``."""

    type: ClassVar[str] = "text"
    wire_keys: ClassVar[tuple[str, ...]] = ("text",)
    text: str = attrs.field(validator=_text)
    extra: dict[str, JSON] = _extra_field()


@attrs.frozen
class ReasoningPart:
    """Model reasoning. Wire: ``{"type": "reasoning", "text": ..., "signature"?: ...}``."""

    type: ClassVar[str] = "reasoning"
    wire_keys: ClassVar[tuple[str, ...]] = ("text", "signature")
    text: str = attrs.field(validator=_text)
    signature: str | None = attrs.field(default=None, validator=_optional_text)
    extra: dict[str, JSON] = _extra_field()


@attrs.frozen
class ToolCallPart:
    """A tool call. Wire: ``{"type": "tool-call", "toolCallId", "toolName", "input"}``."""

    type: ClassVar[str] = "tool-call"
    wire_keys: ClassVar[tuple[str, ...]] = ("toolCallId", "toolName", "input")
    tool_call_id: str = attrs.field(validator=_text)
    tool_name: str = attrs.field(validator=_text)
    input: JSON = attrs.field(validator=_json)
    extra: dict[str, JSON] = _extra_field()


@attrs.frozen
class ToolResultPart:
    """A tool's result. Wire: ``{"type": "tool-result", "toolCallId", "toolName",
    "output", "isError"?}``."""

    type: ClassVar[str] = "tool-result"
    wire_keys: ClassVar[tuple[str, ...]] = ("toolCallId", "toolName", "output", "isError")
    tool_call_id: str = attrs.field(validator=_text)
    tool_name: str = attrs.field(validator=_text)
    output: JSON = attrs.field(validator=_json)
    is_error: bool | None = attrs.field(default=None, validator=_optional_bool)
    extra: dict[str, JSON] = _extra_field()


@attrs.frozen
class FilePart:
    """A file by ``url`` or inline base64 ``data`` (at least one). Wire:
    ``{"type": "file", "mediaType", "url"? , "data"?, "filename"?}``."""

    type: ClassVar[str] = "file"
    wire_keys: ClassVar[tuple[str, ...]] = ("mediaType", "url", "data", "filename")
    media_type: str = attrs.field(validator=_text)
    url: str | None = attrs.field(default=None, validator=_optional_text)
    data: str | None = attrs.field(default=None, validator=_optional_text)
    filename: str | None = attrs.field(default=None, validator=_optional_text)
    extra: dict[str, JSON] = _extra_field()

    def __attrs_post_init__(self) -> None:
        if self.url is None and self.data is None:
            raise InvalidMessageError("FilePart.url", None, "a file part needs a url or data")


@attrs.frozen
class DataPart:
    """Arbitrary JSON data. Wire: ``{"type": "data", "data", "name"?}``."""

    type: ClassVar[str] = "data"
    wire_keys: ClassVar[tuple[str, ...]] = ("data", "name")
    data: JSON = attrs.field(validator=_json)
    name: str | None = attrs.field(default=None, validator=_optional_text)
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
