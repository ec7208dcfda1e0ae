"""The jsonb codec is core's JSON text rule (``tests/test_storage_json.py``) plus
what jsonb adds: positional floats for ``numeric`` and the binary format byte."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import DataError

from chat_persistence.storage import load_json
from chat_persistence_postgres._wire import dump_wire, dumps, load_jsonb
from strategies import json_values


def test_a_big_integer_is_seen_wherever_it_starts_in_a_binary_value() -> None:
    # The format byte shifts the text by one: every alignment still finds the run.
    for value in (2**64, -(2**63) - 1):
        for pad in range(40):
            text = json.dumps({"p": "x" * pad, "n": value}).encode()
            decoded = load_jsonb(b"\x01" + text)
            assert decoded["n"] == value, (value, pad)
            assert type(decoded["n"]) is int


@given(json_values() | st.integers() | st.floats(allow_nan=False, allow_infinity=False))
def test_what_is_written_reads_back_as_written(value: Any) -> None:
    # -0.0 is stored as 0.0 (numeric has no negative zero); equal in Python anyway.
    read: Any = load_json(dumps(value))
    assert read == value
    assert type(read) is type(value)
    assert dump_wire(value).loads() == value


def test_floats_in_exponent_form_are_written_as_numeric_prints_them() -> None:
    wire = dump_wire({"big": 1e23, "s": "1e+23", "z": -0.0})
    assert wire.text == '{"big":100000000000000000000000.0,"s":"1e+23","z":0.0}'
    assert not wire.plain
    assert wire.loads() == {"big": 1e23, "s": "1e+23", "z": 0.0}


@given(json_values() | st.integers() | st.lists(st.integers()))
def test_the_binary_value_reads_as_its_text(value: Any) -> None:
    text = json.dumps(value).encode()
    assert load_jsonb(b"\x01" + text) == load_json(text) == json.loads(text)


def test_a_deep_binary_value_reads_as_its_text() -> None:
    text = "[" * 100_000 + "]" * 100_000
    assert load_jsonb(b"\x01" + text.encode()) == text


@pytest.mark.parametrize("raw", [b"", b"\x02[]", b"[]"])
def test_an_unknown_binary_format_is_a_data_error(raw: bytes) -> None:
    with pytest.raises(DataError, match="unknown jsonb binary format"):
        load_jsonb(raw)
