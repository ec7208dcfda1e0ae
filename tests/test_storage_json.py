"""Core's rule for JSON text in and out of storage (``dump_json``, ``load_json``),
which the SQLite and Postgres backends both call: orjson's fast path only where it
reads and writes exactly what the standard library does."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_persistence.storage import dump_json, json_text, load_json
from strategies import any_json_values, json_values

BIG_INTS = [2**63 - 1, 2**63, -(2**63) - 1, 2**64, 2**70, -(10**30), 10**18, 10**19]


def test_integers_beyond_64_bits_read_back_exactly() -> None:
    for value in BIG_INTS:
        text = json.dumps({"n": [value]})
        for data in (text, text.encode(), bytearray(text.encode())):
            decoded = load_json(data)
            assert decoded == {"n": [value]}
            assert type(decoded["n"][0]) is int


def test_a_big_integer_is_seen_wherever_it_starts() -> None:
    # The scan for long digit runs samples every 19th character first: shift the
    # number across every alignment, with the shortest runs that overflow orjson,
    # after ASCII and after characters that take several bytes in UTF-8.
    for value in (2**64, -(2**63) - 1):
        for pad in range(40):
            for filler in ("x", "é", "😀"):
                text = json.dumps({"p": filler * pad, "n": value}, ensure_ascii=False)
                for data in (text, text.encode()):
                    decoded = load_json(data)
                    assert decoded["n"] == value, (value, pad, filler)
                    assert type(decoded["n"]) is int


def test_long_digit_runs_inside_strings_read_the_same() -> None:
    text = json.dumps({"phone": "1234567890123456789012", "n": 5})
    assert load_json(text) == json.loads(text)


@given(any_json_values() | st.integers() | st.lists(st.integers()))
def test_reads_exactly_what_the_standard_library_reads(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    expected = json.loads(text)
    for data in (text, text.encode("utf-8", "surrogatepass")):
        got = load_json(data)
        assert got == expected or (repr(got) == repr(expected))  # NaN is not NaN


def test_what_python_cannot_read_from_text_still_reads() -> None:
    huge = "1" + "0" * 5000  # more digits than Python converts from text
    assert load_json(f"[{huge}]") == [Decimal(huge)]
    deep = "[" * 100_000 + "]" * 100_000  # deeper than Python's recursion limit
    assert load_json(deep) == deep
    assert load_json(deep.encode()) == deep
    assert math.isnan(load_json("[NaN]")[0])  # orjson refuses it; json reads it
    with pytest.raises(ValueError):
        load_json("{oops")


@given(json_values() | st.integers() | st.floats(allow_nan=False, allow_infinity=False))
def test_what_is_written_is_json_text_and_reads_back_as_written(value: Any) -> None:
    text, plain = dump_json(value)
    assert json.loads(text) == json.loads(json_text(value))
    read: Any = load_json(text)
    assert read == value  # -0.0 is written 0.0: equal in Python anyway
    assert type(read) is type(value)
    if plain:  # orjson's own text: orjson reads it back exactly
        assert orjson.loads(text) == read


def test_what_orjson_writes_differently_is_json_text() -> None:
    assert dump_json([2**64, -0.0]) == (json_text([2**64, -0.0]), False)
    assert dump_json([-0.0]) == ("[0.0]", False)
    assert dump_json({"s": "-0.0", "n": 1.5}) == ('{"s":"-0.0","n":1.5}', False)
    assert dump_json({"n": 2**63 - 1}) == ('{"n":9223372036854775807}', True)
