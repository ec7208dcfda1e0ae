"""The one validation pass every adapter runs before it writes anything."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import attrs

from ._errors import InvalidArgumentError, InvalidMessageError
from ._fastcheck import surely_valid
from ._json import MAX_ID_BYTES, check_id
from ._model import Message, Session, check_part


def _check_id_size(field: str, value: object, *, message_id: str | None = None) -> None:
    if not isinstance(value, str) or len(value) <= MAX_ID_BYTES // 4:
        return
    size = len(value.encode("utf-8"))
    if size > MAX_ID_BYTES:
        raise InvalidMessageError(
            field,
            value,
            f"is {size} bytes in UTF-8; ids may be at most {MAX_ID_BYTES}",
            message_id=message_id,
        )


def validate_messages(thread_id: str, messages: Sequence[Message]) -> None:
    """Check a batch before it is written, whatever way its messages were built.

    Runs every field validator again (a message built with attrs validators
    disabled is still rejected), rejects two messages with one id, and raises
    ``InvalidMessageError`` naming the field and message on the first problem.
    """
    check_id("thread_id", thread_id)
    _check_id_size("thread_id", thread_id)
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidMessageError(
            "messages", messages, "must be a sequence of Message (a list or tuple)"
        )
    seen: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, Message):
            raise InvalidMessageError(
                f"messages[{index}]", message, f"must be a Message, not {type(message).__name__}"
            )
        if not surely_valid(message):
            _check_fully(message)
        if message.id in seen:
            raise InvalidMessageError(
                "Message.id", message.id, "appears twice in one batch", message_id=message.id
            )
        seen.add(message.id)


def _check_fully(message: Message) -> None:
    """Run every validator of the message and its parts; raise naming the message."""
    message_id = message.id if isinstance(message.id, str) else None
    try:
        attrs.validate(message)
        if not isinstance(message.parts, tuple):
            raise InvalidMessageError("Message.parts", message.parts, "must be a tuple of parts")
        for index, part in enumerate(message.parts):
            check_part(f"Message.parts[{index}]", part)
    except InvalidMessageError as err:
        if err.message_id is None and message_id is not None:
            raise InvalidMessageError(
                err.field, err.value, err.reason, message_id=message_id
            ) from None
        raise
    _check_id_size("Message.id", message.id, message_id=message_id)
    _check_id_size("Message.session_id", message.session_id, message_id=message_id)
    _check_utc_range("Message.created_at", message.created_at, message_id=message_id)


def _check_utc_range(field: str, value: datetime | None, *, message_id: str | None = None) -> None:
    """Reject an aware datetime that has no UTC form (year 1 at +01:00): no backend
    could store it and read it back."""
    if value is None or 1 < value.year < 9999:
        return
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise InvalidMessageError(
            field, value, "is outside the range of a UTC datetime", message_id=message_id
        ) from None


def validate_session(session: Session) -> None:
    """Check a session before it is written (validators run again, as for messages)."""
    if not isinstance(session, Session):
        raise InvalidMessageError(
            "session", session, f"must be a Session, not {type(session).__name__}"
        )
    attrs.validate(session)
    _check_utc_range("Session.created_at", session.created_at)
    _check_id_size("Session.id", session.id)
    _check_id_size("Session.thread_id", session.thread_id)


def validate_id(field: str, value: object) -> None:
    """Check an id argument (a thread id, a cursor): a non-empty string that can be
    stored, else ``InvalidMessageError`` naming ``field``."""
    check_id(field, value)
    _check_id_size(field, value)


def validate_ids(field: str, values: object) -> tuple[str, ...]:
    """Check a sequence of id arguments (``delete_messages``' ids); return them
    once each, in the order given."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InvalidArgumentError(field, values, "must be a sequence of ids (a list or tuple)")
    ids = cast("Sequence[str]", values)
    for index, value in enumerate(ids):
        validate_id(f"{field}[{index}]", value)
    return tuple(dict.fromkeys(ids))


def validate_page(limit: int | None) -> None:
    """Check the ``limit`` of a listing."""
    if limit is not None and (type(limit) is not int or limit < 0):
        raise InvalidArgumentError("limit", limit, "must be a non-negative int or None")
