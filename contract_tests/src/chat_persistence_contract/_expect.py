"""Assertions that explain themselves: what the contract expected, what it got."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TypeVar

from chat_persistence import Message

E = TypeVar("E", bound=BaseException)


class ContractViolation(AssertionError):
    """The adapter broke a rule of the contract; the message says which and how."""


class CheckSkipped(Exception):
    """A check cannot run against this adapter (a capability or a factory is missing)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def short(value: object, limit: int = 400) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expect(condition: bool, message: str) -> None:
    """Raise ``ContractViolation(message)`` unless ``condition`` holds."""
    if not condition:
        raise ContractViolation(message)


def expect_equal(actual: object, expected: object, what: str) -> None:
    """``actual == expected``, else a violation showing both."""
    if actual != expected:
        raise ContractViolation(f"{what}: expected {short(expected)}, got {short(actual)}")


def ids_of(messages: Sequence[Message]) -> list[str]:
    """The ids of ``messages``, in order."""
    return [m.id for m in messages]


def expect_ids(messages: Sequence[Message], expected: Sequence[str], what: str) -> None:
    """The messages' ids, in order, are exactly ``expected``."""
    actual = ids_of(messages)
    if actual != list(expected):
        raise ContractViolation(f"{what}: expected ids {list(expected)!r}, got {actual!r}")


async def expect_raises(kind: type[E], operation: Awaitable[object], what: str) -> E:
    """Await ``operation``; it must raise ``kind``. Returns the error."""
    try:
        result = await operation
    except kind as err:
        return err
    except Exception as err:
        raise ContractViolation(
            f"{what}: expected {kind.__name__}, got {type(err).__name__}: {err}"
        ) from err
    raise ContractViolation(
        f"{what}: expected {kind.__name__}, but nothing was raised (returned {short(result)})"
    )
