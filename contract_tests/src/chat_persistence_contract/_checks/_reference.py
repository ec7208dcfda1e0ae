"""The reference model the stateful check compares every read with, and the
Hypothesis strategies that drive it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import attrs
from hypothesis import strategies as st

from chat_persistence import JSON, DataPart, Message, Part, Session, TextPart, ToolCallPart

from .._expect import ContractViolation

MESSAGE_IDS = ("q", "c", "x", "a", "m", "f")
"""Message ids the machine uses in every thread (few, so re-saves are common)."""
PAST = datetime(2020, 2, 2, tzinfo=UTC)
FUTURE = datetime(2100, 1, 1, tzinfo=UTC)

_text = st.text(alphabet='ab é😀"\\\n', max_size=4)
json_strategy: st.SearchStrategy[JSON] = st.recursive(
    cast(
        st.SearchStrategy[JSON],
        st.none()
        | st.booleans()
        | st.integers(-(10**12), 10**12)
        | st.floats(-1e6, 1e6, allow_nan=False)
        | _text,
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=5,
)
_part: st.SearchStrategy[Part] = st.one_of(
    st.builds(TextPart, _text),
    st.builds(DataPart, json_strategy),
    st.builds(ToolCallPart, st.just("call"), st.just("tool"), json_strategy),
)
# (message id, role, parts, session index or None, explicit time or None)
Spec = tuple[str, str, tuple[Part, ...], int | None, tuple[str, int] | None]
spec_strategy: st.SearchStrategy[Spec] = st.tuples(
    st.sampled_from(MESSAGE_IDS),
    st.sampled_from(("user", "assistant")),
    st.lists(_part, max_size=2).map(tuple),
    st.none() | st.integers(0, 2),
    st.none() | st.tuples(st.sampled_from(("past", "future")), st.integers(0, 30)),
)
_cursor = st.none() | st.sampled_from((*MESSAGE_IDS, "missing"))
# (thread index, session index or None, limit, before, after)
Query = tuple[int, int | None, int | None, str | None, str | None]
query_strategy: st.SearchStrategy[Query] = st.tuples(
    st.integers(0, 1),
    st.none() | st.integers(0, 2),
    st.none() | st.integers(0, 5),
    _cursor,
    _cursor,
)


@attrs.frozen
class Stored:
    message: Message
    order: int


class Model:
    """The contract as plain data: what every read must return."""

    def __init__(self) -> None:
        self.threads: dict[str, dict[str, Stored]] = {}
        self.sessions: dict[str, Session] = {}
        self.saves = 0

    def thread(self, thread_id: str) -> dict[str, Stored]:
        return self.threads.setdefault(thread_id, {})

    def ordered(self, thread_id: str) -> list[Message]:
        rows = sorted(
            self.thread(thread_id).values(),
            key=lambda r: (cast(datetime, r.message.created_at), r.order),
        )
        return [r.message for r in rows]

    def newest(self, thread_id: str) -> datetime | None:
        times = [cast(datetime, r.message.created_at) for r in self.thread(thread_id).values()]
        return max(times, default=None)

    def visible(self, message: Message) -> bool:
        if message.session_id is None:
            return True
        row = self.sessions.get(message.session_id)
        return row is None or row.archived_at is None

    def list_messages(
        self,
        thread_id: str,
        session_id: str | None,
        limit: int | None,
        before: str | None,
        after: str | None,
    ) -> list[Message] | None:
        """The expected listing, or None when a cursor is unknown (NotFoundError)."""
        everything = self.ordered(thread_id)
        position = {m.id: i for i, m in enumerate(everything)}
        if (before is not None and before not in position) or (
            after is not None and after not in position
        ):
            return None
        low = -1 if after is None else position[after]
        high = len(everything) if before is None else position[before]
        chosen = [
            m
            for i, m in enumerate(everything)
            if low < i < high
            and (m.session_id == session_id if session_id is not None else self.visible(m))
        ]
        if limit is None:
            return chosen
        if after is not None:
            return chosen[:limit]
        return chosen[max(len(chosen) - limit, 0) :]

    def delete_messages(self, thread_id: str, message_ids: list[str]) -> list[Message]:
        """Drop those messages; the ones that existed, in listing order."""
        gone = [m for m in self.ordered(thread_id) if m.id in message_ids]
        rows = self.thread(thread_id)
        for message in gone:
            del rows[message.id]
        return gone

    def list_sessions(self, thread_id: str, include_archived: bool) -> list[Session]:
        found = [
            s
            for s in self.sessions.values()
            if s.thread_id == thread_id and (include_archived or s.archived_at is None)
        ]
        return sorted(found, key=lambda s: (cast(datetime, s.created_at), s.id))


def later(later: datetime | None, earlier: datetime | None, what: str) -> None:
    if later is None or earlier is None or not later > earlier:
        raise ContractViolation(f"{what}: expected a time after {earlier!r}, got {later!r}")


def aware(value: datetime | None, what: str) -> datetime:
    if value is None or value.utcoffset() is None:
        raise ContractViolation(f"{what} must be a timezone-aware datetime, got {value!r}")
    return value
