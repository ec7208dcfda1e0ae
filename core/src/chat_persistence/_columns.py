"""The seed's column contract, once: each table's columns in order, the kind of
value each holds, its primary key and the indexes it recommends. Every SQL backend
maps the kinds to its own types (``chat_persistence.storage``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, NamedTuple

ColumnKind = Literal["text", "time", "json"]


class ContractColumn(NamedTuple):
    """One column of the contract: its name, the kind of value it holds, whether it
    may hold NULL, and whether the seed's DDL gives it ``now()`` as its default."""

    name: str
    kind: ColumnKind
    nullable: bool
    default_now: bool = False


CONTRACT_COLUMNS: Final[Mapping[str, tuple[ContractColumn, ...]]] = {
    "messages": (
        ContractColumn("thread_id", "text", nullable=False),
        ContractColumn("message_id", "text", nullable=False),
        ContractColumn("session_id", "text", nullable=True),
        ContractColumn("user_id", "text", nullable=True),
        ContractColumn("role", "text", nullable=False),
        ContractColumn("created_at", "time", nullable=False, default_now=True),
        ContractColumn("parts_json", "json", nullable=False),
    ),
    "sessions": (
        ContractColumn("session_id", "text", nullable=False),
        ContractColumn("thread_id", "text", nullable=False),
        ContractColumn("sdk_version", "text", nullable=False),
        ContractColumn("state_json", "json", nullable=True),
        ContractColumn("metadata_json", "json", nullable=True),
        ContractColumn("created_at", "time", nullable=False, default_now=True),
        ContractColumn("updated_at", "time", nullable=False, default_now=True),
        ContractColumn("archived_at", "time", nullable=True),
    ),
}
"""Per table role, its columns in the contract's order."""

PRIMARY_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "messages": ("thread_id", "message_id"),
    "sessions": ("session_id",),
}
RECOMMENDED_INDEXES: Final[Mapping[str, tuple[tuple[str, ...], ...]]] = {
    "messages": (("thread_id", "created_at"), ("session_id",)),
    "sessions": (("thread_id",),),
}
"""Per table role, the leading columns of the indexes the seed recommends."""
