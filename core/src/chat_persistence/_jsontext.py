"""JSON text in and out of storage, fast: orjson where it gives what the standard
library gives, the standard library where it would not.

Writing: orjson's compact text reads back as ``json_text``'s for every validated
value but two, which ``json_text`` itself writes: an integer beyond 64 bits
(orjson refuses it) and a negative zero (stored as ``0.0`` in every backend).
Reading: orjson would turn an integer beyond 64 bits into a float, so text with a
run of 19 or more digits, and anything orjson refuses, is read by ``json.loads``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

from ._storage import json_text

_RUN = 19
# Every digit as "0", every other byte as a space: a run of zeros is a run of digits.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_DIGIT_RUN = b"0" * _RUN
_orjson_loads = orjson.loads  # one lookup fewer on every read
# Found faster in the bytes than "-0.0" in the text, which fails often on "-" and "0".
_NEGATIVE_ZERO = re.compile(rb"-0\.0")


def dump_json(value: object) -> tuple[str, bool]:
    """``value`` (validated JSON) as the text to store, and whether orjson wrote it
    as it is: then ``orjson.loads`` reads it back exactly, with no scan for long
    digit runs (orjson writes only 64-bit integers)."""
    try:
        raw = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json_text(value), False
    if _NEGATIVE_ZERO.search(raw) is not None:
        return json_text(value), False
    return raw.decode(), True


def load_json(data: bytes | bytearray | str) -> Any:
    """Stored JSON text as Python values, exactly as ``json.loads`` reads it, and
    never failing on valid JSON another program stored: an integer longer than
    Python converts from text comes back as a ``Decimal``, and nesting deeper than
    Python's recursion limit as the JSON text itself. Text that is not JSON raises
    ``ValueError``."""
    # 19 digits in a row (-9223372036854775809 is the shortest integer that may not
    # fit in 64 bits) cover a position that is a multiple of 19: with no digit at
    # any of those (most text), there is no such run and the full scan is skipped.
    # A sample of text is encoded (a digit stays one byte; no other character
    # becomes a digit); isspace() is False for an empty sample: the full scan.
    sample = data[::_RUN]
    if type(sample) is str:  # a slice of any str is a str; faster than isinstance
        sample = sample.encode("utf-8", "surrogatepass")
    if sample.translate(_DIGITS_ONLY).isspace() or _LONG_DIGIT_RUN not in (
        data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    ).translate(_DIGITS_ONLY):
        try:
            return _orjson_loads(data)
        except orjson.JSONDecodeError:
            pass
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
