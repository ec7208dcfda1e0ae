"""What a backend author needs besides ``AdapterBase``: the storage rules that every
backend shares, so that no backend writes them again."""

from __future__ import annotations

from ._redact import redact
from ._storage import (
    DEFAULT_TABLES,
    MAX_LIMIT,
    ListQuery,
    check_sdk_version,
    default_sdk_version,
    json_text,
    no_time_left,
    option_text_problem,
    table_names,
)

__all__ = [
    "DEFAULT_TABLES",
    "MAX_LIMIT",
    "ListQuery",
    "check_sdk_version",
    "default_sdk_version",
    "json_text",
    "no_time_left",
    "option_text_problem",
    "redact",
    "table_names",
]
