"""Rules of storage that every backend shares: paging arguments, the default
``sdk_version``, canonical JSON text and the end of the timestamp range."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Final

import attrs

from ._errors import ConfigError, InvalidMessageError, NotFoundError
from ._json import text_problem

MAX_LIMIT: Final = 2**63 - 1
"""The largest ``limit`` a backend needs to honour (a bigint); any larger means the same."""


@functools.cache
def default_sdk_version() -> str:
    """``chat-persistence/<installed version>``, the default ``sdk_version``."""
    from ._entrypoints import version

    return f"chat-persistence/{version('chat-persistence') or 'unknown'}"


def option_text_problem(value: object) -> str | None:
    """Why ``value`` cannot be a text option (an ``sdk_version``, a store name), or None."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if value == "":
        return "must not be empty"
    return text_problem(value)


def check_sdk_version(value: object, *, backend: str) -> str:
    """``value`` as an ``sdk_version`` (None: the default); ``ConfigError`` naming it
    when it cannot be stored."""
    if value is None:
        return default_sdk_version()
    problem = option_text_problem(value)
    if problem is not None:
        raise ConfigError(
            f"invalid option 'sdk_version' for backend {backend!r}: {problem}",
            backend=backend,
            option="sdk_version",
        )
    assert isinstance(value, str)
    return value


@attrs.frozen(slots=True)
class ListQuery:
    """The validated arguments of one ``list_messages`` call.

    ``limit`` is at most ``MAX_LIMIT``. With ``after`` the page is the oldest
    ``limit`` after the cursor; otherwise the newest ``limit`` (before ``before``, if
    given). Either way it is returned oldest first.
    """

    session_id: str | None = None
    limit: int | None = None
    before: str | None = None
    after: str | None = None

    @classmethod
    def checked(
        cls,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> ListQuery:
        """The query, after checking every argument (``InvalidMessageError`` or
        ``InvalidArgumentError`` naming the bad one)."""
        from ._validation import validate_id, validate_page

        validate_id("thread_id", thread_id)
        for name, value in (("session_id", session_id), ("before", before), ("after", after)):
            if value is not None:
                validate_id(name, value)
        validate_page(limit)
        return cls(session_id, None if limit is None else min(limit, MAX_LIMIT), before, after)

    @property
    def has_cursor(self) -> bool:
        """Whether ``before`` or ``after`` is given."""
        return self.before is not None or self.after is not None

    @property
    def newest_first(self) -> bool:
        """Whether the page is the newest ``limit`` (read newest first, then reversed)."""
        return self.limit is not None and self.after is None

    def cursor_not_found(self, thread_id: str, which: str) -> NotFoundError:
        """The error for an unknown cursor, ``which`` being ``"before"`` or ``"after"``."""
        cursor = self.before if which == "before" else self.after
        assert cursor is not None
        return NotFoundError("message", cursor, thread_id=thread_id)


DEFAULT_TABLES: Final = {"messages": "chat_messages", "sessions": "chat_sessions"}
"""The seed's table names, which a backend with tables uses unless told otherwise."""


def table_names(tables: Mapping[str, str] | None, *, backend: str) -> dict[str, str]:
    """``{"messages": ..., "sessions": ...}`` with the seed's defaults filled in;
    any other key is a ``ConfigError`` naming the ``tables`` option."""
    given = dict(tables or {})
    unknown = sorted(set(given) - set(DEFAULT_TABLES))
    if unknown:
        raise ConfigError(
            f"unknown key(s) in tables: {', '.join(map(repr, unknown))}; "
            "valid keys: messages, sessions",
            backend=backend,
            option="tables",
            valid=sorted(DEFAULT_TABLES),
        )
    return {**DEFAULT_TABLES, **given}


def no_time_left(message_id: str) -> InvalidMessageError:
    """The error for a store-assigned ``created_at`` that would pass the end of the
    datetime range (the thread already holds a message at ``datetime.max``)."""
    return InvalidMessageError(
        "Message.created_at",
        None,
        "no timestamp inside the datetime range is left to assign",
        message_id=message_id,
    )


# A JSON string literal, or a negative zero written as a number (outside any string).
_NEGATIVE_ZERO = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|-0\.0(?=[,\]}]|$)')


def json_text(value: object) -> str:
    """``value`` (validated JSON) as compact JSON text, the way every backend stores
    it: Postgres ``jsonb`` has no negative zero, so ``-0.0`` is written ``0.0``."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    if "-0.0" in text:
        text = _NEGATIVE_ZERO.sub(lambda m: "0.0" if m.group() == "-0.0" else m.group(), text)
    return text
