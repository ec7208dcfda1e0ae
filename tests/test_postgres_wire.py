"""The jsonb decoder takes orjson's fast path only where it reads exactly what the
standard library reads, on the text and on the binary value the read path gets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import DataError

from chat_persistence_postgres._wire import dumps, load_jsonb, loads_stored
from strategies import json_values

BIG_INTS = [2**63 - 1, 2**63, -(2**63) - 1, 2**64, 2**70, -(10**30), 10**18, 10**19]


def test_integers_beyond_64_bits_read_back_exactly() -> None:
    for value in BIG_INTS:
        text = json.dumps({"n": [value]})
        decoded = loads_stored(text.encode())
        assert decoded == {"n": [value]}
        assert type(decoded["n"][0]) is int


def test_a_big_integer_is_seen_wherever_it_starts() -> None:
    # The scan for long digit runs samples every 19th byte first: shift the number
    # across every alignment, with the shortest runs that overflow orjson.
    for value in (2**64, -(2**63) - 1):
        for pad in range(40):
            text = json.dumps({"p": "x" * pad, "n": value}).encode()
            for decoded in (loads_stored(text), load_jsonb(b"\x01" + text)):
                assert decoded["n"] == value, (value, pad)
                assert type(decoded["n"]) is int


def test_long_digit_runs_inside_strings_read_the_same() -> None:
    text = json.dumps({"phone": "1234567890123456789012", "n": 5})
    assert loads_stored(text) == json.loads(text)


@given(json_values() | st.integers() | st.lists(st.integers()))
def test_reads_exactly_what_the_standard_library_reads(value: Any) -> None:
    text = json.dumps(value)
    assert loads_stored(text.encode()) == json.loads(text)
    assert loads_stored(text) == json.loads(text)


@given(json_values() | st.integers() | st.floats(allow_nan=False, allow_infinity=False))
def test_what_is_written_reads_back_as_written(value: Any) -> None:
    # -0.0 is stored as 0.0 (numeric has no negative zero); equal in Python anyway.
    read = loads_stored(dumps(value))
    assert read == value
    assert type(read) is type(value)


@given(json_values() | st.integers() | st.lists(st.integers()))
def test_the_binary_value_reads_as_its_text(value: Any) -> None:
    text = json.dumps(value).encode()
    assert load_jsonb(b"\x01" + text) == loads_stored(text) == json.loads(text)


def test_a_deep_binary_value_reads_as_its_text() -> None:
    text = "[" * 100_000 + "]" * 100_000
    assert load_jsonb(b"\x01" + text.encode()) == text


@pytest.mark.parametrize("raw", [b"", b"\x02[]", b"[]"])
def test_an_unknown_binary_format_is_a_data_error(raw: bytes) -> None:
    with pytest.raises(DataError, match="unknown jsonb binary format"):
        load_jsonb(raw)
