"""The data model (SPEC §2): constructors validate, every rule names its field."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, cast

import attrs
import pytest
from hypothesis import given

from chat_persistence import (
    DataPart,
    FilePart,
    InvalidMessageError,
    Message,
    PersistenceError,
    ReasoningPart,
    Session,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    UnknownPart,
)
from chat_persistence._model import KNOWN_PARTS
from chat_persistence._partschema import wire, wire_fields
from strategies import WIRE_KEYS, messages, parts, sessions

NOW = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
NAIVE = datetime(2025, 1, 2, 3, 4, 5)


def text_message(**changes: Any) -> Message:
    fields: dict[str, Any] = {"id": "m1", "role": "user", "parts": [TextPart("hi")]}
    fields.update(changes)
    return Message(**fields)


def session(**changes: Any) -> Session:
    fields: dict[str, Any] = {"id": "s1", "thread_id": "t1", "sdk_version": "1.0"}
    fields.update(changes)
    return Session(**fields)


def invalid(field: str) -> pytest.RaisesExc[InvalidMessageError]:
    """Expect an InvalidMessageError whose ``field`` is exactly ``field``."""
    return pytest.raises(InvalidMessageError, check=lambda e: e.field == field)


# -- valid values are accepted -------------------------------------------------


def test_message_defaults_and_parts_become_a_tuple() -> None:
    m = Message("m1", "user", [TextPart("hi")])
    assert m.parts == (TextPart("hi"),)
    assert isinstance(m.parts, tuple)
    assert m.session_id is None
    assert m.created_at is None


@given(messages())
def test_generated_messages_are_valid(message: Message) -> None:
    assert attrs.evolve(message) == message


@given(sessions())
def test_generated_sessions_are_valid(s: Session) -> None:
    assert attrs.evolve(s) == s


@given(parts())
def test_generated_parts_are_valid(part: object) -> None:
    assert text_message(parts=[part]).parts == (part,)


# -- ids and roles ---------------------------------------------------------------


def test_empty_message_id_is_rejected() -> None:
    with invalid("Message.id") as caught:
        text_message(id="")
    assert "empty" in caught.value.reason


def test_empty_role_is_rejected() -> None:
    with invalid("Message.role"):
        text_message(role="")


def test_empty_session_id_on_message_is_rejected() -> None:
    with invalid("Message.session_id"):
        text_message(session_id="")


@pytest.mark.parametrize("field", ["id", "thread_id", "sdk_version"])
def test_empty_session_fields_are_rejected(field: str) -> None:
    with invalid(f"Session.{field}"):
        session(**{field: ""})


def test_non_string_id_is_rejected() -> None:
    with invalid("Message.id") as caught:
        text_message(id=42)
    assert caught.value.value == 42


@pytest.mark.parametrize("field", ["id", "role", "session_id"])
def test_nul_in_message_id_role_or_session_is_rejected(field: str) -> None:
    with invalid(f"Message.{field}") as caught:
        text_message(**{field: "a\x00b"})
    assert "NUL" in caught.value.reason


@pytest.mark.parametrize("field", ["id", "thread_id", "sdk_version"])
def test_nul_in_session_ids_is_rejected(field: str) -> None:
    with invalid(f"Session.{field}"):
        session(**{field: "x\x00"})


@pytest.mark.parametrize("field", ["id", "role"])
def test_lone_surrogate_in_id_or_role_is_rejected(field: str) -> None:
    with invalid(f"Message.{field}") as caught:
        text_message(**{field: "a\ud800"})
    assert "surrogate" in caught.value.reason


# -- text ------------------------------------------------------------------------


def test_nul_in_text_is_rejected() -> None:
    with invalid("TextPart.text"):
        TextPart("hello\x00world")


def test_lone_surrogate_in_text_is_rejected() -> None:
    with invalid("TextPart.text") as caught:
        TextPart("\udfff")
    assert "surrogate" in caught.value.reason


def test_nul_in_optional_string_keys_is_rejected() -> None:
    with invalid("ReasoningPart.signature"):
        ReasoningPart("why", signature="\x00")
    with invalid("FilePart.filename"):
        FilePart("text/plain", url="https://x", filename="a\x00")
    with invalid("ToolCallPart.tool_name"):
        ToolCallPart("c1", "get\x00", {})


def test_text_must_be_a_string() -> None:
    with invalid("TextPart.text"):
        TextPart(b"bytes")  # pyright: ignore[reportArgumentType]


# -- datetimes ---------------------------------------------------------------------


def test_naive_message_created_at_is_rejected() -> None:
    with invalid("Message.created_at") as caught:
        text_message(created_at=NAIVE)
    assert "timezone-aware" in caught.value.reason


@pytest.mark.parametrize("field", ["created_at", "updated_at", "archived_at"])
def test_naive_session_datetimes_are_rejected(field: str) -> None:
    with invalid(f"Session.{field}"):
        session(**{field: NAIVE})


def test_aware_datetimes_are_accepted() -> None:
    assert text_message(created_at=NOW).created_at == NOW
    assert session(archived_at=NOW).archived_at == NOW


def test_created_at_must_be_a_datetime() -> None:
    with invalid("Message.created_at"):
        text_message(created_at="2025-01-01T00:00:00Z")


# -- JSON values -------------------------------------------------------------------


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_rejected(number: float) -> None:
    with invalid("ToolCallPart.input['x']") as caught:
        ToolCallPart("c1", "calc", {"x": number})
    assert "finite" in caught.value.reason


def test_non_finite_number_deep_in_output_names_its_path() -> None:
    with invalid("ToolResultPart.output['rows'][1]"):
        ToolResultPart("c1", "query", {"rows": [1.5, math.nan]})


def test_nan_in_session_state_and_metadata_is_rejected() -> None:
    with invalid("Session.state[0]"):
        session(state=[math.nan])
    with invalid("Session.metadata['a']"):
        session(metadata={"a": math.inf})


def test_nul_in_json_string_is_rejected() -> None:
    with invalid("DataPart.data['a'][0]") as caught:
        DataPart({"a": ["x\x00"]})
    assert "NUL" in caught.value.reason


def test_lone_surrogate_in_json_string_is_rejected() -> None:
    with invalid("Session.state"):
        session(state="\ud83d")


def test_nul_in_json_key_is_rejected() -> None:
    with invalid("ToolCallPart.input") as caught:
        ToolCallPart("c1", "t", {"ke\x00y": 1})
    assert "key" in caught.value.reason


def test_non_string_json_key_is_rejected() -> None:
    with invalid("DataPart.data") as caught:
        DataPart({1: "one"})  # pyright: ignore[reportArgumentType]
    assert "not a string" in caught.value.reason


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ((1, 2), "tuple"),
        ({1, 2}, "set"),
        (b"raw", "bytes"),
        (NOW, "datetime"),
        (object(), "object"),
    ],
)
def test_non_json_objects_are_rejected(value: object, kind: str) -> None:
    with invalid("DataPart.data['v']") as caught:
        DataPart({"v": value})  # pyright: ignore[reportArgumentType]
    assert kind in caught.value.reason


def test_json_subclasses_are_rejected() -> None:
    class Str(str):
        pass

    with invalid("DataPart.data"):
        DataPart(Str("looks like a string"))


def test_huge_integers_are_rejected() -> None:
    assert DataPart(10**3999 - 1).data == 10**3999 - 1
    with invalid("DataPart.data") as caught:
        DataPart(-(10**5000))
    assert "digits" in caught.value.reason
    assert "cannot be shown" in str(caught.value)


def test_deeply_nested_json_is_rejected() -> None:
    deep: Any = 1
    for _ in range(600):
        deep = [deep]
    with pytest.raises(InvalidMessageError) as caught:
        DataPart(deep)
    assert "deeper" in caught.value.reason


# -- parts -----------------------------------------------------------------------


def test_file_part_without_url_or_data_is_rejected() -> None:
    with invalid("FilePart.url") as caught:
        FilePart("image/png")
    assert "url or data" in caught.value.reason


def test_file_part_with_url_or_data_is_accepted() -> None:
    assert FilePart("image/png", url="https://example.com/a.png").url is not None
    assert FilePart("image/png", data="iVBORw0KGgo=").data is not None


@pytest.mark.parametrize("key", ["text", "type"])
def test_extra_key_colliding_with_a_modeled_key_is_rejected(key: str) -> None:
    with invalid("TextPart.extra") as caught:
        TextPart("hi", extra={key: "x"})
    assert key in caught.value.reason


def test_extra_repeating_a_camel_case_wire_key_is_rejected() -> None:
    with invalid("ToolResultPart.extra") as caught:
        ToolResultPart("c1", "t", None, extra={"isError": True})
    assert "isError" in caught.value.reason


def test_extra_must_be_a_json_dict() -> None:
    with invalid("DataPart.extra['providerMetadata']"):
        DataPart(1, extra={"providerMetadata": math.nan})
    with invalid("DataPart.extra"):
        DataPart(1, extra=[("k", "v")])  # pyright: ignore[reportArgumentType]


def test_is_error_must_be_a_bool() -> None:
    with invalid("ToolResultPart.is_error"):
        ToolResultPart("c1", "t", None, is_error=1)  # pyright: ignore[reportArgumentType]


def test_unknown_part_raw_must_be_storable_json() -> None:
    with invalid("UnknownPart.raw['type']"):
        UnknownPart({"type": "x\x00"})


def test_unknown_part_type_is_its_raw_type() -> None:
    assert UnknownPart({"type": "image-gen", "prompt": "cat"}).type == "image-gen"
    assert UnknownPart([1, 2]).type is None
    assert UnknownPart({"type": 3}).type is None


def test_a_part_that_is_not_a_part_is_rejected() -> None:
    with invalid("Message.parts[1]") as caught:
        text_message(parts=[TextPart("ok"), {"type": "text", "text": "a dict"}])
    assert "must be a Part" in caught.value.reason


def test_a_single_part_instead_of_a_list_is_rejected() -> None:
    with invalid("Message.parts"):
        text_message(parts=TextPart("not in a list"))


def test_a_string_instead_of_parts_is_rejected() -> None:
    with invalid("Message.parts"):
        text_message(parts="hello")


# -- errors and immutability ---------------------------------------------------------


def test_invalid_message_error_is_a_value_error_and_a_persistence_error() -> None:
    with pytest.raises(InvalidMessageError) as caught:
        text_message(role="")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, PersistenceError)
    assert caught.value.value == ""
    assert "Message.role" in str(caught.value)


@pytest.mark.parametrize(
    ("instance", "attribute"),
    [
        (Message("m", "user", []), "role"),
        (Session("s", "t", "1"), "archived_at"),
        (TextPart("t"), "text"),
        (ReasoningPart("t"), "signature"),
        (ToolCallPart("c", "n", {}), "input"),
        (ToolResultPart("c", "n", {}), "output"),
        (FilePart("a/b", url="u"), "url"),
        (DataPart(1), "data"),
        (UnknownPart({"type": "x"}), "raw"),
    ],
)
def test_model_classes_are_frozen(instance: object, attribute: str) -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(instance, attribute, None)


# -- the wire schema, declared once on the fields ------------------------------------------


def test_each_part_declares_exactly_the_wire_keys_of_the_spec() -> None:
    declared = {cls.type: tuple(f.key for f in wire_fields(cls)) for cls in KNOWN_PARTS}
    assert declared == WIRE_KEYS


def test_validators_follow_the_declared_kind() -> None:
    with pytest.raises(InvalidMessageError, match=r"ToolResultPart\.is_error"):
        ToolResultPart("c", "t", 1, is_error=cast(Any, 1))
    with pytest.raises(InvalidMessageError, match=r"ReasoningPart\.signature"):
        ReasoningPart("r", signature=cast(Any, 5))
    with pytest.raises(InvalidMessageError, match=r"DataPart\.data"):
        DataPart(math.nan)


def test_extra_may_not_repeat_a_declared_wire_key() -> None:
    with pytest.raises(InvalidMessageError, match="toolCallId"):
        ToolCallPart("c", "t", {}, extra={"toolCallId": "other"})
    with pytest.raises(InvalidMessageError, match="type"):
        TextPart("hi", extra={"type": "data"})
    assert TextPart("hi", extra={"tool_call_id": 1}).extra == {"tool_call_id": 1}


def test_an_optional_field_of_any_json_cannot_be_declared() -> None:
    @attrs.frozen
    class Ambiguous:
        value: Any = attrs.field(default=None, metadata=wire("value", "json"))

    # An explicit null would be read as absent and lost on the way back.
    with pytest.raises(TypeError, match="exact kind"):
        wire_fields(Ambiguous)
