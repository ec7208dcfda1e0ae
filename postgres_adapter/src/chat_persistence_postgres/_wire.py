"""JSON to and from ``jsonb``: core's rule for JSON text (``dump_json``,
``load_json``), and what ``jsonb`` adds to it: its number printing, and the
binary format byte of the read path."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
from psycopg import DataError

from chat_persistence.storage import dump_json, load_json

# A JSON string literal (skipped whole), or a number in exponent notation with a
# positive exponent (the form Python gives floats of 1e16 and more).
_STRING_OR_EXPONENT = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?e\+\d+')


def dumps(value: object) -> str:
    """``value`` as compact JSON text for a ``jsonb`` parameter, written so that it
    reads back as the same Python value.

    ``jsonb`` keeps numbers as ``numeric``, which prints ``1e+23`` back as
    ``100000000000000000000000``: Python would read an ``int``, and not even the
    same number. Such floats are written positionally with a ``.0`` instead; the
    ``numeric`` keeps that scale, and the value reads back as the same float.
    The rest is core's ``dump_json`` (``-0.0`` written as ``0.0``, as ``numeric``
    holds it).
    """
    return dump_wire(value).text


class Wire(NamedTuple):
    """JSON text as ``dumps`` writes it, and how to read it back."""

    text: str
    plain: bool
    """Written by orjson as it is (no number rewritten): orjson reads it back exactly."""

    def loads(self) -> Any:
        """The value again, as a read of the stored ``jsonb`` would give it."""
        return orjson.loads(self.text) if self.plain else load_json(self.text)


def dump_wire(value: object) -> Wire:
    """``dumps``, with what reading the text back needs to know."""
    text, plain = dump_json(value)
    # "+" is a memchr search, many times faster than one for "e+"; most text has none.
    if "+" in text and "e+" in text:
        return Wire(_STRING_OR_EXPONENT.sub(_as_numeric_prints_it, text), plain=False)
    return Wire(text, plain)


def _as_numeric_prints_it(match: re.Match[str]) -> str:
    token = match.group()
    return token if token.startswith('"') else f"{Decimal(token):f}.0"


JSONB_V1 = b"\x01"
"""The first byte of a binary ``jsonb`` value: the format version."""


def load_jsonb(raw: bytes) -> Any:
    """A binary ``jsonb`` value as psycopg's bytes loader gives it (the format
    byte, then the JSON text), decoded by core's ``load_json``.

    The read path's loader: the bytes arrive from psycopg's C loader, so no Python
    loader runs for each value.
    """
    if raw[:1] != JSONB_V1:
        raise DataError(f"unknown jsonb binary format: {raw[0] if raw else None}")
    return load_json(raw[1:])
