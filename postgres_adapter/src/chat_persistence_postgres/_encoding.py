"""Text and the database's encoding.

Our connections always speak UTF-8 (``client_encoding=UTF8``): psycopg's JSON
travels as UTF-8 whatever the connection says, so any other client encoding would
store mojibake, and reading rows another UTF-8 client wrote would fail. The server
converts to and from its own encoding (``LATIN1``, ``SQL_ASCII``, ...); a character
that encoding cannot hold is refused by the server, and becomes an
``InvalidMessageError`` naming the field, with nothing written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import cast

import psycopg
from psycopg.types.json import Jsonb

from chat_persistence import ConfigError, InvalidMessageError, Message, unstructure_parts
from chat_persistence.storage import json_text

UNTRANSLATABLE = (
    psycopg.errors.UntranslatableCharacter,
    psycopg.errors.CharacterNotInRepertoire,
)
"""What the server raises for a character its encoding cannot hold."""

_BYTES = re.compile(r"byte sequence ((?:0x[0-9a-f]{2} ?)+)")
_TARGET = re.compile(r'in encoding "([^"]+)"$')

Candidate = tuple[str, "str | None", str]
"""``(field, message_id, text)``: where a character may have come from."""


def check_client_encoding(conn: psycopg.AsyncConnection[object]) -> None:
    """``ConfigError`` naming ``client_encoding`` when a host connection is not UTF-8."""
    if conn.info.encoding != "utf-8":
        name = conn.info.parameter_status("client_encoding") or "?"
        raise ConfigError(
            f"the host pool's connections use client_encoding={name}; the "
            "postgres backend needs client_encoding=UTF8 (set it on the pool's "
            "connections, e.g. kwargs={'client_encoding': 'UTF8'})",
            backend="postgres",
            option="client_encoding",
        )


def not_storable(err: psycopg.Error, candidates: Iterable[Candidate]) -> InvalidMessageError:
    """The typed error for a character the database's encoding cannot hold,
    naming the first of ``candidates`` whose text holds it."""
    detail = err.diag.message_primary or ""
    char = _character(detail)
    target = _TARGET.search(detail)
    encoding = target.group(1) if target else "its"
    reason = f"holds a character the database's encoding ({encoding}) cannot store"
    if char is not None:
        for field, message_id, text in candidates:
            if char in text:
                return InvalidMessageError(field, char, reason, message_id=message_id)
    return InvalidMessageError("text", char, reason)


def _character(detail: str) -> str | None:
    found = _BYTES.search(detail)
    if found is None:
        return None
    raw = bytes(int(b, 16) for b in found.group(1).split())
    return raw.decode("utf-8", errors="replace")


_PARAM_FIELDS = {
    "thread": "thread_id",
    "message": "message_id",
    "id": "session_id",
    "session": "session_id",
    "sdk": "sdk_version",
    "state": "Session.state",
    "metadata": "Session.metadata",
}


def param_texts(params: Mapping[str, object]) -> list[Candidate]:
    """The texts among a statement's parameters, named as the caller knows them."""
    texts: list[Candidate] = []
    for name, value in params.items():
        if isinstance(value, Jsonb):
            value = json_text(value.obj)
        elif isinstance(value, list):
            value = "\n".join(v for v in cast(list[object], value) if isinstance(v, str))
        if isinstance(value, str):
            texts.append((_PARAM_FIELDS.get(name, name), None, value))
    return texts


def message_texts(thread_id: str, messages: tuple[Message, ...]) -> list[Candidate]:
    """The texts of a batch of messages, each named by field and message id."""
    texts: list[Candidate] = [("thread_id", None, thread_id)]
    for m in messages:
        texts += [
            ("Message.id", m.id, m.id),
            ("Message.role", m.id, m.role),
            ("Message.session_id", m.id, m.session_id or ""),
            ("Message.parts", m.id, json_text(unstructure_parts(m.parts))),
        ]
    return texts
