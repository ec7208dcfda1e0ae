"""Plain-text layout for the command line."""

from __future__ import annotations

from collections.abc import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows under a header, each column as wide as its widest cell."""
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def summary(text: str, limit: int = 80) -> str:
    """The first sentence of a description, at most ``limit`` characters."""
    words = " ".join(text.split())
    end = words.find(". ")
    first = words[: end + 1] if end >= 0 else words
    return first if len(first) <= limit else first[: limit - 1] + "…"
