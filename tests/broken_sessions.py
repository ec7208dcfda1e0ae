"""Broken adapters that get sessions, ``delete_messages`` or the lifecycle wrong."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import datetime

from broken_base import LAST, BrokenMemory
from chat_persistence import (
    Capability,
    ConflictError,
    ListQuery,
    Message,
    NotFoundError,
    Session,
    validate_id,
    validate_session,
)
from chat_persistence_memory import MemoryPersistence
from chat_persistence_memory._store import (
    NewSession,
    SessionRow,
    Store,
)

# -- sessions ---------------------------------------------------------------------


class NoCompareAndSet(BrokenMemory):
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

    async def _save_session(
        self, session: Session, expected_updated_at: datetime | None
    ) -> Session:
        return await super()._save_session(session, None)


class RacyCompareAndSet(BrokenMemory):
    """Compares and then writes in two steps with an await between them, so two
    concurrent writers that read the same row both win."""

    broken_rule = "a compare-and-set is atomic: one writer wins"
    caught_by = frozenset({"concurrent_compare_and_set_has_one_winner"})

    async def _save_session(
        self, session: Session, expected_updated_at: datetime | None
    ) -> Session:
        if expected_updated_at is None:
            return await super()._save_session(session, None)
        current = await self._get_session(session.id)
        await asyncio.sleep(0)
        if current is None or current.updated_at != expected_updated_at:
            return await super()._save_session(session, expected_updated_at)
        return await super()._save_session(session, None)


class ConflictWithoutDetails(BrokenMemory):
    """A lost compare-and-set raises ``ConflictError`` without the expected and the
    stored ``updated_at``."""

    broken_rule = "ConflictError carries expected and actual"
    caught_by = frozenset(
        {"compare_and_set_conflicts_when_stale", "compare_and_set_conflicts_when_missing"}
    )

    async def _save_session(
        self, session: Session, expected_updated_at: datetime | None
    ) -> Session:
        try:
            return await super()._save_session(session, expected_updated_at)
        except ConflictError as err:
            raise ConflictError(err.session_id, expected=None, actual=None) from None


class LaxExpectedUpdatedAt(BrokenMemory):
    """Hands ``expected_updated_at`` to storage unchecked (as an adapter written on
    the protocol directly might): a naive datetime or a string fails there with a
    ``TypeError``, not a clear ``InvalidArgumentError``."""

    broken_rule = "a bad expected_updated_at raises InvalidArgumentError naming it"
    caught_by = frozenset({"rejects_bad_expected_updated_at"})

    async def save_session(
        self, session: Session, *, expected_updated_at: datetime | None = None
    ) -> Session:
        self._check_open()
        validate_session(session)
        return await self._save_session(session, expected_updated_at)


class _TenMillisecondClock(Store):
    def save_session(
        self,
        new: NewSession,
        now_us: int,
        *,
        expected_updated_us: int | None,
        check: bool,
        expected_updated_at: datetime | None = None,
    ) -> SessionRow:
        row = super().save_session(
            new,
            now_us,
            expected_updated_us=expected_updated_us,
            check=check,
            expected_updated_at=expected_updated_at,
        )
        row = row._replace(updated_us=now_us // 10_000 * 10_000)
        self._sessions[row.session_id] = row
        return row


class UpdatedAtFromACoarseClock(BrokenMemory):
    """``updated_at`` is a 10 ms clock's reading, not bumped past the previous one,
    so saves within one tick share it."""

    broken_rule = "updated_at strictly increases, even within one clock tick"
    caught_by = frozenset({"save_session_updated_at_strictly_increases"})
    store_class = _TenMillisecondClock


class _ForgetsOldSiblings(Store):
    def _put_session(self, old: SessionRow | None, row: SessionRow) -> None:
        if old is not None and old.thread_id != row.thread_id:
            self._sessions_by_thread.pop(old.thread_id, None)
        super()._put_session(old, row)


class MovingLosesOldSiblings(BrokenMemory):
    """Moving a session to another thread drops the old thread's whole session index."""

    broken_rule = "moving a session keeps the other sessions of its old thread"
    caught_by = frozenset({"moving_a_session_keeps_its_old_siblings"})
    store_class = _ForgetsOldSiblings


class _RestampsArchive(Store):
    def archive_session(
        self, session_id: str, thread_id: str, sdk_version: str, now_us: int
    ) -> SessionRow:
        old = self._sessions.get(session_id)
        if old is None or old.archived_us is None:
            return super().archive_session(session_id, thread_id, sdk_version, now_us)
        row = old._replace(archived_us=max(now_us, old.archived_us + 1000))
        row = row._replace(updated_us=max(row.updated_us + 1, row.archived_us or 0))
        self._put_session(old, row)
        return row


class ReArchiveMovesArchivedAt(BrokenMemory):
    """Archiving an archived session stamps a new ``archived_at``."""

    broken_rule = "archiving an archived session keeps its first archived_at"
    caught_by = frozenset({"archive_twice_keeps_the_first_time", "stateful_random_operations"})
    store_class = _RestampsArchive


class _ArchiveMoves(Store):
    def archive_session(
        self, session_id: str, thread_id: str, sdk_version: str, now_us: int
    ) -> SessionRow:
        old = self._sessions.get(session_id)
        if old is not None and old.thread_id != thread_id:
            self._put_session(old, old._replace(thread_id=thread_id))
        return super().archive_session(session_id, thread_id, sdk_version, now_us)


class ArchiveMovesSession(BrokenMemory):
    """Archiving an existing session under another thread id moves it there."""

    broken_rule = "archive_session keeps an existing session's stored thread_id"
    caught_by = frozenset({"archive_keeps_the_stored_thread", "stateful_random_operations"})
    store_class = _ArchiveMoves


class _KeepsSessions(Store):
    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            self._threads.pop(thread_id, None)


class DeleteKeepsSessions(BrokenMemory):
    """``delete_thread`` deletes the messages but leaves the thread's sessions."""

    broken_rule = "delete_thread deletes the thread's sessions too"
    caught_by = frozenset(
        {"delete_thread_removes_messages_and_sessions", "stateful_random_operations"}
    )
    store_class = _KeepsSessions


class ListSessionsShowsArchived(BrokenMemory):
    """``list_sessions`` includes archived sessions by default."""

    broken_rule = "list_sessions leaves out archived sessions unless asked"
    caught_by = frozenset(
        {
            "list_sessions_oldest_first_live_only",
            "archive_creates_a_missing_session",
            "stateful_random_operations",
        }
    )

    async def _list_sessions(self, thread_id: str, *, include_archived: bool) -> list[Session]:
        return await super()._list_sessions(thread_id, include_archived=True)


# -- delete_messages ----------------------------------------------------------------


class DeleteReturnsAskedOrder(BrokenMemory):
    """``delete_messages`` returns the deleted messages in the order they were asked
    for, not in listing order."""

    broken_rule = "delete_messages returns what existed in listing order"
    caught_by = frozenset({"delete_messages_returns_what_existed"})

    async def _delete_messages(self, thread_id: str, message_ids: tuple[str, ...]) -> list[Message]:
        gone = {m.id: m for m in await super()._delete_messages(thread_id, message_ids)}
        return [gone[i] for i in message_ids if i in gone]


class DeleteSparesHidden(BrokenMemory):
    """``delete_messages`` looks the ids up in the default listing, so a message of
    an archived session is neither deleted nor returned."""

    broken_rule = "delete_messages deletes any message of the thread, hidden or not"
    caught_by = frozenset({"delete_messages_returns_what_existed"})

    async def _delete_messages(self, thread_id: str, message_ids: tuple[str, ...]) -> list[Message]:
        listed = {m.id for m in await self._list_messages(thread_id, ListQuery())}
        shown = tuple(i for i in message_ids if i in listed)
        return await super()._delete_messages(thread_id, shown)


class DeleteUnknownRaises(BrokenMemory):
    """``delete_messages`` raises ``NotFoundError`` for an id that is not there."""

    broken_rule = "ids not there are no error for delete_messages"
    caught_by = frozenset(
        {"delete_messages_returns_what_existed", "delete_messages_of_nothing_is_no_error"}
    )

    async def _delete_messages(self, thread_id: str, message_ids: tuple[str, ...]) -> list[Message]:
        for message_id in message_ids:
            if self._store.get_message(thread_id, message_id) is None:
                raise NotFoundError("message", message_id, thread_id=thread_id)
        return await super()._delete_messages(thread_id, message_ids)


class DeleteAcrossThreads(BrokenMemory):
    """``delete_messages`` deletes the ids from every thread that holds them."""

    broken_rule = "delete_messages touches only the given thread"
    caught_by = frozenset({"delete_messages_of_nothing_is_no_error"})

    async def _delete_messages(self, thread_id: str, message_ids: tuple[str, ...]) -> list[Message]:
        for other in list(self._store._threads):
            if other != thread_id:
                self._store.delete_messages(other, message_ids)
        return await super()._delete_messages(thread_id, message_ids)


class DeleteOneByOne(BrokenMemory):
    """``delete_messages`` deletes one message at a time, yielding between them, so
    a reader can see a delete half done."""

    broken_rule = "delete_messages is atomic"
    caught_by = frozenset({"delete_messages_is_all_or_nothing"})

    async def _delete_messages(self, thread_id: str, message_ids: tuple[str, ...]) -> list[Message]:
        gone: list[Message] = []
        for message_id in message_ids:
            gone += await super()._delete_messages(thread_id, (message_id,))
            await asyncio.sleep(0)
        return sorted(gone, key=lambda m: m.created_at or LAST)


class RacyDeleteMessages(BrokenMemory):
    """``delete_messages`` reads the messages, yields, then deletes them, so two
    concurrent calls both return a message they share."""

    broken_rule = "two concurrent delete_messages never return one message twice"
    caught_by = frozenset({"concurrent_delete_messages_never_return_one_twice"})

    async def _delete_messages(self, thread_id: str, message_ids: tuple[str, ...]) -> list[Message]:
        found = [m for i in message_ids if (m := await self._get_message(thread_id, i))]
        await asyncio.sleep(0)
        await super()._delete_messages(thread_id, message_ids)
        return sorted(found, key=lambda m: m.created_at or LAST)


class DeleteValidatesLazily(BrokenMemory):
    """Checks each id only when it gets to it (as an adapter written on the protocol
    directly might): a bad id deletes the ones before it, and a string is taken
    as a sequence of one-character ids."""

    broken_rule = "delete_messages validates every argument before deleting anything"
    caught_by = frozenset({"delete_messages_rejects_invalid_arguments"})

    async def delete_messages(self, thread_id: str, message_ids: Sequence[str]) -> list[Message]:
        self._check_open()
        validate_id("thread_id", thread_id)
        gone: list[Message] = []
        for index, message_id in enumerate(message_ids or ()):
            validate_id(f"message_ids[{index}]", message_id)
            gone += await self._delete_messages(thread_id, (message_id,))
        return gone


# -- lifecycle and capabilities ---------------------------------------------------------


class WorksWhenClosed(BrokenMemory):
    """Never checks that it is open: operations work before ``open()`` and after
    ``aclose()``."""

    broken_rule = "operations on an adapter that is not open raise AdapterNotOpenError"
    caught_by = frozenset({"operations_need_an_open_adapter"})

    def _check_open(self) -> None:
        """Deliberately accepts every call."""


_stores = itertools.count()


class ForgetsDurable(BrokenMemory):
    """A durable named store that does not declare ``DURABLE``: without
    ``required_capabilities`` its durability check would be skipped, not failed."""

    broken_rule = "a backend declares every capability it is required to have"
    caught_by = frozenset({"declares_required_capabilities", "data_survives_reopening"})
    required = frozenset({Capability.DURABLE, Capability.TIES_IN_SAVE_ORDER})

    def __init__(self) -> None:
        MemoryPersistence.__init__(self, store=f"forgets-durable-{next(_stores)}")
        self.capabilities = self.capabilities - {Capability.DURABLE}
