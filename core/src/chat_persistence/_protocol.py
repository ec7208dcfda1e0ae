"""The adapter contract: what every backend promises a chat runtime.

The shared contract suite (``chat_persistence_contract``) checks every promise
stated here; a backend that passes it can be swapped for any other.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

if TYPE_CHECKING:
    from ._model import Message, Session

StoredParts = tuple[str, str, object]
"""One message of ``list_stored_parts``: ``(message_id, role, parts JSON)``."""


class Capability(enum.StrEnum):
    """Optional behaviours an adapter declares in its ``capabilities`` attribute
    (a frozenset); the contract suite checks only what is declared, and reports
    the rest as skipped."""

    DURABLE = "durable"
    """Data survives closing the adapter and opening a new one on the same config."""
    TIES_IN_SAVE_ORDER = "ties-in-save-order"
    """Messages with equal ``created_at`` list in save order (not by id)."""
    SCHEMA_VALIDATION = "schema-validation"
    """``validate_schema`` probes a real schema (not a no-op)."""
    ANY_LOOP = "any-loop"
    """Once open, the adapter may be called from any event loop and any OS thread at
    once, and closed from any: nothing it holds is bound to the loop that opened it.
    Undeclared, callers keep every call on the opening loop."""


@runtime_checkable
class PersistenceAdapter(Protocol):
    """Durable chat history behind one async interface.

    Open it with ``async with adapter:`` (or ``open()`` / ``aclose()``); any
    operation on an adapter that is not open raises ``AdapterNotOpenError``.
    Objects passed in or returned never alias the store. Invalid input raises
    ``InvalidMessageError`` before anything is written.

    Most backends subclass ``AdapterBase``, which runs every shared rule and leaves
    only storage to write; implementing this protocol directly is allowed, and the
    contract suite is the judge either way.
    """

    capabilities: frozenset[Capability]
    """The optional behaviours this adapter has (see ``Capability``)."""

    sdk_version: str
    """Written on the sessions that ``archive_session`` creates."""

    async def open(self) -> None:
        """Acquire resources (a pool, a store). Idempotent."""
        ...

    async def aclose(self) -> None:
        """Release what ``open`` acquired. Idempotent."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        """Upsert the batch on ``(thread_id, message.id)``, all or nothing.

        A message without ``created_at`` gets one from the store: strictly
        increasing in batch order and later than every message already in the
        thread. Re-saving a message updates its role, parts and session and keeps
        its ``created_at``, so its position. Returns the messages as stored.
        """
        ...

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        """The thread's messages, oldest first (``created_at``, then save order).

        Excludes messages of archived sessions unless ``session_id`` is given,
        which returns that session's messages whether archived or not. ``limit``
        keeps the newest ``limit`` (the oldest ``limit`` when paging with
        ``after``). ``before`` / ``after`` are message ids: keyset cursors that page
        backwards / forwards, exclusive. An unknown cursor raises ``NotFoundError``.
        """
        ...

    async def get_message(self, thread_id: str, message_id: str) -> Message | None:
        """One message, or None."""
        ...

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's messages and sessions. Deleting nothing is not an error."""
        ...

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        """Upsert on ``session.id``; returns the session as stored.

        Sets ``created_at`` on insert (the caller's, if given) and ``updated_at`` on
        every save, strictly increasing; never touches ``archived_at``. With
        ``expected_updated_at`` it is a compare-and-set: when the stored
        ``updated_at`` differs (or no row exists) it raises ``ConflictError`` and
        writes nothing.
        """
        ...

    async def get_session(self, session_id: str) -> Session | None:
        """One session, or None."""
        ...

    async def list_sessions(
        self, thread_id: str, *, include_archived: bool = False
    ) -> list[Session]:
        """The thread's sessions, oldest first; archived ones only when asked."""
        ...

    async def archive_session(self, session_id: str, *, thread_id: str) -> Session:
        """Mark the session archived (``archived_at = now``), creating the row with the
        adapter's ``sdk_version`` if it is missing. An archived session keeps its
        first ``archived_at``. Its messages drop out of the default listing."""
        ...

    async def delete_messages(self, thread_id: str, message_ids: Sequence[str]) -> list[Message]:
        """Delete those messages of the thread, all or nothing; return the ones that
        existed, as they were, in listing order. Ids not there are not an error, and
        two concurrent calls never both return one message. New in 0.2: callers
        that need it check ``supports_delete_messages(adapter)`` first."""
        ...

    async def list_stored_parts(self, thread_id: str) -> list[StoredParts]:
        """What ``list_messages(thread_id)`` reads, in its order, each message as
        ``(message_id, role, parts)``: ``parts`` is the stored JSON
        (``unstructure_parts(message.parts)``; ``structure_stored_parts`` of it gives
        ``message.parts``), for a reader that maps parts itself without ``Message``
        objects. New in 0.2: callers check ``supports_stored_parts(adapter)`` first."""
        ...

    async def validate_schema(self) -> None:
        """Fail fast on drift: raise ``SchemaMismatchError`` listing every missing
        table and column. Backends without a schema return."""
        ...


OPTIONAL_MEMBERS = frozenset({"delete_messages", "list_stored_parts"})
"""Protocol members an adapter written against an earlier release may lack."""


def missing_members(adapter: object) -> list[str]:
    """The members of ``PersistenceAdapter`` that ``adapter`` lacks, sorted, leaving
    out ``OPTIONAL_MEMBERS``: empty for a complete adapter."""
    return [name for name in _MEMBERS if not hasattr(adapter, name)]


_MEMBERS = sorted(
    {
        *PersistenceAdapter.__annotations__,
        *(
            name
            for name, value in vars(PersistenceAdapter).items()
            if callable(value) and (not name.startswith("_") or name in {"__aenter__", "__aexit__"})
        ),
    }
    - OPTIONAL_MEMBERS
)
