"""JSON to and from ``jsonb``, so that what the adapter stores reads back the same,
and reading a row another program wrote never fails."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

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
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    if "e+" in text or "-0.0" in text:
        text = _STRING_OR_NUMBER.sub(_as_numeric_prints_it, text)
    return text


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
    """
    try:
        return json.loads(data)
    except ValueError:
        return json.loads(data, parse_int=_int_or_decimal)
    except RecursionError:
        return data if isinstance(data, str) else bytes(data).decode()


def _int_or_decimal(token: str) -> int | Decimal:
    try:
        return int(token)
    except ValueError:
        return Decimal(token)
