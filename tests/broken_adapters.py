"""Deliberately broken adapters: each wraps the memory backend and breaks one rule.

They prove the contract suite has teeth (tests/test_contract_teeth.py): the suite
must fail on every one of them. Each class says which rule it breaks and which
checks are expected to catch it (``caught_by``). Some keep a little state of their
own beside the wrapped store, because the public API cannot express the fault.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import attrs

from chat_persistence import (
    AdapterBase,
    Capability,
    InvalidMessageError,
    Message,
    NotFoundError,
    Session,
    validate_id,
    validate_messages,
    validate_page,
)
from chat_persistence_memory import MemoryPersistence


class WrappedMemory(AdapterBase):
    """A correct adapter: every operation delegates to a private ``MemoryPersistence``."""

    broken_rule: ClassVar[str] = ""
    caught_by: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self.inner = MemoryPersistence()
        self.capabilities: frozenset[Capability] = self.inner.capabilities
        self.sdk_version = self.inner.sdk_version

    async def _open(self) -> None:
        await self.inner.open()

    async def _close(self) -> None:
        await self.inner.aclose()

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        self._check_open()
        return await self.inner.save_messages(thread_id, messages)

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        self._check_open()
        return await self.inner.list_messages(
            thread_id, session_id=session_id, limit=limit, before=before, after=after
        )

    async def get_message(self, thread_id: str, message_id: str) -> Message | None:
        self._check_open()
        return await self.inner.get_message(thread_id, message_id)

    async def delete_thread(self, thread_id: str) -> None:
        self._check_open()
        await self.inner.delete_thread(thread_id)

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        self._check_open()
        return await self.inner.save_session(session, expected_updated_at=expected_updated_at)

    async def get_session(self, session_id: str) -> Session | None:
        self._check_open()
        return await self.inner.get_session(session_id)

    async def list_sessions(
        self, thread_id: str, *, include_archived: bool = False
    ) -> list[Session]:
        self._check_open()
        return await self.inner.list_sessions(thread_id, include_archived=include_archived)

    async def archive_session(self, session_id: str, *, thread_id: str) -> Session:
        self._check_open()
        return await self.inner.archive_session(session_id, thread_id=thread_id)

    async def validate_schema(self) -> None:
        self._check_open()
        await self.inner.validate_schema()


class SessionOverlay(WrappedMemory):
    """Base for faults the store cannot express: sessions as the wrapper reports them
    replace the stored ones."""

    def __init__(self) -> None:
        super().__init__()
        self.overlay: dict[str, Session] = {}

    def _shown(self, stored: Session) -> Session:
        shown = self.overlay.get(stored.id, stored)
        return attrs.evolve(
            shown, state=copy.deepcopy(shown.state), metadata=copy.deepcopy(shown.metadata)
        )

    async def get_session(self, session_id: str) -> Session | None:
        stored = await super().get_session(session_id)
        return None if stored is None else self._shown(stored)

    async def list_sessions(
        self, thread_id: str, *, include_archived: bool = False
    ) -> list[Session]:
        every = await super().list_sessions(thread_id, include_archived=True)
        shown = [self._shown(s) for s in every]
        return [s for s in shown if include_archived or s.archived_at is None]

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        stored = await super().save_session(session, expected_updated_at=expected_updated_at)
        previous = self.overlay.get(session.id)
        if previous is not None:
            self.overlay[session.id] = attrs.evolve(stored, archived_at=previous.archived_at)
        return self._shown(stored)

    async def delete_thread(self, thread_id: str) -> None:
        await super().delete_thread(thread_id)
        for sid, row in list(self.overlay.items()):
            if row.thread_id == thread_id:
                del self.overlay[sid]


class IgnoresArchiveFilter(SessionOverlay):
    """Archiving is recorded beside the messages, and the default listing never
    looks at it: messages of archived sessions stay listed."""

    broken_rule = "the default listing excludes messages of archived sessions"
    caught_by = frozenset(
        {
            "archived_sessions_are_hidden_by_default",
            "archiving_hides_existing_messages",
            "stateful_random_operations",
        }
    )

    async def archive_session(self, session_id: str, *, thread_id: str) -> Session:
        self._check_open()
        validate_id("session_id", session_id)
        validate_id("thread_id", thread_id)
        shown = await self.get_session(session_id)
        if shown is not None and shown.archived_at is not None:
            return shown
        now = datetime.now(UTC)
        if shown is None:
            stored = await self.inner.save_session(
                Session(session_id, thread_id, self.sdk_version, created_at=now)
            )
        else:
            stored = await self.inner.save_session(shown)
        archived = attrs.evolve(stored, archived_at=now)
        if shown is None:
            archived = attrs.evolve(archived, updated_at=now)
        self.overlay[session_id] = archived
        return self._shown(archived)


class SessionFilterHidesArchived(WrappedMemory):
    """An explicit ``session_id`` still applies the archive filter, so the
    archived-session browser shows nothing."""

    broken_rule = "an explicit session_id lists that session's messages, archived or not"
    caught_by = frozenset(
        {"explicit_session_lists_archived_messages", "stateful_random_operations"}
    )

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        found = await super().list_messages(
            thread_id, session_id=session_id, limit=limit, before=before, after=after
        )
        if session_id is not None:
            row = await self.inner.get_session(session_id)
            if row is not None and row.archived_at is not None:
                return []
        return found


class ResaveMovesToEnd(WrappedMemory):
    """Orders the thread by each message's latest save, so a re-saved message moves
    to the end."""

    broken_rule = "re-saving a message keeps its position"
    caught_by = frozenset(
        {
            "resave_updates_content_keeps_position",
            "resave_in_a_mixed_batch",
            "stateful_random_operations",
        }
    )

    def __init__(self) -> None:
        super().__init__()
        self.last_save: dict[tuple[str, str], int] = {}
        self.counter = itertools.count()

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        stored = await super().save_messages(thread_id, messages)
        for message in stored:
            self.last_save[thread_id, message.id] = next(self.counter)
        return stored

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        found = await super().list_messages(
            thread_id, session_id=session_id, limit=limit, before=before, after=after
        )
        return sorted(found, key=lambda m: self.last_save.get((thread_id, m.id), -1))


class LimitKeepsOldest(WrappedMemory):
    """``limit`` alone keeps the oldest messages instead of the newest."""

    broken_rule = "limit alone returns the newest limit messages"
    caught_by = frozenset({"limit_keeps_the_newest", "stateful_random_operations"})

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        if limit is None or before is not None or after is not None:
            return await super().list_messages(
                thread_id, session_id=session_id, limit=limit, before=before, after=after
            )
        validate_page(limit)
        found = await super().list_messages(thread_id, session_id=session_id, limit=None)
        return found[:limit]


class LimitPastTheEndTruncates(WrappedMemory):
    """Takes the newest ``limit`` with a negative slice, so a limit between the
    number of messages and twice that returns too few."""

    broken_rule = "limit alone returns the newest limit messages (all, when fewer)"
    caught_by = frozenset({"limit_keeps_the_newest", "stateful_random_operations"})

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        if not limit or after is not None:
            return await super().list_messages(
                thread_id, session_id=session_id, limit=limit, before=before, after=after
            )
        validate_page(limit)
        found = await super().list_messages(thread_id, session_id=session_id, before=before)
        return found[len(found) - limit :]


class InclusiveAfterCursor(WrappedMemory):
    """``after=id`` includes the cursor message itself (an off-by-one)."""

    broken_rule = "after=id is exclusive"
    caught_by = frozenset(
        {"after_pages_forwards", "paging_visits_each_message_once", "stateful_random_operations"}
    )

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        found = await super().list_messages(
            thread_id, session_id=session_id, limit=limit, before=before, after=after
        )
        if after is None or before is not None:
            return found
        cursor = await self.inner.get_message(thread_id, after)
        if cursor is None:
            return found
        found = [cursor, *found]
        return found if limit is None else found[:limit]


class UnknownCursorGivesEmpty(WrappedMemory):
    """An unknown cursor returns an empty page instead of raising NotFoundError."""

    broken_rule = "an unknown cursor raises NotFoundError"
    caught_by = frozenset({"unknown_cursor_raises_not_found", "stateful_random_operations"})

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        try:
            return await super().list_messages(
                thread_id, session_id=session_id, limit=limit, before=before, after=after
            )
        except NotFoundError:
            return []


class NonAtomicBatch(WrappedMemory):
    """Saves a batch one message at a time, so a message rejected at save time leaves
    the messages before it written."""

    broken_rule = "a batch is saved all or nothing"
    caught_by = frozenset(
        {
            "failing_batch_writes_nothing",
            "rejects_nul_in_text",
            "rejects_naive_created_at",
            "rejects_nan_in_json",
            "rejects_part_that_is_not_a_part",
            "stateful_random_operations",
        }
    )

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        self._check_open()
        ids = [m.id for m in messages if isinstance(m, Message)]
        if len(ids) != len(set(ids)):
            raise InvalidMessageError("Message.id", ids, "appears twice in one batch")
        stored: list[Message] = []
        for message in messages:
            stored += await self.inner.save_messages(thread_id, [message])
        return stored


class AliasesCallerObjects(WrappedMemory):
    """Hands back the very objects the caller saved, so mutating them afterwards
    changes what later reads return."""

    broken_rule = "returned objects never alias what was passed in"
    caught_by = frozenset({"no_aliasing_of_messages"})

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[tuple[str, str], Message] = {}

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        stored = await super().save_messages(thread_id, messages)
        for sent, back in zip(messages, stored, strict=True):
            self.kept[thread_id, sent.id] = attrs.evolve(back, parts=sent.parts)
        return stored

    def _aliased(self, thread_id: str, message: Message) -> Message:
        kept = self.kept.get((thread_id, message.id))
        return kept if kept is not None and kept.created_at == message.created_at else message

    async def get_message(self, thread_id: str, message_id: str) -> Message | None:
        found = await super().get_message(thread_id, message_id)
        return None if found is None else self._aliased(thread_id, found)

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        found = await super().list_messages(
            thread_id, session_id=session_id, limit=limit, before=before, after=after
        )
        return [self._aliased(thread_id, m) for m in found]


class DropsInvalidMessages(WrappedMemory):
    """Trusts that messages were validated when built: a message that fails
    validation is silently left out of the batch instead of rejecting it."""

    broken_rule = "an invalid message rejects the batch with InvalidMessageError"
    caught_by = frozenset(
        {
            "rejects_nul_in_text",
            "rejects_naive_created_at",
            "rejects_nan_in_json",
            "rejects_empty_role",
            "rejects_part_that_is_not_a_part",
            "failing_batch_writes_nothing",
            "stateful_random_operations",
        }
    )

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        self._check_open()
        valid: list[Message] = []
        for message in messages:
            try:
                validate_messages(thread_id, [*valid, message])
            except InvalidMessageError:
                continue
            valid.append(message)
        return await self.inner.save_messages(thread_id, valid)


class NoCompareAndSet(WrappedMemory):
    """Ignores ``expected_updated_at``: every save wins."""

    broken_rule = "save_session with expected_updated_at is a compare-and-set"
    caught_by = frozenset(
        {
            "compare_and_set_conflicts_when_stale",
            "compare_and_set_conflicts_when_missing",
            "concurrent_compare_and_set_has_one_winner",
            "stateful_random_operations",
        }
    )

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        return await super().save_session(session)


class RacyCompareAndSet(WrappedMemory):
    """Compares and then writes in two steps with an await between them, so two
    concurrent writers that read the same row both win."""

    broken_rule = "a compare-and-set is atomic: one writer wins"
    caught_by = frozenset({"concurrent_compare_and_set_has_one_winner"})

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        if expected_updated_at is None:
            return await super().save_session(session)
        current = await super().get_session(session.id)
        await asyncio.sleep(0)
        if current is None or current.updated_at != expected_updated_at:
            return await super().save_session(session, expected_updated_at=expected_updated_at)
        return await super().save_session(session)


class ReArchiveMovesArchivedAt(SessionOverlay):
    """Archiving an archived session stamps a new ``archived_at``."""

    broken_rule = "archiving an archived session keeps its first archived_at"
    caught_by = frozenset({"archive_twice_keeps_the_first_time", "stateful_random_operations"})

    async def archive_session(self, session_id: str, *, thread_id: str) -> Session:
        before = await self.get_session(session_id)
        stored = await super().archive_session(session_id, thread_id=thread_id)
        if before is None or before.archived_at is None or before.updated_at is None:
            return self._shown(stored)
        later = before.archived_at + timedelta(milliseconds=1)
        moved = attrs.evolve(
            self._shown(stored), archived_at=later, updated_at=max(later, before.updated_at)
        )
        self.overlay[session_id] = moved
        return self._shown(moved)


class ArchiveMovesSession(WrappedMemory):
    """Archiving an existing session under another thread id moves it there."""

    broken_rule = "archive_session keeps an existing session's stored thread_id"
    caught_by = frozenset({"archive_keeps_the_stored_thread", "stateful_random_operations"})

    async def archive_session(self, session_id: str, *, thread_id: str) -> Session:
        self._check_open()
        validate_id("thread_id", thread_id)
        current = await self.inner.get_session(session_id)
        if current is not None and current.thread_id != thread_id:
            await self.inner.save_session(attrs.evolve(current, thread_id=thread_id))
        return await super().archive_session(session_id, thread_id=thread_id)


class DeleteKeepsSessions(WrappedMemory):
    """``delete_thread`` deletes the messages but puts the thread's sessions back."""

    broken_rule = "delete_thread deletes the thread's sessions too"
    caught_by = frozenset(
        {"delete_thread_removes_messages_and_sessions", "stateful_random_operations"}
    )

    async def delete_thread(self, thread_id: str) -> None:
        self._check_open()
        validate_id("thread_id", thread_id)
        sessions = await self.inner.list_sessions(thread_id, include_archived=True)
        await super().delete_thread(thread_id)
        for session in sessions:
            await self.inner.save_session(session)


class StoreTimeIgnoresNewest(WrappedMemory):
    """Store-assigned ``created_at`` is the clock alone, not after the newest stored
    message (explicit future times are ignored)."""

    broken_rule = "a store-assigned created_at is later than everything in the thread"
    caught_by = frozenset(
        {"store_assigned_times_follow_everything_stored", "stateful_random_operations"}
    )

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        now = datetime.now(UTC)
        timed = [
            m
            if not isinstance(m, Message) or m.created_at is not None
            else attrs.evolve(m, created_at=now + timedelta(microseconds=i))
            for i, m in enumerate(messages)
        ]
        return await super().save_messages(thread_id, timed)


class ListSessionsShowsArchived(WrappedMemory):
    """``list_sessions`` includes archived sessions by default."""

    broken_rule = "list_sessions leaves out archived sessions unless asked"
    caught_by = frozenset(
        {
            "list_sessions_oldest_first_live_only",
            "archive_creates_a_missing_session",
            "stateful_random_operations",
        }
    )

    async def list_sessions(
        self, thread_id: str, *, include_archived: bool = False
    ) -> list[Session]:
        return await super().list_sessions(thread_id, include_archived=True)


class TiesById(WrappedMemory):
    """Declares ``TIES_IN_SAVE_ORDER`` but breaks ties between equal ``created_at``
    by message id."""

    broken_rule = "with TIES_IN_SAVE_ORDER, equal created_at list in save order"
    caught_by = frozenset({"equal_times_list_in_save_order"})

    async def list_messages(
        self,
        thread_id: str,
        *,
        session_id: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Message]:
        found = await super().list_messages(
            thread_id, session_id=session_id, limit=limit, before=before, after=after
        )
        return sorted(found, key=lambda m: (m.created_at or datetime.min.replace(tzinfo=UTC), m.id))


class WorksWhenClosed(WrappedMemory):
    """Never checks that it is open: operations work before ``open()`` and after
    ``aclose()``."""

    broken_rule = "operations on an adapter that is not open raise AdapterNotOpenError"
    caught_by = frozenset({"operations_need_an_open_adapter"})

    def _check_open(self) -> None:
        """Deliberately accepts every call."""

    async def _close(self) -> None:
        """Keeps the wrapped store open, so calls after aclose() still work."""


BROKEN_ADAPTERS: tuple[type[WrappedMemory], ...] = (
    IgnoresArchiveFilter,
    SessionFilterHidesArchived,
    ResaveMovesToEnd,
    LimitKeepsOldest,
    LimitPastTheEndTruncates,
    InclusiveAfterCursor,
    UnknownCursorGivesEmpty,
    NonAtomicBatch,
    AliasesCallerObjects,
    DropsInvalidMessages,
    NoCompareAndSet,
    RacyCompareAndSet,
    ReArchiveMovesArchivedAt,
    ArchiveMovesSession,
    DeleteKeepsSessions,
    StoreTimeIgnoresNewest,
    ListSessionsShowsArchived,
    TiesById,
    WorksWhenClosed,
)
"""Every deliberately broken adapter, each breaking a different rule of SPEC §3."""
