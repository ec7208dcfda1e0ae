"""The JSON type and the rules every stored string and JSON value follows."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TypeAlias, cast

from ._errors import InvalidMessageError

JSON: TypeAlias = "bool | int | float | str | list[JSON] | dict[str, JSON] | None"

# NUL cannot be stored in a Postgres text or jsonb value, and a lone surrogate
# cannot be encoded as UTF-8: both are rejected everywhere, so every backend agrees.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# jsonb keeps numbers as numeric; beyond this many digits Python cannot print them.
_MAX_INT_DIGITS = 4000
_INT_LIMIT = 10**_MAX_INT_DIGITS
_MAX_DEPTH = 512
MAX_ID_BYTES = 512
"""The longest id (thread, message or session id, or a cursor), in UTF-8 bytes, that
an operation accepts. Postgres cannot index much longer keys (a btree entry holds at
most 2704 bytes, and the contract's keys pair two ids), so every backend rejects
them alike, before writing anything. Stored rows are read whatever their ids."""


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return f"contains a NUL character at index {found.start()}"
    return f"contains a lone surrogate at index {found.start()} (not valid UTF-8)"


def check_text(field: str, value: object, *, message_id: str | None = None) -> None:
    """Raise InvalidMessageError unless ``value`` is a storable string."""
    if not isinstance(value, str):
        raise InvalidMessageError(
            field, value, f"must be a string, not {type(value).__name__}", message_id=message_id
        )
    problem = text_problem(value)
    if problem is not None:
        raise InvalidMessageError(field, value, problem, message_id=message_id)


def check_id(field: str, value: object, *, message_id: str | None = None) -> None:
    """Raise InvalidMessageError unless ``value`` is a non-empty storable string."""
    check_text(field, value, message_id=message_id)
    if value == "":
        raise InvalidMessageError(field, value, "must not be empty", message_id=message_id)


def check_json(field: str, value: object, *, message_id: str | None = None) -> None:
    """Raise InvalidMessageError unless ``value`` is JSON that every backend stores
    unchanged: dicts with string keys, lists, finite numbers, storable strings."""
    problem = _json_problem(value, field, 0)
    if problem is not None:
        where, reason, bad = problem
        raise InvalidMessageError(where, bad, reason, message_id=message_id)


def _json_problem(value: object, path: str, depth: int) -> tuple[str, str, object] | None:
    # One frame per level of nesting (the limit is 512 levels).
    kind = type(value)
    if kind is not list and kind is not dict:
        return _scalar_problem(value, path)
    if depth >= _MAX_DEPTH:
        return (path, f"nests deeper than {_MAX_DEPTH} levels", value)
    is_dict = kind is dict
    items: Iterable[tuple[object, object]] = (
        cast(dict[object, object], value).items()
        if is_dict
        else enumerate(cast(list[object], value))
    )
    for key, item in items:
        if is_dict:
            key_problem = _key_problem(key)
            if key_problem is not None:
                return (path, key_problem, value)
        where = f"{path}[{key!r}]" if is_dict else f"{path}[{key}]"
        problem = _json_problem(item, where, depth + 1)
        if problem is not None:
            return problem
    return None


def _key_problem(key: object) -> str | None:
    if type(key) is not str:
        return f"has a key that is not a string: {key!r}"
    problem = text_problem(key)
    return None if problem is None else f"key {key!r} {problem}"


def _scalar_problem(value: object, path: str) -> tuple[str, str, object] | None:
    if value is None or value is True or value is False:
        return None
    kind = type(value)
    if kind is str:
        problem = text_problem(cast(str, value))
        return None if problem is None else (path, problem, value)
    if kind is int:
        if abs(cast(int, value)) >= _INT_LIMIT:
            return (path, f"integer has more than {_MAX_INT_DIGITS} digits", value)
        return None
    if kind is float:
        if math.isfinite(cast(float, value)):
            return None
        return (path, "must be a finite number (NaN and Infinity are not JSON)", value)
    return (path, f"is not a JSON value: {kind.__name__}", value)
