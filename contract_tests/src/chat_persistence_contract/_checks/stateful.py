"""A Hypothesis stateful test: random sequences of every operation, each read
compared with a small pure reference model of the contract (``_reference``).

The state machine is a module-level class, built for each run by a factory that
binds it to the check's adapter and event loop. It is synchronous and runs in a
worker thread; each operation is sent to the check's own event loop, so the adapter
under test is used on the loop it was opened on.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import ClassVar, Literal, TypeVar, cast

import attrs
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.reporting import with_reporter
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
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
    PersistenceAdapter,
    Session,
    TextPart,
    supports_delete_messages,
)

from .._builders import SDK_VERSION, unchecked
from .._expect import ContractViolation, expect_equal, ids_of, short
from .._table import CheckContext, check
from ._reference import (
    FUTURE,
    MESSAGE_IDS,
    PAST,
    Model,
    Query,
    Spec,
    Stored,
    aware,
    json_strategy,
    later,
    query_strategy,
    spec_strategy,
)

T = TypeVar("T")


class _Stopped(BaseException):
    """The check was cancelled (timed out): end the machine without shrinking."""


@attrs.frozen
class Binding:
    """What one run of the machine works on: the check's context and its event loop."""

    ctx: CheckContext
    loop: asyncio.AbstractEventLoop
    stop: threading.Event

    @property
    def adapter(self) -> PersistenceAdapter:
        return self.ctx.adapter


class ContractMachine(RuleBasedStateMachine):
    """Random operations on two threads and three sessions, checked against Model.

    Built by ``machine_factory``; ``delete_messages`` runs only on adapters that
    implement it."""

    latest: ClassVar[str] = ""
    """Which ids the indices of the latest run stand for (for failure reports)."""

    def __init__(self, binding: Binding) -> None:
        super().__init__()
        self.binding = binding
        self.adapter = binding.adapter
        sdk_version: object = getattr(self.adapter, "sdk_version", None)
        self.sdk_version = sdk_version if isinstance(sdk_version, str) else None
        self.deletes = supports_delete_messages(self.adapter)
        ctx = binding.ctx
        self.threads = [ctx.thread_id(), ctx.thread_id()]
        self.session_ids = [ctx.session_id() for _ in range(3)]
        self.model = Model()
        self.clock = 0
        names = [f"thread={i} is {t}" for i, t in enumerate(self.threads)]
        names += [f"session={i} is {s}" for i, s in enumerate(self.session_ids)]
        type(self).latest = "; ".join(names)

    def run(self, operation: Awaitable[T]) -> T:
        if self.binding.stop.is_set():
            raise _Stopped
        future = asyncio.run_coroutine_threadsafe(_await(operation), self.binding.loop)
        return future.result(self.binding.ctx.settings.timeout)

    def explicit_time(self, when: tuple[str, int] | None) -> datetime | None:
        if when is None:
            return None
        self.clock += 1
        base = PAST if when[0] == "past" else FUTURE
        # Whole milliseconds, each used once: explicit times never tie.
        return base + timedelta(seconds=when[1], milliseconds=self.clock)

    def build(self, spec: Spec) -> Message:
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
        specs=st.lists(spec_strategy, min_size=1, max_size=4, unique_by=lambda s: s[0]),
    )
    def save_messages(self, thread: int, specs: list[Spec]) -> None:
        thread_id = self.threads[thread]
        batch = [self.build(s) for s in specs]
        stored_before = self.model.thread(thread_id)
        newest = self.model.newest(thread_id)
        result = self.run(self.adapter.save_messages(thread_id, batch))
        expect_equal(ids_of(result), ids_of(batch), "save_messages result ids")
        assigned: list[Message] = []
        for sent, back in zip(batch, result, strict=True):
            old = stored_before.get(sent.id)
            created = aware(back.created_at, f"created_at of {sent.id!r}")
            if old is not None:
                expect_equal(created, old.message.created_at, f"kept created_at of {sent.id!r}")
            elif sent.created_at is not None:
                expect_equal(created, sent.created_at, f"explicit created_at of {sent.id!r}")
            else:
                if newest is not None:
                    later(created, newest, f"store-assigned created_at of {sent.id!r}")
                assigned.append(back)
            expect_equal(back, attrs.evolve(sent, created_at=created), f"stored {sent.id!r}")
        for first, second in itertools.pairwise(assigned):
            later(second.created_at, first.created_at, "store-assigned times in a batch")
        rows = self.model.thread(thread_id)
        for back in result:
            old = rows.get(back.id)
            if old is None:
                self.model.saves += 1
                rows[back.id] = Stored(back, self.model.saves)
            else:
                rows[back.id] = Stored(back, old.order)

    @rule(
        thread=st.integers(0, 1),
        spec=spec_strategy,
        problem=st.sampled_from(("repeated id", "NUL in text", "naive time", "NaN")),
    )
    def save_invalid_batch(self, thread: int, spec: Spec, problem: str) -> None:
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
            self.run(self.adapter.save_messages(thread_id, [good, bad]))
        except InvalidMessageError:
            return
        raise ContractViolation(f"a batch with a {problem} was accepted")

    # Hypothesis favours rules with fewer arguments: listing, the richest read,
    # takes its whole query as one argument so it runs most often.
    @rule(query=query_strategy)
    def list_messages(self, query: Query) -> None:
        thread, session, limit, before, after = query
        thread_id = self.threads[thread]
        session_id = None if session is None else self.session_ids[session]
        expected = self.model.list_messages(thread_id, session_id, limit, before, after)
        operation = self.adapter.list_messages(
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
        got = self.run(self.adapter.get_message(thread_id, message_id))
        expect_equal(got, expected, "get_message")

    @rule(thread=st.integers(0, 1), twice=st.booleans())
    def delete_thread(self, thread: int, twice: bool) -> None:
        thread_id = self.threads[thread]
        self.run(self.adapter.delete_thread(thread_id))
        if twice:
            self.run(self.adapter.delete_thread(thread_id))
        self.model.threads.pop(thread_id, None)
        for sid, row in list(self.model.sessions.items()):
            if row.thread_id == thread_id:
                del self.model.sessions[sid]

    @precondition(lambda self: cast(ContractMachine, self).deletes)
    @rule(
        thread=st.integers(0, 1),
        message_ids=st.lists(st.sampled_from((*MESSAGE_IDS, "missing")), max_size=4),
    )
    def delete_messages(self, thread: int, message_ids: list[str]) -> None:
        thread_id = self.threads[thread]
        got = self.run(self.adapter.delete_messages(thread_id, message_ids))
        expected = self.model.delete_messages(thread_id, message_ids)
        expect_equal(got, expected, f"delete_messages({message_ids!r})")

    @rule(
        session=st.integers(0, 2),
        thread=st.integers(0, 1),
        state=json_strategy,
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
        operation = self.adapter.save_session(sent, expected_updated_at=expected_at)
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
            aware(got.created_at, "created_at")
            aware(got.updated_at, "updated_at")
            expect_equal(got.archived_at, None, "archived_at of a new session")
        else:
            expect_equal(got.created_at, previous.created_at, "created_at after an update")
            expect_equal(got.archived_at, previous.archived_at, "archived_at after a save")
            later(got.updated_at, previous.updated_at, "updated_at after a save")
        self.model.sessions[sid] = got

    @rule(session=st.integers(0, 2), thread=st.integers(0, 1))
    def archive_session(self, session: int, thread: int) -> None:
        sid, thread_id = self.session_ids[session], self.threads[thread]
        previous = self.model.sessions.get(sid)
        got = self.run(self.adapter.archive_session(sid, thread_id=thread_id))
        if previous is None:
            when = aware(got.archived_at, "archived_at")
            expect_equal((got.id, got.thread_id), (sid, thread_id), "created session")
            expect_equal((got.created_at, got.updated_at), (when, when), "its times")
            expect_equal((got.state, got.metadata), (None, None), "its state and metadata")
            if self.sdk_version is not None:
                expect_equal(got.sdk_version, self.sdk_version, "its sdk_version")
        elif previous.archived_at is not None:
            expect_equal(got, previous, "archiving an archived session")
        else:
            aware(got.archived_at, "archived_at")
            later(got.updated_at, previous.updated_at, "updated_at after archiving")
            expect_equal(
                attrs.evolve(got, updated_at=None, archived_at=None),
                attrs.evolve(previous, updated_at=None),
                "the archived session's other fields",
            )
        self.model.sessions[sid] = got

    @rule(thread=st.integers(0, 1), include_archived=st.booleans())
    def read_sessions(self, thread: int, include_archived: bool) -> None:
        thread_id = self.threads[thread]
        got = self.run(self.adapter.list_sessions(thread_id, include_archived=include_archived))
        expected = self.model.list_sessions(thread_id, include_archived)
        expect_equal(got, expected, f"list_sessions(include_archived={include_archived})")
        for sid in self.session_ids:
            expect_equal(
                self.run(self.adapter.get_session(sid)), self.model.sessions.get(sid), "get_session"
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
                got = self.run(self.adapter.list_messages(thread_id, limit=limit, after=after))
                expect_equal(got, expected, f"list_messages(limit={limit}, after={after!r})")
            for sid in sorted({m.session_id for m in ordered if m.session_id is not None}):
                expected = self.model.list_messages(thread_id, sid, None, None, None)
                got = self.run(self.adapter.list_messages(thread_id, session_id=sid))
                expect_equal(got, expected, "list_messages(session_id=...)")

    def teardown(self) -> None:
        for thread_id in self.threads:
            self.run(self.adapter.delete_thread(thread_id))


def machine_factory(binding: Binding) -> Callable[[], ContractMachine]:
    """What Hypothesis calls to start each sequence: a machine bound to ``binding``.

    Each run gets a subclass of its own: Hypothesis caches a machine class's rule
    strategies, and what a run that failed left in them changes the sequences the
    next run draws, so one failing adapter would make the next run's sequences
    differ from a run of its own.
    """
    own = type(ContractMachine.__name__, (ContractMachine,), {"__module__": __name__})
    return lambda: own(binding)


async def _await(operation: Awaitable[T]) -> T:
    return await operation


def _run_machine(factory: Callable[[], ContractMachine], config: settings) -> None:
    """Run the machine in this (worker) thread; a failure names the steps that led to it."""
    reported: list[str] = []
    with with_reporter(lambda value: reported.append(str(value))):
        try:
            # Hypothesis takes any zero-argument factory of machines here; its
            # annotation names only the class.
            run_state_machine_as_test(cast(type[RuleBasedStateMachine], factory), settings=config)
        except Exception as err:
            notes: list[str] = getattr(err, "__notes__", [])
            what = (
                str(err) if isinstance(err, ContractViolation) else f"{type(err).__name__}: {err}"
            )
            steps = [line for line in [*notes, *reported] if line.strip()]
            steps.append(f"(in these steps, {ContractMachine.latest})")
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
    factory = machine_factory(Binding(ctx, loop, stop))
    try:
        await asyncio.to_thread(_run_machine, factory, config)
    except asyncio.CancelledError:
        stop.set()
        raise
