"""JSON to and from ``jsonb``, so that what the adapter stores reads back the same,
and reading a row another program wrote never fails."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
from psycopg import DataError

# A JSON string literal (skipped whole); a number in exponent notation with a
# positive exponent (the form Python gives floats of 1e16 and more); negative zero.
_STRING_OR_NUMBER = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?e\+\d+|-0\.0(?=[,\]}]|$)')


def dumps(value: object) -> str:
    """``value`` as compact JSON text for a ``jsonb`` parameter, written so that it
    reads back as the same Python value.

    ``jsonb`` keeps numbers as ``numeric``, which prints ``1e+23`` back as
    ``100000000000000000000000``: Python would read an ``int``, and not even the
    same number. Such floats are written positionally with a ``.0`` instead; the
    ``numeric`` keeps that scale, and the value reads back as the same float.
    ``numeric`` has no negative zero: ``-0.0`` is written as ``0.0``, which is what
    the table will hold (the memory backend does the same).

    Validated values only (finite floats, string keys): orjson writes them, and
    what it refuses (integers beyond 64 bits, deep nesting) goes to the standard
    library; both write every value so that it reads back the same.
    """
    return dump_wire(value).text


class Wire(NamedTuple):
    """JSON text as ``dumps`` writes it, and how to read it back."""

    text: str
    plain: bool
    """Written by orjson as it is (no number rewritten): orjson reads it back exactly."""

    def loads(self) -> Any:
        """The value again, as a read of the stored ``jsonb`` would give it."""
        # orjson's own text holds only 64-bit integers, so the long-digit guard of
        # loads_stored has nothing to find in it.
        return orjson.loads(self.text) if self.plain else loads_stored(self.text)


def dump_wire(value: object) -> Wire:
    """``dumps``, with what reading the text back needs to know."""
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        plain = False
    else:
        plain = True
    # "+" is a memchr search, many times faster than one for "e+"; most text has none.
    if ("+" in text and "e+" in text) or _NEGATIVE_ZERO.search(text):
        return Wire(_STRING_OR_NUMBER.sub(_as_numeric_prints_it, text), plain=False)
    return Wire(text, plain=plain)


# Faster than str.find or "in" for this needle in text with many zeros and dashes.
_NEGATIVE_ZERO = re.compile(r"-0\.0")


def _as_numeric_prints_it(match: re.Match[str]) -> str:
    token = match.group()
    if token.startswith('"'):
        return token
    if token == "-0.0":
        return "0.0"
    return f"{Decimal(token):f}.0"


def loads_stored(data: bytes | bytearray | str) -> Any:
    """Decode a ``jsonb`` value read from the tables, never failing.

    ``jsonb`` holds values Python's decoder refuses: integers longer than Python
    converts from text (they come back as ``Decimal``, which the codec keeps in
    an ``UnknownPart``), and nesting deeper than Python's recursion limit (the
    whole value comes back as its JSON text).

    orjson decodes the rest, faster, except what it would decode differently:
    an integer beyond 64 bits becomes a ``float`` there (or an error), so text
    with a run of 19 digits or more takes the standard library's path.
    """
    raw = data.encode() if isinstance(data, str) else data
    if not _has_long_digit_run(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(data)
    except ValueError:
        return json.loads(data, parse_int=_int_or_decimal)
    except RecursionError:
        return data if isinstance(data, str) else bytes(data).decode()


def _has_long_digit_run(raw: bytes | bytearray) -> bool:
    """Whether ``raw`` holds 19 digits in a row, the shortest integer that may not
    fit in 64 bits (-9223372036854775809)."""
    # Such a run covers a position that is a multiple of 19: with no digit at any
    # of those (most text), there is none, and the full scan is skipped.
    if _no_digit_at_stride(raw):
        return False
    return _LONG_DIGIT_RUN in raw.translate(_DIGITS_ONLY)


def _no_digit_at_stride(raw: bytes | bytearray) -> bool:
    # Every sampled byte maps to a space unless it is a digit; isspace() is False
    # for an empty sample, which so takes the full scan (and finds nothing).
    return raw[::_RUN].translate(_DIGITS_ONLY).isspace()


_RUN = 19
# Every digit as "0", every other byte as a space: a run of zeros is a run of digits.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_DIGIT_RUN = b"0" * _RUN
_JSONB_V1 = b"\x01"


def load_jsonb(raw: bytes) -> Any:
    """A binary ``jsonb`` value as psycopg's bytes loader gives it (the format
    byte, then the JSON text), decoded as ``loads_stored`` decodes the text.

    The read path's loader: the bytes arrive from psycopg's C loader, so no Python
    loader runs for each value. The long-digit scan runs on the whole value (the
    format byte is no digit, and a run still covers a multiple of 19).
    """
    if raw[:1] != _JSONB_V1:
        raise DataError(f"unknown jsonb binary format: {raw[0] if raw else None}")
    if raw[::_RUN].translate(_DIGITS_ONLY).isspace():  # _no_digit_at_stride, inlined
        try:
            return orjson.loads(raw[1:])
        except orjson.JSONDecodeError:
            pass
    return loads_stored(raw[1:])


def _int_or_decimal(token: str) -> int | Decimal:
    try:
        return int(token)
    except ValueError:
        return Decimal(token)
