"""Hypothesis strategies shared by the tests: JSON values, wire parts, messages, sessions.

"Storable" values follow the validation rules of SPEC §2 (no NUL, no lone surrogate,
finite numbers); the ``any_*`` strategies also produce what a foreign writer or a
lenient JSON parser could hand us, for the read path that must never fail.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum
from typing import Any, cast

from hypothesis import strategies as st

from chat_persistence import (
    JSON,
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
    unstructure_part,
)

KNOWN_TYPES = ("text", "reasoning", "tool-call", "tool-result", "file", "data")
"""The ``"type"`` of every part the library models."""

WIRE_KEYS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "reasoning": ("text", "signature"),
    "tool-call": ("toolCallId", "toolName", "input"),
    "tool-result": ("toolCallId", "toolName", "output", "isError"),
    "file": ("mediaType", "url", "data", "filename"),
    "data": ("data", "name"),
}
"""The keys each known part models on the wire (SPEC §2)."""

_storable_chars = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")


def storable_text(*, min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    """Strings every backend stores unchanged (no NUL, no lone surrogate)."""
    return st.text(_storable_chars, min_size=min_size, max_size=max_size)


def ids() -> st.SearchStrategy[str]:
    """Valid ids: non-empty storable strings."""
    return storable_text(min_size=1, max_size=16)


def _json(
    text: st.SearchStrategy[str], floats: st.SearchStrategy[float], max_leaves: int
) -> st.SearchStrategy[JSON]:
    scalars = cast(
        st.SearchStrategy[JSON],
        st.none() | st.booleans() | st.integers() | floats | text,
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def json_values(*, max_leaves: int = 10) -> st.SearchStrategy[JSON]:
    """JSON values that pass validation: finite numbers, storable strings and keys."""
    return _json(storable_text(), st.floats(allow_nan=False, allow_infinity=False), max_leaves)


def any_json_values(*, max_leaves: int = 10) -> st.SearchStrategy[JSON]:
    """Anything ``json.loads`` can return: also NaN, Infinity, NUL and lone surrogates."""
    return _json(st.text(max_size=12), st.floats(), max_leaves)


def json_objects(*, max_leaves: int = 10) -> st.SearchStrategy[dict[str, JSON]]:
    """Storable JSON objects."""
    return st.dictionaries(storable_text(), json_values(max_leaves=max_leaves), max_size=4)


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """Timezone-aware datetimes, in UTC or a fixed offset."""
    offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
    return st.datetimes(
        # Naive bounds (as st.datetimes wants), a day inside the range Python can
        # shift by any offset.
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.just(UTC) | offsets,
    )


def _extra_for(part_type: str) -> st.SearchStrategy[dict[str, JSON]]:
    taken = {"type", *WIRE_KEYS[part_type]}
    keys = storable_text().filter(lambda k: k not in taken)
    return st.dictionaries(keys, json_values(max_leaves=4), max_size=2)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def text_parts() -> st.SearchStrategy[TextPart]:
    return st.builds(TextPart, text=storable_text(), extra=_extra_for("text"))


def reasoning_parts() -> st.SearchStrategy[ReasoningPart]:
    return st.builds(
        ReasoningPart,
        text=storable_text(),
        signature=_optional(storable_text()),
        extra=_extra_for("reasoning"),
    )


def tool_call_parts() -> st.SearchStrategy[ToolCallPart]:
    return st.builds(
        ToolCallPart,
        tool_call_id=storable_text(),
        tool_name=storable_text(),
        input=json_values(),
        extra=_extra_for("tool-call"),
    )


def tool_result_parts() -> st.SearchStrategy[ToolResultPart]:
    return st.builds(
        ToolResultPart,
        tool_call_id=storable_text(),
        tool_name=storable_text(),
        output=json_values(),
        is_error=_optional(st.booleans()),
        extra=_extra_for("tool-result"),
    )


def file_parts() -> st.SearchStrategy[FilePart]:
    def build(media: str, url: str | None, data: str | None, name: str | None, extra: Any) -> Any:
        if url is None and data is None:
            url = "https://example.com/f"
        return FilePart(media, url=url, data=data, filename=name, extra=extra)

    return st.builds(
        build,
        storable_text(),
        _optional(storable_text()),
        _optional(storable_text()),
        _optional(storable_text()),
        _extra_for("file"),
    )


def data_parts() -> st.SearchStrategy[DataPart]:
    return st.builds(
        DataPart, data=json_values(), name=_optional(storable_text()), extra=_extra_for("data")
    )


def unknown_parts() -> st.SearchStrategy[UnknownPart]:
    """Parts of a type the library does not model, kept raw."""
    return st.builds(UnknownPart, unknown_type_objects())


def known_parts() -> st.SearchStrategy[Part]:
    """Instances of every modeled part class, with extra keys."""
    return st.one_of(
        text_parts(),
        reasoning_parts(),
        tool_call_parts(),
        tool_result_parts(),
        file_parts(),
        data_parts(),
    )


def parts() -> st.SearchStrategy[Part]:
    """Any valid part, known or unknown."""
    return known_parts() | unknown_parts()


def unknown_type_objects() -> st.SearchStrategy[dict[str, JSON]]:
    """Wire objects whose string ``"type"`` is not a known one."""

    def build(kind: str, body: dict[str, JSON]) -> dict[str, JSON]:
        return {**body, "type": kind}

    return st.builds(
        build, storable_text().filter(lambda t: t not in KNOWN_TYPES), json_objects(max_leaves=6)
    )


def known_type_objects() -> st.SearchStrategy[dict[str, JSON]]:
    """Wire objects of a known type whose modeled keys are each missing, of a random
    JSON type (explicit null included) or well-typed, plus random other keys."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, JSON]:
        kind = draw(st.sampled_from(KNOWN_TYPES))
        wire: dict[str, JSON] = draw(_extra_for(kind))
        for key in WIRE_KEYS[kind]:
            # Weighted towards well-typed strings, so that well-formed parts are common.
            choice = draw(
                st.sampled_from(("string", "string", "missing", "null", "random", "bool"))
            )
            if choice == "null":
                wire[key] = None
            elif choice == "random":
                wire[key] = draw(json_values(max_leaves=3))
            elif choice == "string":
                wire[key] = draw(storable_text())
            elif choice == "bool":
                wire[key] = draw(st.booleans())
        wire["type"] = kind
        return wire

    return build()


def wire_parts() -> st.SearchStrategy[dict[str, JSON]]:
    """Every kind of JSON object with a string ``"type"`` (storable): well-formed known
    parts, known types with random, missing or mistyped keys, and unknown types."""
    well_formed = known_parts().map(lambda p: cast(dict[str, JSON], unstructure_part(p)))
    return st.one_of(well_formed, known_type_objects(), unknown_type_objects())


def messages(
    *, session_ids: st.SearchStrategy[str | None] | None = None
) -> st.SearchStrategy[Message]:
    """Valid messages (``created_at`` set or left to the store)."""
    return st.builds(
        Message,
        id=ids(),
        role=st.sampled_from(("user", "assistant", "system", "tool")) | ids(),
        parts=st.lists(parts(), max_size=3).map(tuple),
        session_id=session_ids if session_ids is not None else _optional(ids()),
        created_at=_optional(aware_datetimes()),
    )


def message_batches(*, max_size: int = 5) -> st.SearchStrategy[list[Message]]:
    """Batches of valid messages with distinct ids, as ``save_messages`` takes them."""
    return st.lists(messages(), max_size=max_size, unique_by=lambda m: m.id)


def sessions() -> st.SearchStrategy[Session]:
    """Valid sessions as a caller builds them (timestamps optional)."""
    return st.builds(
        Session,
        id=ids(),
        thread_id=ids(),
        sdk_version=ids(),
        state=json_values(),
        metadata=json_values(),
        created_at=_optional(aware_datetimes()),
        updated_at=_optional(aware_datetimes()),
        archived_at=_optional(aware_datetimes()),
    )


# -- hostile input: anything a caller could pass, valid or not --------------------

SURPRISING_TEXT: tuple[str, ...] = (
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "\ud83d\ude00",  # a surrogate pair written as two code points: not one character
    "😀",
    "\U0010ffff",
    "\u2028\u2029",
    "\ufeff",
    "\x7f\x01\x1f",
    ' "quoted" \\ ',
    "é" * 3,
)
"""Strings that break text handling somewhere: empty, NUL, lone surrogates, astral
and control characters, escapes."""

_any_char = st.characters(codec=None, categories=None, exclude_categories=())


class _StrSubclass(str):
    """A ``str`` subclass: text to Python, not to a JSON encoder that checks types."""


NOT_STRINGS: tuple[object, ...] = (None, 0, 1.5, True, b"bytes", ["x"], ("x",), _StrSubclass("x"))
"""Values of the wrong type where a string is expected."""


def _times(unit: str, count: int) -> str:
    return unit * count


@functools.cache
def hostile_text() -> st.SearchStrategy[str]:
    """Strings across the whole range: any code point (lone surrogates included),
    the surprising ones, long ones, and lengths either side of the id size limit."""
    repeated = st.builds(_times, st.text(_any_char, min_size=1, max_size=3), st.integers(50, 3000))
    # 512 bytes in UTF-8 is the longest id: 512 "a", 256 "é", 170 "€", 128 "😀".
    near_limit = st.builds(
        _times,
        st.sampled_from(("a", "é", "€", "😀")),
        st.sampled_from((127, 128, 129, 170, 171, 256, 257, 511, 512, 513)),
    )
    return st.one_of(
        st.text(_any_char, max_size=8), st.sampled_from(SURPRISING_TEXT), repeated, near_limit
    )


@functools.cache
def hostile_ids() -> st.SearchStrategy[Any]:
    """What may be passed where an id goes: valid ids, hostile text, other types."""
    return st.one_of(ids(), hostile_text(), st.sampled_from(NOT_STRINGS))


SPECIAL_NUMBERS: tuple[int | float, ...] = (
    0,
    -0.0,
    0.1,
    1e-7,
    5e-324,
    2.0**53,
    2**53 + 1,
    1e16,
    123456789012345680.0,
    1e23,
    -1e308,
    1.7976931348623157e308,
    2**63,
    -(2**63) - 1,
    2**64,
    10**100,
    10**3999,
    -(10**3999),
    10**4000,
    float("nan"),
    float("inf"),
    float("-inf"),
)
"""Numbers at the edges: of float formatting, of numeric and bigint, of the JSON rules."""


class _Color(IntEnum):
    RED = 1


NOT_JSON: tuple[object, ...] = (
    b"bytes",
    bytearray(b"x"),
    (1, 2),
    frozenset({1}),
    Decimal("1.5"),
    datetime(2020, 1, 1, tzinfo=UTC),
    complex(1, 2),
    _Color.RED,
    _StrSubclass("x"),
    OrderedDict([("a", 1)]),
    object(),
)
"""Python values a JSON encoder might take or mangle, but that are not JSON."""


def _nest(leaf: object, depth: int, in_dict: bool) -> object:
    value = leaf
    for _ in range(depth):
        value = {"k": value} if in_dict else [value]
    return value


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(
        hostile_text(), st.integers(), st.none(), st.booleans(), st.tuples(st.integers())
    )
    return st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)


@functools.cache
def hostile_json(*, max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """JSON-ish values across the whole range: valid JSON, NaN and Infinity, huge
    integers, NUL and lone surrogates in strings and keys, keys that are not
    strings, values that are not JSON, and nesting either side of the depth limit."""
    leaves: st.SearchStrategy[Any] = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.sampled_from(SPECIAL_NUMBERS),
        hostile_text(),
        st.sampled_from(NOT_JSON),
    )
    tree = st.recursive(leaves, _containers, max_leaves=max_leaves)
    deep = st.builds(_nest, leaves, st.sampled_from((2, 100, 511, 512, 513, 600)), st.booleans())
    return st.one_of(tree, deep, json_values(max_leaves=max_leaves))


def unchecked(cls: type[Any], **fields: Any) -> Any:
    """An instance of an attrs class holding ``fields`` as given: no converters, no
    validators. What a caller gets with validators disabled, or by hand."""
    instance = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(instance, name, value)
    return instance


@functools.cache
def _hostile_extra() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.just({}),
        st.dictionaries(hostile_text(), hostile_json(max_leaves=3), max_size=2),
        st.sampled_from(({"text": "a modeled key"}, {"type": "x"}, None, [], "extra")),
    )


@functools.cache
def _hostile_field_text() -> st.SearchStrategy[Any]:
    return st.one_of(storable_text(), hostile_text(), st.sampled_from(NOT_STRINGS))


@functools.cache
def _hostile_known_part() -> st.SearchStrategy[Any]:
    return _hostile_known_part_of()


@st.composite
def _hostile_known_part_of(draw: st.DrawFn) -> Any:
    text = _hostile_field_text()
    kind = draw(st.sampled_from(KNOWN_TYPES))
    if kind in ("text", "reasoning"):
        fields: dict[str, Any] = {"text": draw(text)}
        if kind == "reasoning":
            fields["signature"] = draw(st.none() | text)
        cls: type[Any] = TextPart if kind == "text" else ReasoningPart
    elif kind in ("tool-call", "tool-result"):
        fields = {"tool_call_id": draw(text), "tool_name": draw(text)}
        if kind == "tool-call":
            fields["input"] = draw(hostile_json())
            cls = ToolCallPart
        else:
            fields["output"] = draw(hostile_json())
            fields["is_error"] = draw(st.sampled_from((None, True, False, 0, 1, "true")))
            cls = ToolResultPart
    elif kind == "file":
        fields = {name: draw(st.none() | text) for name in ("url", "data", "filename")}
        fields["media_type"] = draw(text)
        cls = FilePart
    else:
        fields = {"data": draw(hostile_json()), "name": draw(st.none() | text)}
        cls = DataPart
    return unchecked(cls, **fields, extra=draw(_hostile_extra()))


@functools.cache
def hostile_parts() -> st.SearchStrategy[Any]:
    """Parts built without validation, with hostile fields; valid parts; non-parts."""
    return st.one_of(
        parts(),
        _hostile_known_part(),
        hostile_json().map(lambda raw: unchecked(UnknownPart, raw=raw)),
        st.sampled_from(("text", {"type": "text", "text": "a dict, not a part"}, None, 5)),
    )


def _with_offset(base: datetime, minutes: int) -> datetime:
    return base.replace(tzinfo=timezone(timedelta(minutes=minutes)))


@functools.cache
def hostile_datetimes() -> st.SearchStrategy[Any]:
    """None, aware datetimes (also ones that leave Python's range once in UTC),
    naive ones, and things that are not datetimes."""
    edges = st.builds(
        _with_offset,
        st.sampled_from((datetime.min, datetime.max, datetime(9999, 12, 31, 12))),
        st.sampled_from((-(23 * 60 + 59), 23 * 60 + 59)),
    )
    return st.one_of(
        st.none(),
        aware_datetimes(),
        edges,
        st.datetimes(),
        st.sampled_from(("2024-01-01T00:00:00Z", 0, 1.5)),
    )


@functools.cache
def hostile_messages() -> st.SearchStrategy[Any]:
    """Messages built without validation: hostile ids, roles, parts, sessions, times."""
    return _hostile_messages()


@st.composite
def _hostile_messages(draw: st.DrawFn) -> Any:
    part_list = draw(st.lists(hostile_parts(), max_size=3))
    shape = draw(st.sampled_from(("tuple", "tuple", "list", "other")))
    message_parts: Any = (
        tuple(part_list)
        if shape == "tuple"
        else part_list
        if shape == "list"
        else draw(st.sampled_from(("not parts", None, {"type": "text"})))
    )
    return unchecked(
        Message,
        id=draw(hostile_ids()),
        role=draw(st.sampled_from(("user", "assistant")) | hostile_ids()),
        parts=message_parts,
        session_id=draw(st.none() | hostile_ids()),
        created_at=draw(hostile_datetimes()),
    )


@functools.cache
def hostile_sessions() -> st.SearchStrategy[Any]:
    """Sessions built without validation, with hostile fields."""
    return _hostile_sessions()


@st.composite
def _hostile_sessions(draw: st.DrawFn) -> Any:
    return unchecked(
        Session,
        id=draw(st.just("s") | hostile_ids()),
        thread_id=draw(st.just("t") | hostile_ids()),
        sdk_version=draw(st.just("v") | hostile_ids()),
        state=draw(hostile_json()),
        metadata=draw(hostile_json()),
        created_at=draw(hostile_datetimes()),
        updated_at=None,
        archived_at=None,
    )
