"""The backends the bridge is tested over, in one place: each turns a key (the SDK's
``db_path``, a test's name) into a ``create_adapter`` URL of its own."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

BACKENDS = ("memory", "postgres", "sqlite")
"""Every backend the bridge's own tests run over."""

DELETE_BACKENDS = BACKENDS
"""The backends ``pop_item`` (and so the SDK's suite) runs over: all of ours have
``delete_messages`` (tests/test_openai_agents_session.py holds one that does not)."""


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
