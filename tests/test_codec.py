"""The wire codec (SPEC §2): total and lossless on every JSON object with a string
``"type"``; strict on the write path; never failing on the read path."""

from __future__ import annotations

import json
import math
import warnings
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chat_persistence import (
    JSON,
    DataPart,
    FilePart,
    InvalidMessageError,
    Message,
    Part,
    ReasoningPart,
    StoredPartsWarning,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    UnknownPart,
    stored_message,
    structure_part,
    structure_stored_parts,
    unstructure_part,
    unstructure_parts,
    validate_messages,
)
from chat_persistence._codec import _make_decoder, _make_encoder
from chat_persistence._fastcheck import _json as fast_json
from chat_persistence._fastcheck import _make_check
from chat_persistence._model import _extra_field, _require_one_of, _wire_validators
from chat_persistence._partschema import wire
from strategies import (
    KNOWN_TYPES,
    WIRE_KEYS,
    any_json_values,
    json_values,
    known_parts,
    known_type_objects,
    parts,
    wire_parts,
)


def canonical(value: object) -> str:
    """JSON text that tells apart what ``==`` does not (1, 1.0 and True)."""
    return json.dumps(value, sort_keys=True, allow_nan=True)


def _is_str(wire: dict[str, JSON], key: str, *, optional: bool = False) -> bool:
    if key not in wire:
        return optional
    return type(wire[key]) is str


def well_formed(wire: dict[str, JSON]) -> bool:
    """An independent statement of SPEC §2's table: is ``wire`` a known part?"""
    kind = wire["type"]
    if kind == "text":
        return _is_str(wire, "text")
    if kind == "reasoning":
        return _is_str(wire, "text") and _is_str(wire, "signature", optional=True)
    if kind == "tool-call":
        return _is_str(wire, "toolCallId") and _is_str(wire, "toolName") and "input" in wire
    if kind == "tool-result":
        is_error_ok = "isError" not in wire or type(wire["isError"]) is bool
        return (
            _is_str(wire, "toolCallId")
            and _is_str(wire, "toolName")
            and "output" in wire
            and is_error_ok
        )
    if kind == "file":
        return (
            _is_str(wire, "mediaType")
            and all(_is_str(wire, k, optional=True) for k in ("url", "data", "filename"))
            and ("url" in wire or "data" in wire)
        )
    if kind == "data":
        return "data" in wire and _is_str(wire, "name", optional=True)
    return False


# -- the law ---------------------------------------------------------------------


@given(wire_parts())
@example({"type": "file", "mediaType": "a/b", "url": "u", "data": None})
@example({"type": "reasoning", "text": "r", "signature": None})
@example({"type": "tool-result", "toolCallId": "c", "toolName": "t", "output": 1, "isError": 1})
@example({"type": "text", "text": "t", "extra": {"nested": True}})
def test_round_trip_law(wire: dict[str, JSON]) -> None:
    back = unstructure_part(structure_part(wire))
    assert back == wire
    assert canonical(back) == canonical(wire)


@given(known_type_objects())
def test_known_type_objects_are_modeled_exactly_when_well_formed(wire: dict[str, JSON]) -> None:
    part = structure_part(wire)
    assert isinstance(part, UnknownPart) == (not well_formed(wire))
    assert canonical(unstructure_part(part)) == canonical(wire)


@given(known_parts())
def test_well_formed_known_parts_become_their_class(part: Part) -> None:
    wire = unstructure_part(part)
    assert isinstance(wire, dict)
    back = structure_part(wire)
    assert type(back) is type(part)
    assert back == part


@given(parts())
def test_every_part_survives_the_wire(part: Part) -> None:
    wire = json.loads(json.dumps(unstructure_part(part)))
    assert structure_part(wire) == part


def test_unstructure_parts_is_the_parts_json_array() -> None:
    wire = unstructure_parts((TextPart("a"), UnknownPart({"type": "x"})))
    assert wire == [{"type": "text", "text": "a"}, {"type": "x"}]


# -- known parts, by example ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ({"type": "text", "text": "hi"}, TextPart("hi")),
        ({"type": "reasoning", "text": "so", "signature": "sig"}, ReasoningPart("so", "sig")),
        (
            {"type": "tool-call", "toolCallId": "c1", "toolName": "f", "input": {"a": [1]}},
            ToolCallPart("c1", "f", {"a": [1]}),
        ),
        (
            {"type": "tool-call", "toolCallId": "c1", "toolName": "f", "input": None},
            ToolCallPart("c1", "f", None),
        ),
        (
            {
                "type": "tool-result",
                "toolCallId": "c1",
                "toolName": "f",
                "output": "done",
                "isError": False,
            },
            ToolResultPart("c1", "f", "done", is_error=False),
        ),
        (
            {"type": "file", "mediaType": "image/png", "data": "AAAA", "filename": "a.png"},
            FilePart("image/png", data="AAAA", filename="a.png"),
        ),
        ({"type": "data", "data": [1, 2], "name": "rows"}, DataPart([1, 2], name="rows")),
    ],
)
def test_each_known_type_becomes_its_class(wire: dict[str, JSON], expected: Part) -> None:
    assert structure_part(wire) == expected
    assert unstructure_part(expected) == wire


def test_extra_keys_are_kept() -> None:
    wire: dict[str, JSON] = {
        "type": "text",
        "text": "hi",
        "providerMetadata": {"anthropic": {"cacheControl": "ephemeral"}},
        "extra": 1,
    }
    part = structure_part(wire)
    assert isinstance(part, TextPart)
    assert part.extra == {
        "providerMetadata": {"anthropic": {"cacheControl": "ephemeral"}},
        "extra": 1,
    }
    assert unstructure_part(part) == wire


def test_optional_keys_left_out_stay_out() -> None:
    assert unstructure_part(ReasoningPart("r")) == {"type": "reasoning", "text": "r"}
    assert "isError" not in unstructure_part(ToolResultPart("c", "t", 1))  # pyright: ignore[reportOperatorIssue]


@pytest.mark.parametrize(
    "wire",
    [
        {"type": "text"},  # missing key
        {"type": "text", "text": 5},  # mistyped, no coercion to "5"
        {"type": "text", "text": None},  # explicit null
        {"type": "reasoning", "text": "r", "signature": None},  # explicit null of an optional
        {"type": "tool-result", "toolCallId": "c", "toolName": "t", "output": 1, "isError": 1},
        {"type": "tool-result", "toolCallId": "c", "toolName": "t", "output": 1, "isError": "no"},
        {"type": "tool-call", "toolCallId": "c", "toolName": "t"},  # input missing
        {"type": "file", "mediaType": "image/png"},  # neither url nor data
        {"type": "file", "mediaType": "image/png", "url": None, "data": "AA"},
        {"type": "data", "name": "n"},
    ],
)
def test_malformed_known_types_become_unknown_parts(wire: dict[str, JSON]) -> None:
    part = structure_part(wire)
    assert isinstance(part, UnknownPart)
    assert part.raw == wire
    assert canonical(unstructure_part(part)) == canonical(wire)


def test_an_unknown_type_becomes_an_unknown_part() -> None:
    wire: dict[str, JSON] = {"type": "image-generation", "prompt": "a cat", "n": 2}
    part = structure_part(wire)
    assert part == UnknownPart(wire)
    assert part.type == "image-generation"


# -- the write path ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [[], "text", None, 3, [{"type": "text", "text": "a"}]])
def test_a_part_that_is_not_an_object_is_rejected(value: Any) -> None:
    with pytest.raises(InvalidMessageError) as caught:
        structure_part(value)
    assert caught.value.field == "part"
    assert "object" in caught.value.reason


@pytest.mark.parametrize(
    "value", [{}, {"text": "a"}, {"type": 1}, {"type": None}, {"type": ["text"]}]
)
def test_a_part_without_a_string_type_is_rejected(value: Any) -> None:
    with pytest.raises(InvalidMessageError) as caught:
        structure_part(value)
    assert caught.value.field == "part"
    assert '"type"' in caught.value.reason


def test_a_part_holding_an_unstorable_string_is_rejected() -> None:
    with pytest.raises(InvalidMessageError):
        structure_part({"type": "text", "text": "a\x00"})
    with pytest.raises(InvalidMessageError):
        structure_part({"type": "custom", "v": math.nan})


# -- the read path -------------------------------------------------------------------------


def read(value: object) -> tuple[tuple[Part, ...], list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decoded = structure_stored_parts(value, thread_id="thread-9", message_id="msg-4")
    return decoded, caught


def is_a_part(item: Any) -> bool:
    """Whether ``item`` has the shape of a part: an object with a string "type"."""
    return isinstance(item, dict) and isinstance(cast(dict[str, Any], item).get("type"), str)


def write_path(item: Any) -> Part | None:
    """What the write path makes of ``item``, or None when it rejects it."""
    try:
        return structure_part(item)
    except InvalidMessageError:
        return None


@given(st.lists(wire_parts() | any_json_values(max_leaves=5), max_size=5))
def test_stored_arrays_never_fail_and_keep_every_element(value: list[Any]) -> None:
    decoded, caught = read(value)
    assert len(decoded) == len(value)
    assert canonical(unstructure_parts(decoded)) == canonical(value)
    for item, part in zip(value, decoded, strict=True):
        if not is_a_part(item):
            assert isinstance(part, UnknownPart)
            assert part.raw is item
            continue
        written = write_path(item)
        # The read path decodes by shape, exactly as the write path does; it does not
        # re-check content (NUL, NaN) that the write path already refused to store.
        if written is not None:
            assert part == written
            assert type(part) is type(written)
    assert len(caught) == (0 if all(is_a_part(item) for item in value) else 1)


@given(any_json_values())
def test_any_stored_value_never_fails(value: Any) -> None:
    decoded, caught = read(value)
    if isinstance(value, list):
        assert canonical(unstructure_parts(decoded)) == canonical(cast(list[Any], value))
    else:
        [part] = decoded
        assert isinstance(part, UnknownPart)
        assert part.raw is value
        assert len(caught) == 1


def test_a_non_array_value_warns_naming_thread_and_message() -> None:
    decoded, caught = read({"type": "text", "text": "not in an array"})
    assert decoded == (UnknownPart({"type": "text", "text": "not in an array"}),)
    [warning] = caught
    assert issubclass(warning.category, StoredPartsWarning)
    assert issubclass(warning.category, UserWarning)
    assert "thread-9" in str(warning.message)
    assert "msg-4" in str(warning.message)
    assert "not an array" in str(warning.message)


def test_bad_elements_become_unknown_parts_and_warn_once() -> None:
    value = [{"type": "text", "text": "fine"}, 7, {"no": "type"}, {"type": 3}]
    decoded, caught = read(value)
    assert decoded[0] == TextPart("fine")
    assert [p.raw for p in decoded[1:]] == value[1:]  # pyright: ignore[reportAttributeAccessIssue]
    [warning] = caught
    assert "3 malformed" in str(warning.message)
    assert "thread-9" in str(warning.message)
    assert "msg-4" in str(warning.message)


def test_a_clean_array_does_not_warn() -> None:
    decoded, caught = read([{"type": "text", "text": "a"}, {"type": "future-part", "x": 1}])
    assert decoded == (TextPart("a"), UnknownPart({"type": "future-part", "x": 1}))
    assert caught == []


def test_values_that_break_validation_still_read_and_cannot_be_saved_again() -> None:
    value: list[Any] = [{"type": "data", "data": math.nan}, "\ud800", {"type": "x", "k": "\x00"}]
    decoded, _ = read(value)
    assert canonical(unstructure_parts(decoded)) == canonical(value)
    for part in decoded:
        with pytest.raises(InvalidMessageError):
            validate_messages("t", [Message("m", "user", [part])])


def test_stored_message_builds_the_message_without_revalidating() -> None:
    created = datetime(2026, 1, 2, tzinfo=UTC)
    message = stored_message(
        thread_id="t",
        message_id="m1",
        role="assistant",
        session_id="s1",
        created_at=created,
        parts_json=[{"type": "text", "text": "hi"}, {"type": "future", "x": [1]}],
    )
    assert message == Message(
        "m1",
        "assistant",
        [TextPart("hi"), UnknownPart({"type": "future", "x": [1]})],
        session_id="s1",
        created_at=created,
    )


# -- the read path, field by field ---------------------------------------------------------

CLASSES: dict[str, type[Part]] = {
    "text": TextPart,
    "reasoning": ReasoningPart,
    "tool-call": ToolCallPart,
    "tool-result": ToolResultPart,
    "file": FilePart,
    "data": DataPart,
}
ATTRIBUTES = {
    "toolCallId": "tool_call_id",
    "toolName": "tool_name",
    "isError": "is_error",
    "mediaType": "media_type",
}
_ANY_WIRE_KEY = st.sampled_from(sorted({k for keys in WIRE_KEYS.values() for k in keys}))


def _with_type(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return {**body, "type": kind}


def stored_known_type_objects() -> st.SearchStrategy[dict[str, Any]]:
    """Objects of a known type as a foreign writer could store them: any modeled key
    (of this type or another) or other key, holding anything ``json.loads`` returns."""
    values = any_json_values(max_leaves=3) | st.booleans() | st.text(max_size=4)
    body = st.dictionaries(_ANY_WIRE_KEY | st.text(max_size=4), values, max_size=6)
    return st.builds(_with_type, body, st.sampled_from(KNOWN_TYPES))


def check_read_by_shape(wire: dict[str, Any], part: Part) -> None:
    """``part`` is what the read path must make of ``wire``, checked field by field."""
    if not well_formed(wire):
        assert type(part) is UnknownPart
        assert part.raw is wire
        return
    kind = wire["type"]
    assert type(part) is CLASSES[kind]
    for key in WIRE_KEYS[kind]:
        value = getattr(part, ATTRIBUTES.get(key, key))
        # Stored values are taken as they are, not copied: the decoded JSON is ours.
        assert value is wire[key] if key in wire else value is None
    extra = cast(dict[str, Any], part.extra)  # pyright: ignore[reportAttributeAccessIssue]
    assert type(extra) is dict
    assert extra is not wire
    assert list(extra) == [k for k in wire if k != "type" and k not in WIRE_KEYS[kind]]
    assert all(extra[k] is wire[k] for k in extra)


@given(wire_parts() | known_type_objects() | stored_known_type_objects())
@example({"type": "text", "text": "t"})  # exactly the modeled keys
@example({"type": "text", "text": "t", "more": 1})  # one more
@example({"type": "text", "text": math.nan})
@example({"type": "reasoning", "text": "r", "signature": "s", "x": None})
@example({"type": "file", "mediaType": "m", "filename": "f"})  # neither url nor data
@example({"type": "file", "mediaType": "m", "data": "AA", "url": None})
@example({"type": "tool-result", "toolCallId": "c", "toolName": "t", "output": None})
@example({"type": "tool-result", "toolCallId": "c", "toolName": "t", "output": 1, "isError": 0})
@example({"type": "data", "data": {"type": "text"}, "name": "n", "toolName": "t"})
def test_the_read_path_decodes_each_element_by_its_shape(wire: dict[str, Any]) -> None:
    # Alone and inside a longer array (the read path treats the two apart).
    [alone] = structure_stored_parts([wire], thread_id="t", message_id="m")
    check_read_by_shape(wire, alone)
    first, again, text = structure_stored_parts(
        [wire, wire, {"type": "text", "text": "x"}], thread_id="t", message_id="m"
    )
    check_read_by_shape(wire, first)
    check_read_by_shape(wire, again)
    assert text == TextPart("x")
    if not isinstance(first, UnknownPart):
        # Each decoded part has an extra dict of its own, even when it is empty.
        assert first.extra is not again.extra  # pyright: ignore[reportAttributeAccessIssue]


class _Text(str):
    """A ``str`` subclass: not a string "type" to the read path."""


@pytest.mark.parametrize(
    "item",
    [
        {"type": _Text("text"), "text": "a"},
        {"type": ["text"], "text": "a"},
        {"type": {"text": 1}},
        {"type": None},
        {"text": "a"},
        OrderedDict([("type", "text"), ("text", "a")]),
        ["type", "text"],
        "text",
        None,
    ],
)
def test_an_element_without_an_exact_string_type_is_malformed(item: Any) -> None:
    for value in ([item], [{"type": "text", "text": "a"}, item]):
        decoded, caught = read(value)
        assert type(decoded[-1]) is UnknownPart
        assert decoded[-1].raw is item
        [warning] = caught
        assert "1 malformed" in str(warning.message)


def test_the_warning_points_at_the_caller() -> None:
    _, caught = read([1])
    [warning] = caught
    assert warning.filename == __file__


def test_read_messages_and_parts_are_exactly_the_frozen_classes() -> None:
    stored: list[JSON] = [
        {"type": "text", "text": "hi"},
        {"type": "tool-call", "toolCallId": "c", "toolName": "f", "input": {}, "x": 1},
    ]
    message = stored_message(
        thread_id="t",
        message_id="m1",
        role="user",
        session_id=None,
        created_at=None,
        parts_json=stored,
    )
    text, call = message.parts
    assert (type(message), type(text), type(call)) == (Message, TextPart, ToolCallPart)
    assert isinstance(call, ToolCallPart)
    assert message == Message(
        "m1", "user", [TextPart("hi"), ToolCallPart("c", "f", {}, extra={"x": 1})]
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.role = "assistant"  # pyright: ignore[reportAttributeAccessIssue]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        call.tool_name = "g"  # pyright: ignore[reportAttributeAccessIssue]


# -- one declaration, every path derived from it --------------------------------------------


@attrs.frozen(field_transformer=_wire_validators)
class ProbePart:
    """A part class that exists only here: declared once, like the library's own."""

    type: ClassVar[str] = "probe"
    probe_name: str = attrs.field(metadata=wire("probeName", "str"))
    value: JSON = attrs.field(metadata=wire("value", "json"))
    is_flag: bool | None = attrs.field(default=None, metadata=wire("isFlag", "bool"))
    left: str | None = attrs.field(default=None, metadata=wire("left", "str", one_of=True))
    right: str | None = attrs.field(default=None, metadata=wire("right", "str", one_of=True))
    extra: dict[str, JSON] = _extra_field()  # noqa: RUF009 (an attrs field, as in _model)

    def __attrs_post_init__(self) -> None:
        _require_one_of(cast(Any, self))


_PROBE_KEYS = {
    "probeName": "probe_name",
    "value": "value",
    "isFlag": "is_flag",
    "left": "left",
    "right": "right",
}
_probe_decode = _make_decoder(cast(Any, ProbePart))
_probe_encode: Callable[[Any], dict[str, JSON]] = _make_encoder(cast(Any, ProbePart))
_probe_check = _make_check(cast(Any, ProbePart))


def _construct(wire: dict[str, Any]) -> ProbePart | None:
    """The part the constructor makes of ``wire``'s keys, or None if it refuses or the
    part would not write ``wire`` back (an explicit null where None means absent)."""
    fields = {_PROBE_KEYS[k]: v for k, v in wire.items() if k in _PROBE_KEYS}
    extra = {k: v for k, v in wire.items() if k != "type" and k not in _PROBE_KEYS}
    try:
        part = ProbePart(**fields, extra=extra)
    except (InvalidMessageError, TypeError):
        return None
    return part if canonical(_probe_encode(part)) == canonical(wire) else None


@given(
    st.dictionaries(
        st.sampled_from([*_PROBE_KEYS, "other"]),
        json_values(max_leaves=3) | st.booleans() | st.text(max_size=3),
        max_size=6,
    )
)
@example({"probeName": "p", "value": None, "left": "l"})
@example({"probeName": "p", "value": 1})  # neither left nor right
@example({"probeName": "p", "value": 1, "right": None, "left": "l"})
@example({"probeName": "p", "value": 1, "right": "r", "isFlag": 0})
@example({"other": False, "probeName": "", "value": False, "left": ""})  # an extra key
def test_a_new_part_class_gets_a_decoder_encoder_and_check_that_agree(
    body: dict[str, Any],
) -> None:
    wire = {"type": "probe", **body}
    decoded = _probe_decode(wire)
    built = _construct(wire)
    if built is None:
        assert type(decoded) is UnknownPart
        assert decoded.raw is wire
        return
    assert type(decoded) is ProbePart
    assert decoded == built
    assert _probe_encode(decoded) == wire
    # The fast check is a fast yes: it may say no only to what it leaves to the full
    # rules (extra keys, values it does not vet itself, such as huge integers).
    if not decoded.extra and all(fast_json(v) for v in body.values()):
        assert _probe_check(decoded)
