"""``PostgresPersistence``: the seed's column contract on psycopg 3."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncCursor, pq
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb
from psycopg.types.string import ByteaBinaryLoader
from psycopg_pool import AsyncConnectionPool

from chat_persistence import (
    JSON,
    AdapterBase,
    Capability,
    ConflictError,
    ListQuery,
    Message,
    Session,
    StoredParts,
    unstructure_parts,
)
from chat_persistence.storage import no_time_left

from ._connections import Conn, Connections
from ._encoding import UNTRANSLATABLE, Candidate, message_texts, not_storable, param_texts
from ._options import PostgresOptions
from ._pipeline import in_one_transaction
from ._queries import Queries, Statement
from ._resilience import RetryPolicy
from ._rows import (
    RowReader,
    compare_reader,
    messages_of,
    page_of,
    saved_reader,
    session_reader,
    stored_parts_of,
    utc,
)
from ._schema import SchemaReport, inspect_schema, schema_error
from ._single_save import (
    SavedRow,
    SingleSave,
    as_stored,
    batch_records,
    jsonb_text,
    one_params,
    save_cursor,
    utc_or_none,
)
from ._sql import ISOLATION_MARK, OVERFLOW_MARK
from ._tables import Tables
from ._times import TIMESTAMPTZ_OID, ClampedTimestamptzLoader
from ._wire import dump_wire, dumps

logger = logging.getLogger("chat_persistence.postgres")

_T = TypeVar("_T")
_R = TypeVar("_R")
_JSONB_OID = psycopg.adapters.types["jsonb"].oid
BIG_BATCH = 64 * 1024 * 1024
"""A batch whose JSON is longer sends it as one text per message: jsonb holds at
most 256 MB in one value, the batch's array of records."""


def our_cursor(conn: Conn, reader: RowReader[_R], *, clamp_times: bool) -> AsyncCursor[_R]:
    """A binary cursor of our own on ``conn``, reading rows with ``reader``:
    whatever cursor class, row factory or JSON loader the host's connections
    have, our statements run and decode the same way. ``clamp_times``: read
    ``timestamptz`` with ``ClampedTimestamptzLoader`` (never fails; slower than
    psycopg's own loader, so reads of many rows use it only when that one failed)."""
    cur: AsyncCursor[Any] = AsyncCursor(conn, row_factory=reader)
    cur.format = pq.Format.BINARY
    # jsonb values arrive as their bytes, from psycopg's C loader, and the readers
    # decode them (``load_jsonb``): no Python loader call for each value.
    cur.adapters.register_loader(_JSONB_OID, ByteaBinaryLoader)
    if clamp_times:
        cur.adapters.register_loader(TIMESTAMPTZ_OID, ClampedTimestamptzLoader)
    return cur


class PostgresPersistence(AdapterBase):
    """Chat history in PostgreSQL tables the host owns (the seed's column contract).

    ``PostgresPersistence(pool=pool)`` uses a host-owned ``AsyncConnectionPool``
    (open it yourself; the adapter never opens or closes it);
    ``PostgresPersistence(conninfo="postgresql://...")`` owns a pool of its own,
    opened by ``open()`` and closed by ``aclose()``. The keyword arguments are the
    fields of ``PostgresOptions`` (or pass a ``PostgresOptions`` itself).

    Each operation is one round trip on one pooled connection, run in autocommit
    (a save takes an advisory lock on the thread and upserts the whole batch in one
    implicit transaction). No Python lock is held across the pool, so concurrent
    calls run on concurrent connections; saves to one thread serialize on the
    server, saves to different threads do not.

    A pooled connection that died while idle is replaced before use, at no round
    trip. When a connection is lost during an operation, reads and upserts run
    again on a fresh one (``retries``, ``retry_backoff``); ``delete_thread``,
    ``delete_messages`` and a compare-and-set ``save_session`` do not, and raise
    ``StorageUnavailableError``.
    """

    backend_name = "postgres"
    capabilities: frozenset[Capability] = frozenset(
        {Capability.DURABLE, Capability.SCHEMA_VALIDATION}
    )

    def __init__(self, options: PostgresOptions | None = None, /, **kwargs: Any) -> None:
        if options is None:
            options = PostgresOptions.of(kwargs)
        elif kwargs:
            raise TypeError("give a PostgresOptions or keyword arguments, not both")
        super().__init__(sdk_version=options.sdk_version)
        self.options = options
        """The options this adapter was built with."""
        self.tables = Tables.from_mapping(options.tables)
        """The two tables, parsed (schema-qualified or not)."""
        self.retry = RetryPolicy(retries=options.retries, backoff=float(options.retry_backoff))
        """Retries of idempotent operations on a lost connection (see ``Connections.run``)."""
        self._host_pool: AsyncConnectionPool[Any] | None = options.pool
        self._connections = Connections(options, self.retry)
        self._q = Queries(self.tables)
        self._single = SingleSave(self._connections)

    @property
    def pool_timeout(self) -> float:
        """Seconds an operation waits for a pooled connection."""
        return float(self.options.pool_timeout)

    @property
    def distributed(self) -> bool:
        """Whether this adapter runs the statements of a distributed database
        (Citus; see ``PostgresOptions.distributed``): as configured, or as found
        when it opened (False before that, when not configured)."""
        return bool(self._connections.distributed)

    @property
    def prepare_threshold(self) -> int | None:
        """psycopg's ``prepare_threshold`` for our connections (None: never prepare)."""
        return self.options.effective_prepare_threshold

    def __repr__(self) -> str:
        owner = "host pool" if self._host_pool is not None else "own pool"
        state = "open" if self.is_open else "closed"
        return (
            f"<PostgresPersistence messages={self.tables.messages} "
            f"sessions={self.tables.sessions}, {owner}, {state}>"
        )

    # -- lifecycle --------------------------------------------------------------

    @property
    def _pool(self) -> AsyncConnectionPool[Any] | None:
        """The pool in use while open (the host's or our own)."""
        return self._connections.pool

    async def _open(self) -> None:
        await self._connections.open()

    async def _close(self) -> None:
        await self._connections.close()

    async def _run(
        self,
        operation: str,
        work: Callable[[Conn], Awaitable[_T]],
        *,
        retry: bool,
        texts: Callable[[], Iterable[Candidate]],
    ) -> _T:
        """Run ``work`` on a pooled connection; ``texts`` says where a character the
        database cannot store may come from, to name it in the error."""
        try:
            try:
                return await self._connections.run(operation, work, retry=retry)
            except psycopg.errors.InvalidTextRepresentation as err:
                if ISOLATION_MARK not in (err.diag.message_primary or ""):
                    raise
            # The write wrote nothing: its check runs before anything else.
            logger.info(
                "the session's transaction isolation is not read committed; every "
                "operation now runs in a read committed transaction of its own"
            )
            self._connections.read_committed_explicitly = True
            return await self._connections.run(operation, work, retry=retry)
        except UNTRANSLATABLE as err:
            raise not_storable(err, texts()) from None
        except psycopg.Error as err:
            mismatch = schema_error(err, operation)
            if mismatch is None:
                raise
            raise mismatch from err

    async def _fetch(
        self,
        operation: str,
        reader: RowReader[_R],
        query: Statement,
        params: Mapping[str, object],
        *,
        retry: bool,
        write: bool = False,
    ) -> list[_R]:
        """Run ``query`` and read its rows. A write returns few rows: they are read
        with clamped times at once, since it must not run again."""

        async def fetch(conn: Conn) -> list[_R]:
            cur = our_cursor(conn, reader, clamp_times=write)
            await cur.execute(query, params)
            try:
                return await cur.fetchall()
            except psycopg.DataError as err:
                if write or err.sqlstate is not None:  # the server's, not the loader's
                    raise
            # A read met a time Python cannot hold: read it again, clamped.
            cur = our_cursor(conn, reader, clamp_times=True)
            await cur.execute(query, params)
            return await cur.fetchall()

        return await self._run(operation, fetch, retry=retry, texts=lambda: param_texts(params))

    # -- messages ---------------------------------------------------------------

    async def _save_messages(self, thread_id: str, messages: tuple[Message, ...]) -> list[Message]:
        """Upsert the batch in one statement and one transaction, all or nothing.

        A per-thread advisory lock, taken in the same transaction, orders
        concurrent writers to one thread, so store-assigned ``created_at`` values
        never interleave; writers to different threads do not wait for each other
        (see ``SingleSave``). Retried on a lost connection: re-saving the same
        batch is idempotent (a batch that did commit keeps the ``created_at`` it
        was given).
        """
        # Serialized once: sent as jsonb (one message's parts array, or the batch's
        # records), and decoded again for the returned messages, which so share
        # nothing with the caller's.
        single = len(messages) == 1
        locked: Statement | None
        if single:
            wire = dump_wire(unstructure_parts(messages[0].parts))
            params = one_params(thread_id, messages[0], wire.text)
            locked, behind = self._q.save_message_locked, self._q.save_message
        else:
            records = batch_records(messages)
            wire = dump_wire(records)
            params: dict[str, object] = {"thread": thread_id, "batch": jsonb_text(wire.text)}
            locked, behind = self._q.save_messages_locked, self._q.save_messages
            if len(wire.text) > BIG_BATCH:  # characters: at least as many bytes
                params["batch"] = [dumps(r) for r in records]
                params["ids"] = [m.id for m in messages]
                locked, behind = None, self._q.save_big_batch
        if not self._single.use_one_statement():
            locked = None

        async def save_once(conn: Conn, *, clamp_times: bool) -> list[SavedRow]:
            cur = save_cursor(conn, clamp_times=clamp_times)
            return await self._single.run(
                cur, self._q, thread_id, params, locked=locked, behind=behind
            )

        async def save(conn: Conn) -> list[SavedRow]:
            try:
                return await save_once(conn, clamp_times=False)
            except psycopg.DataError as err:
                if err.sqlstate is not None:  # the server's, not the time loader's
                    raise
                # A re-saved message keeps a stored time Python cannot hold: save
                # again (idempotent, as a retry is) and read the times clamped.
                return await save_once(conn, clamp_times=True)

        try:
            rows = await self._run(
                "save_messages", save, retry=True, texts=lambda: message_texts(thread_id, messages)
            )
        except psycopg.errors.InvalidDatetimeFormat as err:
            detail = err.diag.message_primary or ""
            if OVERFLOW_MARK not in detail:
                raise
            raise no_time_left(detail.split(OVERFLOW_MARK, 1)[1].rstrip('"')) from None
        return as_stored(thread_id, messages, dict(rows), wire)

    async def _list_messages(self, thread_id: str, query: ListQuery) -> list[Message]:
        """One query, keyset paging on ``(created_at, message_id)``."""
        statement = self._q.list_messages(
            by_session=query.session_id is not None,
            before=query.before is not None,
            after=query.after is not None,
            newest_first=query.newest_first,
            limited=query.limit is not None,
        )
        params = {
            "thread": thread_id,
            "session": query.session_id,
            "before": query.before,
            "after": query.after,
            "limit": query.limit,
        }
        rows = await self._fetch("list_messages", tuple_row, statement, params, retry=True)
        if not query.has_cursor:
            messages = messages_of(thread_id, rows)
            if query.newest_first:
                messages.reverse()
            return messages
        page = page_of(thread_id, rows)
        if isinstance(page, str):
            raise query.cursor_not_found(thread_id, page)
        return page

    async def _list_stored_parts(self, thread_id: str) -> list[StoredParts]:
        """One SELECT of the whole-thread listing's rows, in its order, three columns,
        no ``Message`` objects. ``parts`` is the ``jsonb`` as the listing decodes it
        (``load_jsonb``), so it always parses: an integer too long for Python's
        decoder comes back as a ``Decimal``; nesting too deep for it, as the JSON
        text, which ``structure_stored_parts`` keeps in an ``UnknownPart`` with a
        ``StoredPartsWarning``, as the listing does."""
        rows = await self._fetch(
            "list_messages", tuple_row, self._q.stored_parts, {"thread": thread_id}, retry=True
        )
        return stored_parts_of(rows)

    async def _get_message(self, thread_id: str, message_id: str) -> Message | None:
        rows = await self._fetch(
            "get_message",
            tuple_row,
            self._q.get_message,
            {"thread": thread_id, "message": message_id},
            retry=True,
        )
        return messages_of(thread_id, rows)[0] if rows else None

    async def _delete_thread(self, thread_id: str) -> None:
        """Two deletes (sessions, messages) in one pipeline and one transaction. Not
        retried on a lost connection: a second delete could also remove what
        another writer saved after the first one committed."""
        params = {"thread": thread_id}

        async def delete(conn: Conn) -> None:
            cur = our_cursor(conn, saved_reader, clamp_times=False)
            deletes = (self._q.delete_thread_sessions, self._q.delete_thread_messages)
            steps = [(cur, statement, params) for statement in deletes]
            await in_one_transaction(conn, steps, explicit=self.distributed)

        await self._run("delete_thread", delete, retry=False, texts=lambda: param_texts(params))

    async def _delete_messages(self, thread_id: str, message_ids: tuple[str, ...]) -> list[Message]:
        """One statement (``DELETE ... RETURNING``, ordered); not retried, as
        ``delete_thread``."""
        rows = await self._fetch(
            "delete_messages",
            tuple_row,
            self._q.delete_messages,
            {"thread": thread_id, "ids": list(message_ids)},
            retry=False,
            write=True,
        )
        return messages_of(thread_id, rows)

    # -- sessions ---------------------------------------------------------------

    async def _save_session(
        self, session: Session, expected_updated_at: datetime | None
    ) -> Session:
        """Upsert on ``session.id`` in one statement; with ``expected_updated_at``, a
        compare-and-set in one statement.

        A plain save is retried on a lost connection (an upsert of the same values;
        a repeat only moves ``updated_at`` on). A compare-and-set is not: had the
        first attempt committed, the repeat would report its own write as a conflict.
        """
        params: dict[str, object] = {
            "id": session.id,
            "thread": session.thread_id,
            "sdk": session.sdk_version,
            "state": _jsonb(session.state),
            "metadata": _jsonb(session.metadata),
            "created": None if session.created_at is None else utc(session.created_at),
            "expected": utc_or_none(expected_updated_at),
        }
        if expected_updated_at is None:
            rows = await self._fetch(
                "save_session",
                session_reader,
                self._q.upsert_session,
                params,
                retry=True,
                write=True,
            )
            return rows[0]
        found = await self._fetch(
            "save_session with expected_updated_at",
            compare_reader,
            self._q.update_session_if,
            params,
            retry=False,
            write=True,
        )
        if found and found[0][0]:
            return found[0][1]
        actual = found[0][1].updated_at if found else None
        raise ConflictError(session.id, expected=expected_updated_at, actual=actual)

    async def _get_session(self, session_id: str) -> Session | None:
        rows = await self._fetch(
            "get_session", session_reader, self._q.get_session, {"id": session_id}, retry=True
        )
        return rows[0] if rows else None

    async def _list_sessions(self, thread_id: str, *, include_archived: bool) -> list[Session]:
        query = self._q.list_sessions if include_archived else self._q.list_live_sessions
        return await self._fetch(
            "list_sessions", session_reader, query, {"thread": thread_id}, retry=True
        )

    async def _archive_session(self, session_id: str, thread_id: str) -> Session:
        """The seed's archive: upsert the row with ``archived_at = now()`` (created
        with this adapter's ``sdk_version`` if missing); an archived session keeps
        its first ``archived_at``. One statement, retried on a lost connection
        (archiving an archived session changes nothing)."""
        params = {"id": session_id, "thread": thread_id, "sdk": self.sdk_version}
        rows = await self._fetch(
            "archive_session",
            session_reader,
            self._q.archive_session,
            params,
            retry=True,
            write=True,
        )
        return rows[0]

    # -- schema -----------------------------------------------------------------

    async def _validate_schema(self) -> None:
        """Fail fast on drift, in one round trip for both tables: raises
        ``SchemaMismatchError`` listing every missing table and column, and
        ``StrictSchemaMismatchError`` for a missing key the upserts need or a
        column type they cannot work with. With ``strict_schema``, any type or
        nullability off the contract too, and logs missing recommended indexes."""
        report = await self.check_schema(strict=self.options.strict_schema)
        if report.missing_indexes:
            logger.warning("%s", report.index_advice())
        report.raise_for_problems()

    async def check_schema(self, *, strict: bool = True) -> SchemaReport:
        """Inspect the tables against the column contract and return what differs,
        without raising (one round trip). ``strict=False`` checks what breaks at run
        time: tables, columns, the keys the upserts need, types that cannot work;
        ``strict=True`` also any other type or nullability and the recommended
        indexes."""
        self._check_open()

        async def inspect(conn: Conn) -> SchemaReport:
            return await inspect_schema(conn, self.tables, strict=strict)

        return await self._run("check_schema", inspect, retry=True, texts=list)


def _jsonb(value: JSON | None) -> Jsonb | None:
    return None if value is None else Jsonb(value, dumps=dumps)
