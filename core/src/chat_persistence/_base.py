"""``AdapterBase``: every rule the backends share, around storage hooks they write.

The public methods are the protocol. Each checks that the adapter is open, runs the
core validation of its arguments, and only then calls a storage hook (``_save_messages``,
``_list_messages``, ...) that a backend implements. A hook therefore receives
arguments that are already valid, and a backend writes nothing but storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Self

from ._errors import AdapterNotOpenError, InvalidArgumentError, OperationNotSupportedError
from ._protocol import Capability, StoredParts
from ._storage import ListQuery, check_sdk_version

if TYPE_CHECKING:
    from ._model import Message, Session


class AdapterBase:
    """The template for adapters: lifecycle, validation, then storage.

    A subclass calls ``super().__init__(sdk_version=...)``, sets ``backend_name``
    and ``capabilities``, and implements the storage hooks: ``_open`` and ``_close``
    for its resources, and one hook per operation. Hooks run only on an open adapter
    with validated arguments; what they return is returned as is, so they must
    return fresh objects that share nothing with the store.
    """

    backend_name: ClassVar[str] = "adapter"
    """The backend's name, used in configuration errors."""
    capabilities: frozenset[Capability] = frozenset()
    """The optional behaviours this adapter has (see ``Capability``)."""

    _is_open: bool = False

    def __init__(self, *, sdk_version: str | None = None) -> None:
        self.sdk_version: str = check_sdk_version(sdk_version, backend=self.backend_name)
        """Written on the sessions that ``archive_session`` creates."""

    # -- lifecycle ----------------------------------------------------------------

    async def _open(self) -> None:
        """Acquire resources; called once per ``open``."""

    async def _close(self) -> None:
        """Release resources; called once per ``aclose``."""

    @property
    def is_open(self) -> bool:
        """Whether operations may be called."""
        return self._is_open

    async def open(self) -> None:
        """Acquire the adapter's resources. Calling it on an open adapter does nothing."""
        if not self._is_open:
            await self._open()
            self._is_open = True

    async def aclose(self) -> None:
        """Release the adapter's resources. Calling it on a closed adapter does nothing."""
        if self._is_open:
            self._is_open = False
            await self._close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        if not self._is_open:
            raise AdapterNotOpenError(type(self).__name__)

    # -- the protocol ---------------------------------------------------------------

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        """Upsert the batch on ``(thread_id, message.id)``, all or nothing; see
        ``PersistenceAdapter.save_messages``."""
        from ._validation import validate_messages

        self._check_open()
        validate_messages(thread_id, messages)
        if not messages:
            return []
        return await self._save_messages(thread_id, tuple(messages))

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        """The thread's messages, oldest first; see ``PersistenceAdapter.list_messages``."""
        self._check_open()
        query = ListQuery.checked(
            thread_id, session_id=session_id, limit=limit, before=before, after=after
        )
        if query.limit == 0 and not query.has_cursor:
            return []
        return await self._list_messages(thread_id, query)

    async def list_stored_parts(self, thread_id: str) -> list[StoredParts]:
        """The thread as ``list_messages(thread_id)`` reads it, each message as
        ``(message_id, role, parts)``; see ``PersistenceAdapter.list_stored_parts``."""
        self._check_open()
        ListQuery.checked(thread_id)
        return await self._list_stored_parts(thread_id)

    async def get_message(self, thread_id: str, message_id: str) -> Message | None:
        """One message, or None."""
        from ._validation import validate_id

        self._check_open()
        validate_id("thread_id", thread_id)
        validate_id("message_id", message_id)
        return await self._get_message(thread_id, message_id)

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's messages and the sessions whose thread it is."""
        from ._validation import validate_id

        self._check_open()
        validate_id("thread_id", thread_id)
        await self._delete_thread(thread_id)

    async def delete_messages(self, thread_id: str, message_ids: Sequence[str]) -> list[Message]:
        """Delete those messages of the thread, atomically; return the ones that
        existed, as they were, oldest first. Unknown ids are not an error."""
        from ._validation import validate_id, validate_ids

        self._check_open()
        validate_id("thread_id", thread_id)
        ids = validate_ids("message_ids", message_ids)
        if not ids:
            return []
        return await self._delete_messages(thread_id, ids)

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        """Upsert on ``session.id``; a compare-and-set with ``expected_updated_at``."""
        from ._validation import validate_session

        self._check_open()
        validate_session(session)
        if expected_updated_at is not None and (
            not isinstance(expected_updated_at, datetime) or expected_updated_at.utcoffset() is None
        ):
            raise InvalidArgumentError(
                "expected_updated_at",
                expected_updated_at,
                "must be a timezone-aware datetime or None",
            )
        return await self._save_session(session, expected_updated_at)

    async def get_session(self, session_id: str) -> Session | None:
        """One session, or None."""
        from ._validation import validate_id

        self._check_open()
        validate_id("session_id", session_id)
        return await self._get_session(session_id)

    async def list_sessions(
        self, thread_id: str, *, include_archived: bool = False
    ) -> list[Session]:
        """The thread's sessions, oldest first; archived ones only when asked."""
        from ._validation import validate_id

        self._check_open()
        validate_id("thread_id", thread_id)
        return await self._list_sessions(thread_id, include_archived=bool(include_archived))

    async def archive_session(self, session_id: str, *, thread_id: str) -> Session:
        """Archive the session (once), creating it if missing; returns it as stored."""
        from ._validation import validate_id

        self._check_open()
        validate_id("session_id", session_id)
        validate_id("thread_id", thread_id)
        return await self._archive_session(session_id, thread_id)

    async def validate_schema(self) -> None:
        """Raise ``SchemaMismatchError`` on drift; backends without a schema return."""
        self._check_open()
        await self._validate_schema()

    # -- storage hooks ----------------------------------------------------------------

    async def _save_messages(self, thread_id: str, messages: tuple[Message, ...]) -> list[Message]:
        """Store a valid, non-empty batch atomically; return it as stored."""
        raise NotImplementedError

    async def _list_messages(self, thread_id: str, query: ListQuery) -> list[Message]:
        """The page ``query`` describes, oldest first; ``NotFoundError`` for an unknown
        cursor (``ListQuery.cursor_not_found`` builds it)."""
        raise NotImplementedError

    async def _list_stored_parts(self, thread_id: str) -> list[StoredParts]:
        """The whole-thread listing as ``(message_id, role, parts JSON)``. The default
        unstructures what ``_list_messages`` gives; a backend overrides it to skip
        making messages, giving the same rows."""
        from ._codec import unstructure_parts

        messages = await self._list_messages(thread_id, ListQuery())
        return [(m.id, m.role, unstructure_parts(m.parts)) for m in messages]

    async def _get_message(self, thread_id: str, message_id: str) -> Message | None:
        raise NotImplementedError

    async def _delete_thread(self, thread_id: str) -> None:
        raise NotImplementedError

    async def _delete_messages(self, thread_id: str, message_ids: tuple[str, ...]) -> list[Message]:
        """Delete the (distinct, valid) ids atomically; return what existed, oldest
        first. Left out by an adapter written against 0.1."""
        raise OperationNotSupportedError(type(self).__name__, "delete_messages")

    async def _save_session(
        self, session: Session, expected_updated_at: datetime | None
    ) -> Session:
        """Upsert; with ``expected_updated_at``, raise ``ConflictError`` and write
        nothing unless the stored ``updated_at`` equals it."""
        raise NotImplementedError

    async def _get_session(self, session_id: str) -> Session | None:
        raise NotImplementedError

    async def _list_sessions(self, thread_id: str, *, include_archived: bool) -> list[Session]:
        raise NotImplementedError

    async def _archive_session(self, session_id: str, thread_id: str) -> Session:
        raise NotImplementedError

    async def _validate_schema(self) -> None:
        """Probe the schema; the default (no schema) returns."""


def supports_delete_messages(adapter: object) -> bool:
    """Whether ``adapter`` implements ``delete_messages`` (new in 0.2; an adapter
    written against 0.1 lacks it, and one on ``AdapterBase`` has it only when it
    implements the ``_delete_messages`` storage hook)."""
    if isinstance(adapter, AdapterBase):
        return type(adapter)._delete_messages is not AdapterBase._delete_messages
    return callable(getattr(adapter, "delete_messages", None))


def supports_stored_parts(adapter: object) -> bool:
    """Whether ``adapter`` implements ``list_stored_parts`` (new in 0.2): every
    adapter on ``AdapterBase`` does; one implementing the protocol directly may not."""
    if isinstance(adapter, AdapterBase):
        return True
    return callable(getattr(adapter, "list_stored_parts", None))
