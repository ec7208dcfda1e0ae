"""The backends the bridge is tested over, in one place: each turns a key (the SDK's
``db_path``, a test's name) into a ``create_adapter`` URL of its own.

Postgres joins the ``pop_item`` tests and the SDK's suite as soon as its adapter
implements ``delete_messages``.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from chat_persistence import AdapterBase

BACKENDS = ("memory", "postgres", "sqlite")
"""Every backend the bridge's own tests run over."""


def supports_delete(backend: str) -> bool:
    """Whether the backend implements ``delete_messages`` (``pop_item`` needs it)."""
    if backend == "memory":
        from chat_persistence_memory import MemoryPersistence as cls
    elif backend == "postgres":
        from chat_persistence_postgres import PostgresPersistence as cls
    elif backend == "sqlite":
        from chat_persistence_sqlite import SqlitePersistence as cls
    else:
        raise ValueError(f"unknown test backend {backend!r}")
    return cls._delete_messages is not AdapterBase._delete_messages


DELETE_BACKENDS = tuple(b for b in BACKENDS if supports_delete(b))
"""The backends ``pop_item`` (and so the SDK's suite) can run over today."""


def digest(key: str) -> str:
    """A short name for ``key``, safe in a table name or a store name."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def fresh_key() -> str:
    """A key no other session shares (the SDK's ``":memory:"``)."""
    return uuid.uuid4().hex


def memory_url(key: str) -> str:
    """A named memory store per key: sessions on one key share it."""
    return f"memory://agents-{digest(key)}"


def postgres_url(dsn: str, schema: str, key: str) -> str:
    """The tables of ``key`` in ``schema`` (made by ``postgres_tables``) as a URL."""
    sep = "&" if "?" in dsn else "?"
    name = digest(key)
    return f"{dsn}{sep}messages_table={schema}.m_{name}&sessions_table={schema}.s_{name}"


def sqlite_url(folder: str | Path, key: str) -> str:
    """A database file per key, in ``folder``."""
    return f"sqlite:///{Path(folder) / (digest(key) + '.db')}"


def postgres_tables(schema: str, key: str) -> dict[str, str]:
    """The ``tables`` mapping ``postgres_url`` names."""
    name = digest(key)
    return {"messages": f"{schema}.m_{name}", "sessions": f"{schema}.s_{name}"}


def db_key(db_path: str | Path) -> str:
    """The key of an SDK ``db_path``: one per file, a fresh one per ``":memory:"``."""
    if str(db_path) == ":memory:":
        return fresh_key()
    return str(Path(db_path).expanduser().resolve())
