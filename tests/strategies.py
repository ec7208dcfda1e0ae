"""Hypothesis strategies shared by the tests: JSON values, wire parts, messages, sessions.

"Storable" values follow the validation rules of SPEC §2 (no NUL, no lone surrogate,
finite numbers); the ``any_*`` strategies also produce what a foreign writer or a
lenient JSON parser could hand us, for the read path that must never fail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
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
