"""Building the messages and sessions the checks write, valid or deliberately not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

import attrs

from chat_persistence import (
    DataPart,
    FilePart,
    Message,
    Part,
    ReasoningPart,
    Session,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    UnknownPart,
)

T = TypeVar("T")

BASE_TIME = datetime(2024, 5, 17, 12, 0, tzinfo=UTC)
"""An arbitrary fixed instant the checks place explicit ``created_at`` values around."""

SDK_VERSION = "chat-persistence-contract/1"
"""The ``sdk_version`` of sessions the checks write themselves."""


def at(seconds: float) -> datetime:
    """``BASE_TIME`` plus ``seconds``."""
    return BASE_TIME + timedelta(seconds=seconds)


def text_message(
    message_id: str,
    text: str | None = None,
    *,
    role: str = "user",
    session_id: str | None = None,
    created_at: datetime | None = None,
) -> Message:
    """A message with one text part (its text defaults to its id)."""
    return Message(
        id=message_id,
        role=role,
        parts=(TextPart(message_id if text is None else text),),
        session_id=session_id,
        created_at=created_at,
    )


def session(
    session_id: str,
    thread_id: str,
    *,
    state: object = None,
    metadata: object = None,
    created_at: datetime | None = None,
    sdk_version: str = SDK_VERSION,
) -> Session:
    """A session as a runtime would save it."""
    return Session(
        id=session_id,
        thread_id=thread_id,
        sdk_version=sdk_version,
        state=state,  # pyright: ignore[reportArgumentType]
        metadata=metadata,  # pyright: ignore[reportArgumentType]
        created_at=created_at,
    )


def every_kind_of_part() -> tuple[Part, ...]:
    """One or more of each part the library models, with nested JSON, unicode,
    optional keys present and absent, extra wire keys, and unknown parts."""
    return (
        TextPart('héllo wörld 👋\n\t"quoted" \\ back'),
        TextPart(""),
        TextPart("with extras", extra={"providerMetadata": {"cache": {"hit": True}}}),
        ReasoningPart("thinking…", signature="sig-123"),
        ReasoningPart("no signature"),
        ToolCallPart(
            "call-1",
            "search",
            {
                "q": "weather in Zürich",
                "n": [1, 2.5, None, True, False, -7, 12345678901234567890],
                "nested": {"deep": [{"": "empty key"}, {"a.b": "dotted key"}], "e": {}},
            },
        ),
        ToolResultPart("call-1", "search", [{"temp": 21.5, "unit": "C"}], is_error=False),
        ToolResultPart("call-2", "fetch", "boom", is_error=True),
        ToolResultPart("call-3", "noop", None),
        FilePart(media_type="image/png", data="iVBORw0KGgo=", filename="pixel.png"),
        FilePart(media_type="text/plain", url="https://example.com/notes.txt"),
        DataPart({"forecast": ["sun", "rain"], "ok": True}, name="weather"),
        DataPart(3.25),
        UnknownPart({"type": "future-part", "payload": {"x": [1, {"y": None}]}}),
        UnknownPart({"type": "text", "note": "a known type without its 'text' key"}),
    )


def unchecked(factory: Callable[[], T]) -> T:
    """Build an object with attrs validators switched off, as a careless caller might:
    the adapter must still reject it."""
    with attrs.validators.disabled():
        return factory()


def bypassing_init(cls: type[T], **fields: object) -> T:
    """Build an attrs instance without running ``__init__`` at all (no validators,
    no ``__attrs_post_init__``), as deserializing code might."""
    instance = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(instance, name, value)
    return instance


def plus_two_hours() -> timezone:
    """A fixed UTC offset that is not UTC."""
    return timezone(timedelta(hours=2))
