"""Broken adapters that get messages wrong: listing, paging, saving, times, validation."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

from broken_base import LAST, TWENTY_DAYS_US, US, BrokenMemory
from chat_persistence import (
    InvalidMessageError,
    ListQuery,
    Message,
    NotFoundError,
    StoredParts,
    unstructure_parts,
    validate_messages,
)
from chat_persistence_memory._store import (
    MessageRow,
    NewMessage,
    Store,
    to_micros,
)

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


class StoredPartsInIdOrder(BrokenMemory):
    """``list_stored_parts`` gives the rows in message id order."""

    broken_rule = "list_stored_parts gives the rows in listing order"
    caught_by = frozenset({"stored_parts_are_the_listing"})

    async def _list_stored_parts(self, thread_id: str) -> list[StoredParts]:
        return sorted(await super()._list_stored_parts(thread_id), key=lambda row: row[0])


class StoredPartsShowArchived(BrokenMemory):
    """``list_stored_parts`` reads every message of the thread, those of archived
    sessions too, as a fast path that forgot the archive rule might."""

    broken_rule = "list_stored_parts leaves out the messages of archived sessions"
    caught_by = frozenset({"stored_parts_are_the_listing"})

    async def _list_stored_parts(self, thread_id: str) -> list[StoredParts]:
        rows = await super()._list_stored_parts(thread_id)
        for found in await self._list_sessions(thread_id, include_archived=True):
            if found.archived_at is not None:
                hidden = await self._list_messages(thread_id, ListQuery(session_id=found.id))
                rows += [(m.id, m.role, unstructure_parts(m.parts)) for m in hidden]
        return rows


class StoredPartsUnvalidated(BrokenMemory):
    """``list_stored_parts`` never validates the thread id: a bad one reads nothing."""

    broken_rule = "list_stored_parts rejects a bad thread id"
    caught_by = frozenset({"stored_parts_of_nothing_and_bad_ids"})

    async def list_stored_parts(self, thread_id: str) -> list[StoredParts]:
        self._check_open()
        return await self._list_stored_parts(thread_id)


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
