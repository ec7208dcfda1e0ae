"""What a backend author needs besides ``AdapterBase``: the storage rules that every
backend shares, so that no backend writes them again."""

from __future__ import annotations

import typing

from ._columns import (
    CONTRACT_COLUMNS,
    PRIMARY_KEYS,
    RECOMMENDED_INDEXES,
    ColumnKind,
    ContractColumn,
)
from ._lazy import lazy_exports as _lazy_exports
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

if typing.TYPE_CHECKING:
    from ._jsontext import dump_json, load_json

__all__ = [
    "CONTRACT_COLUMNS",
    "DEFAULT_TABLES",
    "MAX_LIMIT",
    "PRIMARY_KEYS",
    "RECOMMENDED_INDEXES",
    "ColumnKind",
    "ContractColumn",
    "ListQuery",
    "check_sdk_version",
    "default_sdk_version",
    "dump_json",
    "json_text",
    "load_json",
    "no_time_left",
    "option_text_problem",
    "redact",
    "table_names",
]

# orjson loads only for the backends that read and write with it.
_JSON_TEXT = "chat_persistence._jsontext"
__getattr__, __dir__ = _lazy_exports(
    __name__, {"dump_json": _JSON_TEXT, "load_json": _JSON_TEXT}, __all__
)
