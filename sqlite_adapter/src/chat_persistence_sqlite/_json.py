"""JSON text in and out of the file: orjson where it gives what core's rules give,
the standard library where it would not.

Writing: orjson's compact text is ``json_text``'s for every validated value but
two, which go to ``json_text`` itself: a negative zero (stored as ``0.0``, as in
every backend) and an integer beyond 64 bits (orjson refuses it). Reading: orjson
would turn an integer beyond 64 bits into a float, so text with a run of 19 or
more digits, and anything orjson refuses (NaN in a row another program wrote), is
read by ``json.loads``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from chat_persistence.storage import json_text

_RUN = 19
_DIGIT = re.compile("[0-9]")
_LONG_DIGITS = re.compile("[0-9]{19}")


def has_long_digit_run(text: str) -> bool:
    """Whether ``text`` holds 19 digits in a row, the shortest integer that may not
    fit in 64 bits (-9223372036854775809)."""
    # Such a run covers a position that is a multiple of 19, so only the digits at
    # those positions (few, in most text) need a look around them.
    for hit in _DIGIT.finditer(text[::_RUN]):
        at = hit.start() * _RUN
        if _LONG_DIGITS.search(text, max(0, at - _RUN + 1), at + _RUN) is not None:
            return True
    return False


def dumps(value: object) -> str:
    """``value`` (validated JSON) as the text every backend stores for it."""
    return dumps_marked(value)[0]


def dumps_marked(value: object) -> tuple[str, bool]:
    """``dumps(value)``, and whether orjson wrote it (then ``orjson.loads`` reads
    it back exactly, with no need to look for long digit runs)."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return json_text(value), False
    return (json_text(value), False) if "-0.0" in text else (text, True)


def loads(text: str) -> Any:
    """Stored JSON text as Python values, exactly as ``json.loads`` reads it."""
    if not has_long_digit_run(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
