"""A Hypothesis stateful test: random sequences of every operation, each read
compared with a small pure reference model of the contract.

The state machine is synchronous and runs in a worker thread; each operation is
sent to the check's own event loop, so the adapter under test is used on the loop
it was opened on.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal, TypeVar, cast

import attrs
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.reporting import with_reporter
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from chat_persistence import (
    JSON,
    ConflictError,
    DataPart,
    InvalidMessageError,
    Message,
    NotFoundError,
    Part,
    PersistenceAdapter,
    Session,
    TextPart,
    ToolCallPart,
)

from .._builders import SDK_VERSION, unchecked
from .._expect import ContractViolation, expect_equal, ids_of, short
from .._table import CheckContext, check

T = TypeVar("T")

MESSAGE_IDS = ("q", "c", "x", "a", "m", "f")
"""Message ids the machine uses in every thread (few, so re-saves are common)."""
PAST = datetime(2020, 2, 2, tzinfo=UTC)
FUTURE = datetime(2100, 1, 1, tzinfo=UTC)

_text = st.text(alphabet='ab é😀"\\\n', max_size=4)
_json: st.SearchStrategy[JSON] = st.recursive(
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
    st.builds(DataPart, _json),
    st.builds(ToolCallPart, st.just("call"), st.just("tool"), _json),
)
# (message id, role, parts, session index or None, explicit time or None)
_Spec = tuple[str, str, tuple[Part, ...], int | None, tuple[str, int] | None]
_spec: st.SearchStrategy[_Spec] = st.tuples(
    st.sampled_from(MESSAGE_IDS),
    st.sampled_from(("user", "assistant")),
    st.lists(_part, max_size=2).map(tuple),
    st.none() | st.integers(0, 2),
    st.none() | st.tuples(st.sampled_from(("past", "future")), st.integers(0, 30)),
)
_cursor = st.none() | st.sampled_from((*MESSAGE_IDS, "missing"))
# (thread index, session index or None, limit, before, after)
_Query = tuple[int, int | None, int | None, str | None, str | None]
_query: st.SearchStrategy[_Query] = st.tuples(
    st.integers(0, 1),
    st.none() | st.integers(0, 2),
    st.none() | st.integers(0, 5),
    _cursor,
    _cursor,
)


class _Stopped(BaseException):
    """The check was cancelled (timed out): end the machine without shrinking."""


@attrs.frozen
class _Stored:
    message: Message
    order: int


class Model:
    """The contract as plain data: what every read must return."""

    def __init__(self) -> None:
        self.threads: dict[str, dict[str, _Stored]] = {}
        self.sessions: dict[str, Session] = {}
        self.saves = 0

    def thread(self, thread_id: str) -> dict[str, _Stored]:
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

    def list_sessions(self, thread_id: str, include_archived: bool) -> list[Session]:
        found = [
            s
            for s in self.sessions.values()
            if s.thread_id == thread_id and (include_archived or s.archived_at is None)
        ]
        return sorted(found, key=lambda s: (cast(datetime, s.created_at), s.id))


def _later(later: datetime | None, earlier: datetime | None, what: str) -> None:
    if later is None or earlier is None or not later > earlier:
        raise ContractViolation(f"{what}: expected a time after {earlier!r}, got {later!r}")


def _aware(value: datetime | None, what: str) -> datetime:
    if value is None or value.utcoffset() is None:
        raise ContractViolation(f"{what} must be a timezone-aware datetime, got {value!r}")
    return value


def machine_for(
    ctx: CheckContext, loop: asyncio.AbstractEventLoop, stop: threading.Event
) -> type[RuleBasedStateMachine]:
    """A state machine class bound to the check's adapter and event loop."""
    adapter: PersistenceAdapter = ctx.adapter
    sdk_version: object = getattr(adapter, "sdk_version", None)
    timeout = ctx.settings.timeout

    class ContractMachine(RuleBasedStateMachine):
        """Random operations on two threads and three sessions, checked against Model."""

        latest: ClassVar[str] = ""
        """Which ids the indices of the latest run stand for (for failure reports)."""

        def __init__(self) -> None:
            super().__init__()
            self.threads = [ctx.thread_id(), ctx.thread_id()]
            self.session_ids = [ctx.session_id() for _ in range(3)]
            self.model = Model()
            self.clock = 0
            names = [f"thread={i} is {t}" for i, t in enumerate(self.threads)]
            names += [f"session={i} is {s}" for i, s in enumerate(self.session_ids)]
            type(self).latest = "; ".join(names)

        def run(self, operation: Awaitable[T]) -> T:
            if stop.is_set():
                raise _Stopped
            future = asyncio.run_coroutine_threadsafe(_await(operation), loop)
            return future.result(timeout)

        def explicit_time(self, when: tuple[str, int] | None) -> datetime | None:
            if when is None:
                return None
            self.clock += 1
            base = PAST if when[0] == "past" else FUTURE
            # Whole milliseconds, each used once: explicit times never tie.
            return base + timedelta(seconds=when[1], milliseconds=self.clock)

        def build(self, spec: _Spec) -> Message:
            message_id, role, parts, session, when = spec
            return Message(
                id=message_id,
                role=role,
                parts=parts,
                session_id=None if session is None else self.session_ids[session],
                created_at=self.explicit_time(when),
            )

        @rule(
            thread=st.integers(0, 1),
            specs=st.lists(_spec, min_size=1, max_size=4, unique_by=lambda s: s[0]),
        )
        def save_messages(self, thread: int, specs: list[_Spec]) -> None:
            thread_id = self.threads[thread]
            batch = [self.build(s) for s in specs]
            stored_before = self.model.thread(thread_id)
            newest = self.model.newest(thread_id)
            result = self.run(adapter.save_messages(thread_id, batch))
            expect_equal(ids_of(result), ids_of(batch), "save_messages result ids")
            assigned: list[Message] = []
            for sent, back in zip(batch, result, strict=True):
                old = stored_before.get(sent.id)
                created = _aware(back.created_at, f"created_at of {sent.id!r}")
                if old is not None:
                    expect_equal(created, old.message.created_at, f"kept created_at of {sent.id!r}")
                elif sent.created_at is not None:
                    expect_equal(created, sent.created_at, f"explicit created_at of {sent.id!r}")
                else:
                    if newest is not None:
                        _later(created, newest, f"store-assigned created_at of {sent.id!r}")
                    assigned.append(back)
                expect_equal(back, attrs.evolve(sent, created_at=created), f"stored {sent.id!r}")
            for first, second in itertools.pairwise(assigned):
                _later(second.created_at, first.created_at, "store-assigned times in a batch")
            rows = self.model.thread(thread_id)
            for back in result:
                old = rows.get(back.id)
                if old is None:
                    self.model.saves += 1
                    rows[back.id] = _Stored(back, self.model.saves)
                else:
                    rows[back.id] = _Stored(back, old.order)

        @rule(
            thread=st.integers(0, 1),
            spec=_spec,
            problem=st.sampled_from(("repeated id", "NUL in text", "naive time", "NaN")),
        )
        def save_invalid_batch(self, thread: int, spec: _Spec, problem: str) -> None:
            thread_id = self.threads[thread]
            good = self.build(spec)
            bad: Message
            if problem == "repeated id":
                bad = attrs.evolve(good, role="assistant")
            elif problem == "NUL in text":
                bad = unchecked(lambda: Message("zz", "user", (TextPart("a\x00"),)))
            elif problem == "naive time":
                naive = datetime(2024, 1, 1)
                bad = unchecked(lambda: Message("zz", "user", (), created_at=naive))
            else:
                bad = unchecked(lambda: Message("zz", "user", (DataPart(float("nan")),)))
            try:
                self.run(adapter.save_messages(thread_id, [good, bad]))
            except InvalidMessageError:
                return
            raise ContractViolation(f"a batch with a {problem} was accepted")

        # Hypothesis favours rules with fewer arguments: listing, the richest read,
        # takes its whole query as one argument so it runs most often.
        @rule(query=_query)
        def list_messages(self, query: _Query) -> None:
            thread, session, limit, before, after = query
            thread_id = self.threads[thread]
            session_id = None if session is None else self.session_ids[session]
            expected = self.model.list_messages(thread_id, session_id, limit, before, after)
            operation = adapter.list_messages(
                thread_id, session_id=session_id, limit=limit, before=before, after=after
            )
            if expected is None:
                try:
                    got = self.run(operation)
                except NotFoundError:
                    return
                raise ContractViolation(f"an unknown cursor gave {short(ids_of(got))}")
            expect_equal(self.run(operation), expected, "list_messages")

        @rule(thread=st.integers(0, 1), message_id=st.sampled_from(MESSAGE_IDS))
        def get_message(self, thread: int, message_id: str) -> None:
            thread_id = self.threads[thread]
            row = self.model.thread(thread_id).get(message_id)
            expected = None if row is None else row.message
            got = self.run(adapter.get_message(thread_id, message_id))
            expect_equal(got, expected, "get_message")

        @rule(thread=st.integers(0, 1), twice=st.booleans())
        def delete_thread(self, thread: int, twice: bool) -> None:
            thread_id = self.threads[thread]
            self.run(adapter.delete_thread(thread_id))
            if twice:
                self.run(adapter.delete_thread(thread_id))
            self.model.threads.pop(thread_id, None)
            for sid, row in list(self.model.sessions.items()):
                if row.thread_id == thread_id:
                    del self.model.sessions[sid]

        @rule(
            session=st.integers(0, 2),
            thread=st.integers(0, 1),
            state=_json,
            created=st.none() | st.integers(0, 3),
            cas=st.sampled_from(("none", "current", "stale")),
        )
        def save_session(
            self,
            session: int,
            thread: int,
            state: JSON,
            created: int | None,
            cas: Literal["none", "current", "stale"],
        ) -> None:
            sid = self.session_ids[session]
            previous = self.model.sessions.get(sid)
            sent = Session(
                id=sid,
                thread_id=self.threads[thread],
                sdk_version=SDK_VERSION,
                state=state,
                metadata={"n": created},
                created_at=None if created is None else PAST + timedelta(days=created),
            )
            expected_at: datetime | None = None
            if cas != "none":
                known = previous.updated_at if previous is not None else None
                expected_at = known or PAST
                if cas == "stale":
                    expected_at -= timedelta(microseconds=1)
            operation = adapter.save_session(sent, expected_updated_at=expected_at)
            if expected_at is not None and (previous is None or cas == "stale"):
                try:
                    got = self.run(operation)
                except ConflictError:
                    return
                raise ContractViolation(f"a stale compare-and-set was accepted: {short(got)}")
            got = self.run(operation)
            for name in ("id", "thread_id", "sdk_version", "state", "metadata"):
                expect_equal(getattr(got, name), getattr(sent, name), f"saved session {name}")
            if previous is None:
                if sent.created_at is not None:
                    expect_equal(got.created_at, sent.created_at, "caller's created_at")
                _aware(got.created_at, "created_at")
                _aware(got.updated_at, "updated_at")
                expect_equal(got.archived_at, None, "archived_at of a new session")
            else:
                expect_equal(got.created_at, previous.created_at, "created_at after an update")
                expect_equal(got.archived_at, previous.archived_at, "archived_at after a save")
                _later(got.updated_at, previous.updated_at, "updated_at after a save")
            self.model.sessions[sid] = got

        @rule(session=st.integers(0, 2), thread=st.integers(0, 1))
        def archive_session(self, session: int, thread: int) -> None:
            sid, thread_id = self.session_ids[session], self.threads[thread]
            previous = self.model.sessions.get(sid)
            got = self.run(adapter.archive_session(sid, thread_id=thread_id))
            if previous is None:
                when = _aware(got.archived_at, "archived_at")
                expect_equal((got.id, got.thread_id), (sid, thread_id), "created session")
                expect_equal((got.created_at, got.updated_at), (when, when), "its times")
                expect_equal((got.state, got.metadata), (None, None), "its state and metadata")
                if isinstance(sdk_version, str):
                    expect_equal(got.sdk_version, sdk_version, "its sdk_version")
            elif previous.archived_at is not None:
                expect_equal(got, previous, "archiving an archived session")
            else:
                _aware(got.archived_at, "archived_at")
                _later(got.updated_at, previous.updated_at, "updated_at after archiving")
                expect_equal(
                    attrs.evolve(got, updated_at=None, archived_at=None),
                    attrs.evolve(previous, updated_at=None),
                    "the archived session's other fields",
                )
            self.model.sessions[sid] = got

        @rule(thread=st.integers(0, 1), include_archived=st.booleans())
        def read_sessions(self, thread: int, include_archived: bool) -> None:
            thread_id = self.threads[thread]
            got = self.run(adapter.list_sessions(thread_id, include_archived=include_archived))
            expected = self.model.list_sessions(thread_id, include_archived)
            expect_equal(got, expected, f"list_sessions(include_archived={include_archived})")
            for sid in self.session_ids:
                expect_equal(
                    self.run(adapter.get_session(sid)), self.model.sessions.get(sid), "get_session"
                )

        @invariant()
        def listings_match(self) -> None:
            for thread_id in self.threads:
                ordered = self.model.ordered(thread_id)
                queries: list[tuple[int | None, str | None]] = [(None, None), (2, None), (5, None)]
                if len(ordered) > 1:
                    queries.append((2, ordered[1].id))
                for limit, after in queries:
                    expected = self.model.list_messages(thread_id, None, limit, None, after)
                    got = self.run(adapter.list_messages(thread_id, limit=limit, after=after))
                    expect_equal(got, expected, f"list_messages(limit={limit}, after={after!r})")
                for sid in sorted({m.session_id for m in ordered if m.session_id is not None}):
                    expected = self.model.list_messages(thread_id, sid, None, None, None)
                    got = self.run(adapter.list_messages(thread_id, session_id=sid))
                    expect_equal(got, expected, "list_messages(session_id=...)")

        def teardown(self) -> None:
            for thread_id in self.threads:
                self.run(adapter.delete_thread(thread_id))

    return ContractMachine


async def _await(operation: Awaitable[T]) -> T:
    return await operation


def _run_machine(machine: type[RuleBasedStateMachine], config: settings) -> None:
    """Run the machine in this (worker) thread; a failure names the steps that led to it."""
    reported: list[str] = []
    with with_reporter(lambda value: reported.append(str(value))):
        try:
            run_state_machine_as_test(machine, settings=config)
        except Exception as err:
            notes: list[str] = getattr(err, "__notes__", [])
            what = (
                str(err) if isinstance(err, ContractViolation) else f"{type(err).__name__}: {err}"
            )
            steps = [line for line in [*notes, *reported] if line.strip()]
            steps.append(f"(in these steps, {getattr(machine, 'latest', '')})")
            raise ContractViolation("\n".join([what, *steps])) from err


@check(stateful=True)
async def stateful_random_operations(ctx: CheckContext) -> None:
    """Random sequences of every operation (saves with re-saves, explicit and store
    times, invalid batches, listings with every filter and cursor, deletes, session
    saves with compare-and-set, archives) agree with a reference model at every read.
    """
    shrink = ctx.settings.stateful_shrink
    config = settings(
        max_examples=ctx.settings.stateful_examples,
        stateful_step_count=ctx.settings.stateful_steps,
        deadline=None,
        database=None,
        derandomize=True,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=cast(list[HealthCheck], list(HealthCheck)),
        phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if shrink else [])],
    )
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    machine = machine_for(ctx, loop, stop)
    try:
        await asyncio.to_thread(_run_machine, machine, config)
    except asyncio.CancelledError:
        stop.set()
        raise
