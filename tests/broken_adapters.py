"""Deliberately broken adapters: each is the memory backend with one rule broken.

They prove the contract suite has teeth (tests/test_contract_teeth.py): the suite
must fail on every one of them, in the checks each names (``caught_by``). Each
builds on the ``AdapterBase`` template through ``MemoryPersistence`` and overrides
only what it breaks: one storage hook, or one method of the store behind it
(``store_class``). Rules that the template itself enforces (validation, the open
check) can only be broken by overriding the public method, as an adapter that
implements the protocol directly might.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import attrs

from chat_persistence import (
    Capability,
    ConflictError,
    InvalidMessageError,
    ListQuery,
    Message,
    NotFoundError,
    Session,
    unstructure_parts,
    validate_id,
    validate_messages,
    validate_session,
)
from chat_persistence_memory import MemoryPersistence
from chat_persistence_memory._store import (
    MessageRow,
    NewMessage,
    NewSession,
    SessionRow,
    Store,
    to_micros,
)

LAST = datetime.max.replace(tzinfo=UTC)
US = timedelta(microseconds=1)
TWENTY_DAYS_US = 20 * 24 * 3600 * 1_000_000


class BrokenMemory(MemoryPersistence):
    """The memory backend on a private store of ``store_class``: correct as it is."""

    broken_rule: ClassVar[str] = ""
    caught_by: ClassVar[frozenset[str]] = frozenset()
    required: ClassVar[frozenset[Capability]] = frozenset({Capability.TIES_IN_SAVE_ORDER})
    """What the teeth test requires of it (``required_capabilities``)."""
    store_class: ClassVar[type[Store]] = Store

    def __init__(self) -> None:
        super().__init__()
        self._store = self.store_class()


# -- listing ---------------------------------------------------------------------


class _EveryRowVisible(Store):
    def _visible(self, row: MessageRow) -> bool:
        return True


class IgnoresArchiveFilter(BrokenMemory):
    """The default listing never looks at the session rows: messages of archived
    sessions stay listed."""

    broken_rule = "the default listing excludes messages of archived sessions"
    caught_by = frozenset(
        {
            "archived_sessions_are_hidden_by_default",
            "archiving_hides_existing_messages",
            "sessions_of_another_thread_follow_their_row",
            "stateful_random_operations",
        }
    )
    store_class = _EveryRowVisible


class SessionFilterHidesArchived(BrokenMemory):
    """An explicit ``session_id`` still applies the archive filter, so the
    archived-session browser shows nothing."""

    broken_rule = "an explicit session_id lists that session's messages, archived or not"
    caught_by = frozenset(
        {"explicit_session_lists_archived_messages", "stateful_random_operations"}
    )

    async def _list_messages(self, thread_id: str, query: ListQuery) -> list[Message]:
        found = await super()._list_messages(thread_id, query)
        row = None if query.session_id is None else self._store.get_session(query.session_id)
        return [] if row is not None and row.archived_us is not None else found


class LimitKeepsOldest(BrokenMemory):
    """``limit`` alone keeps the oldest messages instead of the newest."""

    broken_rule = "limit alone returns the newest limit messages"
    caught_by = frozenset({"limit_keeps_the_newest", "stateful_random_operations"})

    async def _list_messages(self, thread_id: str, query: ListQuery) -> list[Message]:
        if query.limit is None or query.has_cursor:
            return await super()._list_messages(thread_id, query)
        found = await super()._list_messages(thread_id, attrs.evolve(query, limit=None))
        return found[: query.limit]


class LimitPastTheEndTruncates(BrokenMemory):
    """Takes the newest ``limit`` with a negative slice, so a limit between the
    number of messages and twice that returns too few."""

    broken_rule = "limit alone returns the newest limit messages (all, when fewer)"
    caught_by = frozenset({"limit_keeps_the_newest", "stateful_random_operations"})

    async def _list_messages(self, thread_id: str, query: ListQuery) -> list[Message]:
        if not query.limit or query.after is not None:
            return await super()._list_messages(thread_id, query)
        found = await super()._list_messages(thread_id, attrs.evolve(query, limit=None))
        return found[len(found) - query.limit :]


class InclusiveAfterCursor(BrokenMemory):
    """``after=id`` includes the cursor message itself (an off-by-one)."""

    broken_rule = "after=id is exclusive"
    caught_by = frozenset(
        {"after_pages_forwards", "paging_visits_each_message_once", "stateful_random_operations"}
    )

    async def _list_messages(self, thread_id: str, query: ListQuery) -> list[Message]:
        found = await super()._list_messages(thread_id, query)
        if query.after is None or query.before is not None:
            return found
        cursor = await self._get_message(thread_id, query.after)
        found = [] if cursor is None else [cursor, *found]
        return found if query.limit is None else found[: query.limit]


class UnknownCursorGivesEmpty(BrokenMemory):
    """An unknown cursor returns an empty page instead of raising NotFoundError."""

    broken_rule = "an unknown cursor raises NotFoundError"
    caught_by = frozenset({"unknown_cursor_raises_not_found", "stateful_random_operations"})

    async def _list_messages(self, thread_id: str, query: ListQuery) -> list[Message]:
        try:
            return await super()._list_messages(thread_id, query)
        except NotFoundError:
            return []


class VagueCursorError(BrokenMemory):
    """An unknown cursor raises a ``NotFoundError`` that names neither the cursor
    nor the thread."""

    broken_rule = "NotFoundError names the unknown cursor (kind, key, thread_id)"
    caught_by = frozenset({"unknown_cursor_raises_not_found"})

    async def _list_messages(self, thread_id: str, query: ListQuery) -> list[Message]:
        try:
            return await super()._list_messages(thread_id, query)
        except NotFoundError:
            raise NotFoundError("cursor", "(unknown)") from None


class TiesById(BrokenMemory):
    """Declares ``TIES_IN_SAVE_ORDER`` but breaks ties between equal ``created_at``
    by message id."""

    broken_rule = "with TIES_IN_SAVE_ORDER, equal created_at list in save order"
    caught_by = frozenset({"equal_times_list_in_save_order"})

    async def _list_messages(self, thread_id: str, query: ListQuery) -> list[Message]:
        found = await super()._list_messages(thread_id, query)
        return sorted(found, key=lambda m: (m.created_at or LAST, m.id))


# -- saving messages --------------------------------------------------------------


class ResaveMovesToEnd(BrokenMemory):
    """A re-saved message is stored anew, so it moves to the end of the thread."""

    broken_rule = "re-saving a message keeps its position"
    caught_by = frozenset(
        {
            "resave_updates_content_keeps_position",
            "resave_in_a_mixed_batch",
            "stateful_random_operations",
        }
    )

    async def _save_messages(self, thread_id: str, messages: tuple[Message, ...]) -> list[Message]:
        self._store.delete_messages(thread_id, [m.id for m in messages])
        return await super()._save_messages(thread_id, messages)


class StoreTimeIgnoresNewest(BrokenMemory):
    """Store-assigned ``created_at`` is the clock alone, not after the newest stored
    message (explicit future times are ignored)."""

    broken_rule = "a store-assigned created_at is later than everything in the thread"
    caught_by = frozenset(
        {"store_assigned_times_follow_everything_stored", "stateful_random_operations"}
    )

    async def _save_messages(self, thread_id: str, messages: tuple[Message, ...]) -> list[Message]:
        now = datetime.now(UTC)
        timed = tuple(
            m if m.created_at is not None else attrs.evolve(m, created_at=now + i * US)
            for i, m in enumerate(messages)
        )
        return await super()._save_messages(thread_id, timed)


class _LateClock(Store):
    def save_messages(
        self, thread_id: str, batch: Sequence[NewMessage], now_us: int
    ) -> list[MessageRow]:
        return super().save_messages(thread_id, batch, now_us - TWENTY_DAYS_US)


class StoreTimesInThePast(BrokenMemory):
    """Store-assigned message times come from a clock twenty days behind."""

    broken_rule = "store-assigned times are the current time"
    caught_by = frozenset({"store_assigned_times_follow_the_clock"})
    store_class = _LateClock


class WrapsAroundAtTheEnd(BrokenMemory):
    """After a message at ``datetime.max`` there is no later time; instead of
    refusing, it stores the new messages at ``datetime.max`` too."""

    broken_rule = "no store-assigned time after datetime.max: InvalidMessageError"
    caught_by = frozenset({"no_store_time_left_after_the_last_instant"})

    async def _save_messages(self, thread_id: str, messages: tuple[Message, ...]) -> list[Message]:
        try:
            return await super()._save_messages(thread_id, messages)
        except InvalidMessageError:
            last = tuple(m if m.created_at else attrs.evolve(m, created_at=LAST) for m in messages)
            return await super()._save_messages(thread_id, last)


class FloatTimes(BrokenMemory):
    """Keeps explicit times as float seconds, which lose microseconds after 2255."""

    broken_rule = "explicit created_at round-trips to the microsecond, also far ahead"
    caught_by = frozenset({"extreme_times_round_trip"})

    async def _save_messages(self, thread_id: str, messages: tuple[Message, ...]) -> list[Message]:
        def floated(message: Message) -> Message:
            if message.created_at is None or message.created_at.year in (1, 9999):
                return message
            seconds = message.created_at.timestamp()
            return attrs.evolve(message, created_at=datetime.fromtimestamp(seconds, UTC))

        return await super()._save_messages(thread_id, tuple(map(floated, messages)))


class RefusesTheEndsOfTime(BrokenMemory):
    """Refuses ``created_at`` at ``datetime.min`` or ``datetime.max``, as a store with
    a narrower range than Python's (or an off-by-one range check) would."""

    broken_rule = "created_at exactly datetime.min or datetime.max (UTC) is accepted"
    caught_by = frozenset({"extreme_times_round_trip", "no_store_time_left_after_the_last_instant"})

    async def _save_messages(self, thread_id: str, messages: tuple[Message, ...]) -> list[Message]:
        for message in messages:
            if message.created_at is not None and message.created_at.year in (1, 9999):
                raise InvalidMessageError(
                    "Message.created_at",
                    message.created_at,
                    "is outside the range this store keeps",
                    message_id=message.id,
                )
        return await super()._save_messages(thread_id, messages)


class KeepsNegativeZero(BrokenMemory):
    """Writes parts with plain ``json.dumps``, so ``-0.0`` reads back as ``-0.0``."""

    broken_rule = "-0.0 in JSON is stored as 0.0, as every backend stores it"
    caught_by = frozenset({"negative_zero_reads_back_as_zero"})

    async def _save_messages(self, thread_id: str, messages: tuple[Message, ...]) -> list[Message]:
        batch = [
            NewMessage(
                m.id,
                m.role,
                json.dumps(unstructure_parts(m.parts)),
                m.session_id,
                None if m.created_at is None else to_micros(m.created_at),
            )
            for m in messages
        ]
        rows = self._store.save_messages(thread_id, batch, time.time_ns() // 1000)
        return [self._message(thread_id, row) for row in rows]


class AliasesCallerObjects(BrokenMemory):
    """Hands back the very parts the caller saved, so mutating them afterwards
    changes what later reads return."""

    broken_rule = "returned objects never alias what was passed in"
    caught_by = frozenset({"no_aliasing_of_messages"})

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[tuple[str, str], Message] = {}

    async def _save_messages(self, thread_id: str, messages: tuple[Message, ...]) -> list[Message]:
        stored = await super()._save_messages(thread_id, messages)
        for sent, back in zip(messages, stored, strict=True):
            self.kept[thread_id, sent.id] = attrs.evolve(back, parts=sent.parts)
        return stored

    async def _get_message(self, thread_id: str, message_id: str) -> Message | None:
        found = await super()._get_message(thread_id, message_id)
        kept = self.kept.get((thread_id, message_id))
        return kept if found is not None and kept is not None else found


class NonAtomicBatch(BrokenMemory):
    """Validates and saves a batch one message at a time (as an adapter written
    on the protocol directly might), so a rejected message leaves the ones before
    it written."""

    broken_rule = "a batch is saved all or nothing"
    caught_by = frozenset(
        {
            "failing_batch_writes_nothing",
            "rejects_nul_in_text",
            "rejects_naive_created_at",
            "rejects_nan_in_json",
            "rejects_part_that_is_not_a_part",
            "no_store_time_left_after_the_last_instant",
            "stateful_random_operations",
        }
    )

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        ids = [m.id for m in messages if isinstance(m, Message)]
        if len(ids) != len(set(ids)):
            raise InvalidMessageError("Message.id", ids, "appears twice in one batch")
        stored: list[Message] = []
        for message in messages:
            stored += await super().save_messages(thread_id, [message])
        return stored


class DropsInvalidMessages(BrokenMemory):
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
        valid: list[Message] = []
        for message in messages:
            try:
                validate_messages(thread_id, [*valid, message])
            except InvalidMessageError:
                continue
            valid.append(message)
        return await super().save_messages(thread_id, valid)


class AcceptsTimesOutsideUtc(BrokenMemory):
    """Moves an aware ``created_at`` that has no UTC form to the nearest end of the
    range instead of rejecting it."""

    broken_rule = "an aware created_at outside the UTC range is rejected"
    caught_by = frozenset({"rejects_created_at_outside_utc_range"})

    async def save_messages(self, thread_id: str, messages: Sequence[Message]) -> list[Message]:
        def clamped(message: Message) -> Message:
            created = message.created_at
            if not isinstance(message, Message) or created is None or 1 < created.year < 9999:
                return message
            try:
                created.astimezone(UTC)
            except OverflowError:
                edge = LAST if created.year == 9999 else datetime.min.replace(tzinfo=UTC)
                return attrs.evolve(message, created_at=edge)
            return message

        return await super().save_messages(thread_id, [clamped(m) for m in messages])


class MisnamesBadArguments(BrokenMemory):
    """Rejects a bad id argument of ``list_messages`` without saying which one."""

    broken_rule = "InvalidMessageError.field names the bad argument"
    caught_by = frozenset({"rejects_invalid_id_arguments"})

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
        except InvalidMessageError as err:
            raise InvalidMessageError("id", err.value, err.reason) from None


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
        self.capabilities = frozenset({Capability.TIES_IN_SAVE_ORDER})


BROKEN_ADAPTERS: tuple[type[BrokenMemory], ...] = (
    IgnoresArchiveFilter,
    SessionFilterHidesArchived,
    LimitKeepsOldest,
    LimitPastTheEndTruncates,
    InclusiveAfterCursor,
    UnknownCursorGivesEmpty,
    VagueCursorError,
    TiesById,
    ResaveMovesToEnd,
    StoreTimeIgnoresNewest,
    StoreTimesInThePast,
    WrapsAroundAtTheEnd,
    FloatTimes,
    RefusesTheEndsOfTime,
    KeepsNegativeZero,
    AliasesCallerObjects,
    NonAtomicBatch,
    DropsInvalidMessages,
    AcceptsTimesOutsideUtc,
    MisnamesBadArguments,
    NoCompareAndSet,
    RacyCompareAndSet,
    ConflictWithoutDetails,
    LaxExpectedUpdatedAt,
    UpdatedAtFromACoarseClock,
    MovingLosesOldSiblings,
    ReArchiveMovesArchivedAt,
    ArchiveMovesSession,
    DeleteKeepsSessions,
    ListSessionsShowsArchived,
    DeleteReturnsAskedOrder,
    DeleteSparesHidden,
    DeleteUnknownRaises,
    DeleteAcrossThreads,
    DeleteOneByOne,
    RacyDeleteMessages,
    DeleteValidatesLazily,
    WorksWhenClosed,
    ForgetsDurable,
)
"""Every deliberately broken adapter, each breaking a different rule of the contract."""
