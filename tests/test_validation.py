"""The validation pass every adapter runs before writing (SPEC §2, COMMON.md).

Constructors validate, but attrs lets a caller switch validators off; the batch
check must catch such messages anyway, and duplicate ids in one batch.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import attrs
import pytest
from hypothesis import given

from chat_persistence import (
    FilePart,
    InvalidArgumentError,
    InvalidMessageError,
    Message,
    Session,
    TextPart,
    ToolCallPart,
    UnknownPart,
    validate_id,
    validate_messages,
    validate_page,
    validate_session,
)
from strategies import message_batches, sessions

NAIVE = datetime(2025, 1, 1)


def unchecked(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
    """Build ``cls`` with attrs validators disabled, as a careless caller could."""
    with attrs.validators.disabled():
        return cls(*args, **kwargs)


def invalid(field: str) -> pytest.RaisesExc[InvalidMessageError]:
    return pytest.raises(InvalidMessageError, check=lambda e: e.field == field)


@given(message_batches())
def test_valid_batches_pass(batch: list[Message]) -> None:
    validate_messages("thread-1", batch)


def test_an_empty_batch_passes() -> None:
    validate_messages("t", [])


def test_a_tuple_batch_passes() -> None:
    validate_messages("t", (Message("a", "user", []), Message("b", "user", [])))


# -- messages built with validators disabled -------------------------------------------


def test_unchecked_empty_id_is_rejected() -> None:
    bad = unchecked(Message, "", "user", ())
    with invalid("Message.id"):
        validate_messages("t", [bad])


def test_unchecked_nul_role_is_rejected_and_names_the_message() -> None:
    bad = unchecked(Message, "m7", "us\x00er", ())
    with invalid("Message.role") as caught:
        validate_messages("t", [Message("m1", "user", []), bad])
    assert caught.value.message_id == "m7"
    assert "'m7'" in str(caught.value)


def test_unchecked_naive_created_at_is_rejected() -> None:
    bad = unchecked(Message, "m1", "user", (), created_at=NAIVE)
    with invalid("Message.created_at"):
        validate_messages("t", [bad])


def test_unchecked_empty_session_id_is_rejected() -> None:
    bad = unchecked(Message, "m1", "user", (), session_id="")
    with invalid("Message.session_id"):
        validate_messages("t", [bad])


def test_unchecked_part_with_nul_text_is_rejected() -> None:
    part = unchecked(TextPart, "a\x00")
    message = Message("m1", "user", [part])  # the message itself checks only part types
    with invalid("TextPart.text") as caught:
        validate_messages("t", [message])
    assert caught.value.message_id == "m1"


def test_unchecked_part_with_nan_input_is_rejected() -> None:
    part = unchecked(ToolCallPart, "c1", "calc", {"x": math.nan})
    with invalid("ToolCallPart.input['x']"):
        validate_messages("t", [Message("m1", "assistant", [part])])


def test_file_part_without_url_or_data_is_rejected_even_when_forced() -> None:
    # The url-or-data rule runs in __attrs_post_init__, which attrs never disables;
    # a part changed behind attrs' back is still caught by the batch check.
    with invalid("FilePart.url"):
        unchecked(FilePart, "image/png")
    part = FilePart("image/png", url="https://example.com/a.png")
    object.__setattr__(part, "url", None)
    with invalid("FilePart.url"):
        validate_messages("t", [Message("m1", "user", [part])])


def test_unchecked_extra_colliding_with_a_modeled_key_is_rejected() -> None:
    part = unchecked(TextPart, "hi", extra={"text": "again"})
    with invalid("TextPart.extra"):
        validate_messages("t", [Message("m1", "user", [part])])


def test_unchecked_unknown_part_with_nul_is_rejected() -> None:
    part = unchecked(UnknownPart, {"type": "x", "v": "\x00"})
    with invalid("UnknownPart.raw['v']"):
        validate_messages("t", [Message("m1", "user", [part])])


def test_unchecked_parts_that_are_not_parts_are_rejected() -> None:
    bad = unchecked(Message, "m1", "user", ({"type": "text", "text": "a dict"},))
    with invalid("Message.parts[0]"):
        validate_messages("t", [bad])


def test_parts_that_are_not_a_tuple_are_rejected() -> None:
    message = Message("m1", "user", [])
    object.__setattr__(message, "parts", [TextPart("a list")])
    with invalid("Message.parts"):
        validate_messages("t", [message])


# -- the batch itself ------------------------------------------------------------


def test_duplicate_ids_in_a_batch_are_rejected() -> None:
    batch = [Message("a", "user", []), Message("b", "user", []), Message("a", "assistant", [])]
    with invalid("Message.id") as caught:
        validate_messages("t", batch)
    assert caught.value.message_id == "a"
    assert "twice" in caught.value.reason


def test_a_batch_item_that_is_not_a_message_is_rejected() -> None:
    with invalid("messages[1]"):
        validate_messages("t", [Message("a", "user", []), {"id": "b"}])  # pyright: ignore[reportArgumentType]


@pytest.mark.parametrize("batch", ["not a list", b"bytes", iter([]), None])
def test_a_batch_that_is_not_a_sequence_is_rejected(batch: object) -> None:
    with invalid("messages"):
        validate_messages("t", batch)  # pyright: ignore[reportArgumentType]


@pytest.mark.parametrize("thread_id", ["", "a\x00b", 7, None])
def test_a_bad_thread_id_is_rejected(thread_id: object) -> None:
    with invalid("thread_id"):
        validate_messages(thread_id, [])  # pyright: ignore[reportArgumentType]


# -- sessions ---------------------------------------------------------------------


@given(sessions())
def test_valid_sessions_pass(session: Session) -> None:
    validate_session(session)


def test_unchecked_session_with_naive_updated_at_is_rejected() -> None:
    bad = unchecked(Session, "s1", "t1", "1", updated_at=NAIVE)
    with invalid("Session.updated_at"):
        validate_session(bad)


def test_unchecked_session_with_nan_state_is_rejected() -> None:
    bad = unchecked(Session, "s1", "t1", "1", state={"n": math.inf})
    with invalid("Session.state['n']"):
        validate_session(bad)


def test_unchecked_session_with_empty_thread_id_is_rejected() -> None:
    bad = unchecked(Session, "s1", "", "1")
    with invalid("Session.thread_id"):
        validate_session(bad)


def test_a_session_that_is_not_a_session_is_rejected() -> None:
    with invalid("session"):
        validate_session({"id": "s1"})  # pyright: ignore[reportArgumentType]


# -- ids and pages ----------------------------------------------------------------


@pytest.mark.parametrize(("value", "reason"), [("", "empty"), ("a\x00", "NUL"), (3, "string")])
def test_validate_id_names_the_field(value: object, reason: str) -> None:
    with invalid("before") as caught:
        validate_id("before", value)
    assert reason in caught.value.reason


def test_validate_id_accepts_a_storable_string() -> None:
    validate_id("thread_id", "t-1 ✓")


@pytest.mark.parametrize("limit", [None, 0, 1, 10**6])
def test_validate_page_accepts_none_and_non_negative_ints(limit: int | None) -> None:
    validate_page(limit)


@pytest.mark.parametrize("limit", [-1, True, 1.0, "5"])
def test_validate_page_rejects_negative_and_non_ints(limit: object) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        validate_page(limit)  # pyright: ignore[reportArgumentType]
    assert caught.value.argument == "limit"
    assert caught.value.value == limit
    assert isinstance(caught.value, ValueError)
