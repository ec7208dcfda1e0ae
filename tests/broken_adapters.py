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

from broken_base import BrokenMemory
from broken_messages import (
    AcceptsTimesOutsideUtc,
    AliasesCallerObjects,
    DropsInvalidMessages,
    FloatTimes,
    IgnoresArchiveFilter,
    InclusiveAfterCursor,
    KeepsNegativeZero,
    LimitKeepsOldest,
    LimitPastTheEndTruncates,
    MisnamesBadArguments,
    NonAtomicBatch,
    RefusesTheEndsOfTime,
    ResaveMovesToEnd,
    SessionFilterHidesArchived,
    StoredPartsInIdOrder,
    StoredPartsShowArchived,
    StoredPartsUnvalidated,
    StoreTimeIgnoresNewest,
    StoreTimesInThePast,
    TiesById,
    UnknownCursorGivesEmpty,
    VagueCursorError,
    WrapsAroundAtTheEnd,
)
from broken_sessions import (
    ArchiveMovesSession,
    ConflictWithoutDetails,
    DeleteAcrossThreads,
    DeleteKeepsSessions,
    DeleteOneByOne,
    DeleteReturnsAskedOrder,
    DeleteSparesHidden,
    DeleteUnknownRaises,
    DeleteValidatesLazily,
    ForgetsDurable,
    LaxExpectedUpdatedAt,
    ListSessionsShowsArchived,
    MovingLosesOldSiblings,
    NoCompareAndSet,
    RacyCompareAndSet,
    RacyDeleteMessages,
    ReArchiveMovesArchivedAt,
    UpdatedAtFromACoarseClock,
    WorksWhenClosed,
)

BROKEN_ADAPTERS: tuple[type[BrokenMemory], ...] = (
    IgnoresArchiveFilter,
    SessionFilterHidesArchived,
    LimitKeepsOldest,
    LimitPastTheEndTruncates,
    InclusiveAfterCursor,
    UnknownCursorGivesEmpty,
    VagueCursorError,
    TiesById,
    StoredPartsInIdOrder,
    StoredPartsShowArchived,
    StoredPartsUnvalidated,
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
