"""The error hierarchy. Every error carries the offending thing as attributes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from ._redact import redact


class PersistenceError(Exception):
    """Base class of every error raised by chat-persistence and its backends."""


class InvalidArgumentError(PersistenceError, ValueError):
    """An argument of an operation is out of range (a negative ``limit``, say)."""

    def __init__(self, argument: str, value: object, reason: str) -> None:
        self.argument = argument
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {argument}: {reason} (got {_short(value)})")


class InvalidMessageError(PersistenceError, ValueError):
    """A message, part, session or id breaks a validation rule; nothing was written.

    ``field`` names the offending field (``"Message.role"``, ``"parts[2].input"``),
    ``value`` is what was found there and ``reason`` says which rule it breaks.
    """

    def __init__(
        self, field: str, value: object, reason: str, *, message_id: str | None = None
    ) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        self.message_id = message_id
        where = f" in message {message_id!r}" if message_id is not None else ""
        super().__init__(f"{field}{where}: {reason} (got {_short(value)})")


class NotFoundError(PersistenceError, LookupError):
    """A referenced thing (a cursor message, say) does not exist."""

    def __init__(self, kind: str, key: str, *, thread_id: str | None = None) -> None:
        self.kind = kind
        self.key = key
        self.thread_id = thread_id
        where = f" in thread {thread_id!r}" if thread_id is not None else ""
        super().__init__(f"{kind} {key!r} not found{where}")


class ConflictError(PersistenceError):
    """A compare-and-set lost: the stored row changed since the caller read it."""

    def __init__(
        self, session_id: str, *, expected: datetime | None, actual: datetime | None
    ) -> None:
        self.session_id = session_id
        self.expected = expected
        self.actual = actual
        found = "no stored session" if actual is None else f"updated_at={actual.isoformat()}"
        exp = "None" if expected is None else expected.isoformat()
        super().__init__(
            f"session {session_id!r} was changed by someone else: expected updated_at={exp}, "
            f"found {found}; read it again and retry"
        )


class SchemaMismatchError(PersistenceError):
    """The database tables do not match the column contract.

    ``missing_tables`` lists tables that do not exist; ``missing_columns`` maps each
    existing table to the contract columns it lacks; ``other_problems`` holds what a
    stricter check found besides (a wrong column type, a missing key), one sentence each.
    """

    def __init__(
        self,
        missing_tables: Sequence[str],
        missing_columns: Mapping[str, Sequence[str]],
        *,
        other_problems: Sequence[str] = (),
    ) -> None:
        self.missing_tables = list(missing_tables)
        self.missing_columns = {t: list(c) for t, c in missing_columns.items()}
        self.other_problems = list(other_problems)
        problems = [f"missing table {t}" for t in self.missing_tables]
        problems += [
            f"table {t} is missing column(s): {', '.join(cols)}"
            for t, cols in self.missing_columns.items()
            if cols
        ]
        problems += self.other_problems
        super().__init__("schema does not match the column contract: " + "; ".join(problems))


class StorageUnavailableError(PersistenceError):
    """The store cannot be reached; the driver's error is chained as ``__cause__``."""

    def __init__(self, backend: str, detail: str) -> None:
        self.backend = backend
        # A driver's message may quote the connection string.
        self.detail = detail = redact(detail)
        super().__init__(f"{backend} storage is unavailable: {detail}")


class AdapterNotOpenError(PersistenceError, RuntimeError):
    """An operation was called on an adapter that is not open."""

    def __init__(self, adapter: str) -> None:
        self.adapter = adapter
        super().__init__(
            f"{adapter} is not open: use 'async with adapter:' or 'await adapter.open()' first"
        )


class OperationNotSupportedError(PersistenceError, NotImplementedError):
    """The adapter does not implement an operation that is newer than it is."""

    def __init__(self, adapter: str, operation: str) -> None:
        self.adapter = adapter
        self.operation = operation
        super().__init__(
            f"{adapter} does not implement {operation}(), new in chat-persistence 0.2: "
            "upgrade the backend or pick one that has it"
        )


class ConfigError(PersistenceError, ValueError):
    """Configuration cannot be understood: an unknown or missing option, a bad URL."""

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        option: str | None = None,
        valid: Sequence[str] = (),
    ) -> None:
        self.backend = backend
        self.option = option
        self.valid = list(valid)
        # What is wrong with a configuration often quotes it: never its secrets.
        super().__init__(redact(message))


class BackendNotFoundError(PersistenceError, LookupError):
    """No loaded plugin provides the requested backend."""

    def __init__(
        self,
        name: str,
        *,
        installed: Sequence[str],
        suggestion: str | None = None,
        failed: Mapping[str, BaseException] | None = None,
        filtered: str | None = None,
    ) -> None:
        # The name may be a whole configuration string given by mistake.
        name = redact(name)
        self.name = name
        self.installed = list(installed)
        self.suggestion = suggestion
        self.failed = dict(failed or {})
        self.filtered = filtered
        """Why some installed plugins were not loaded (the plugin allow-list), or None."""
        parts = [f"unknown backend {name!r}; installed: {', '.join(self.installed) or '(none)'}"]
        if suggestion is not None:
            parts.append(f"did you mean {suggestion!r}?")
        parts += [
            f"plugin {plugin!r} failed to load: {type(err).__name__}: {err}"
            for plugin, err in self.failed.items()
        ]
        if filtered is not None:
            parts.append(filtered)
        super().__init__("; ".join(parts))


class BackendLoadError(PersistenceError):
    """A backend's plugin is broken: it failed to import, register or build its adapter,
    or two distributions claim the same backend name."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason = redact(reason)
        super().__init__(f"backend {backend!r}: {reason}")


def _short(value: object, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # an int too long to print, a broken __repr__
        text = f"<{type(value).__name__} that cannot be shown>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
