"""One sqlite3 connection on a thread of its own: the event loop never waits on SQLite.

Every database job (a whole operation: its transaction, its statements, its
commit) is one call on the connection's thread, awaited through
``loop.run_in_executor``. sqlite3 releases the GIL while SQLite works, so the loop
keeps running while a job reads, writes or waits for ``fsync`` or another
process's lock. Jobs run one at a time, in the order they were submitted.

Writes start with ``BEGIN IMMEDIATE``: the file's write lock is taken before the
transaction reads anything, so what a save reads (the thread's newest time, a
session's ``updated_at``) cannot change before it commits, in this process or any
other. Waiting for that lock is SQLite's busy handler (``busy_timeout``), which a
lock taken up front always goes through; a deferred transaction that upgrades
from a read could instead fail at once with ``SQLITE_BUSY_SNAPSHOT``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from chat_persistence import SchemaMismatchError, StorageUnavailableError
from chat_persistence.storage import PRIMARY_KEYS

from ._contract import COLUMNS, Tables, ddl_statements, quote_identifier

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]

IN_MEMORY = ":memory:"
MIN_SQLITE = (3, 35, 0)


def storage_error(err: sqlite3.Error, where: str) -> StorageUnavailableError:
    """The error to raise for a driver error (chained by the caller)."""
    return StorageUnavailableError("sqlite", f"{where}: {type(err).__name__}: {err}")


class Worker:
    """The connection and the one thread that uses it."""

    def __init__(
        self, path: str | None, tables: Tables, *, busy_timeout: float, synchronous: str
    ) -> None:
        self.path = IN_MEMORY if path in (None, IN_MEMORY) else path
        self.tables = tables
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def in_memory(self) -> bool:
        """Whether the database is private and in memory."""
        return self.path == IN_MEMORY

    async def start(self, *, create_tables: bool) -> None:
        """Open the connection on a new thread, set it up, create missing tables."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="chat-persistence-sqlite")
        try:
            await self._submit(lambda: self._connect(create_tables), "open")
        except BaseException:
            await self.stop()
            raise

    def _connect(self, create_tables: bool) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StorageUnavailableError(
                "sqlite",
                f"SQLite {sqlite3.sqlite_version} is too old: this backend needs "
                f"{'.'.join(map(str, MIN_SQLITE))} or later (RETURNING, json_each)",
            )
        if not self.in_memory:
            self._check_path()
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,  # we issue BEGIN and COMMIT ourselves
            cached_statements=64,
        )
        try:
            if not self.in_memory:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if mode is None or str(mode[0]).lower() != "wal":
                    raise sqlite3.OperationalError(f"could not switch to WAL mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
            if create_tables:
                write(conn, lambda c: _create_tables(c, self.tables))
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _check_path(self) -> None:
        # sqlite3 would say only "unable to open database file".
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise StorageUnavailableError(
                "sqlite",
                f"the folder of the database file does not exist: {folder!r} "
                "(create it first; no file was created)",
            )
        if os.path.isdir(self.path):
            raise StorageUnavailableError(
                "sqlite", f"the database path is a folder, not a file: {self.path!r}"
            )

    async def run(self, job: Job[T], where: str) -> T:
        """Run ``job`` with the connection on its thread; a driver error becomes
        ``StorageUnavailableError``, or ``SchemaMismatchError`` when the file lacks
        a table or column of the contract."""
        # Taken now: a job queued before stop() still runs on the connection,
        # which stop() closes only after it.
        conn = self._conn
        assert conn is not None, "the worker is not started"
        return await self._submit(lambda: job(conn), where)

    async def _submit(self, call: Callable[[], T], where: str) -> T:
        executor = self._executor
        assert executor is not None, "the worker is not started"
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, call)
        except sqlite3.Error as err:
            if _is_schema_error(err) and self._conn is not None:
                conn = self._conn
                missing = await loop.run_in_executor(
                    executor, lambda: schema_mismatch(conn, self.tables)
                )
                if missing is not None:
                    raise missing from err
            raise storage_error(err, where) from err

    async def stop(self) -> None:
        """Close the connection and end its thread."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        executor.shutdown(wait=False)


def _is_schema_error(err: sqlite3.Error) -> bool:
    text = str(err)
    return text.startswith(("no such table", "no such column", "table ", "ON CONFLICT clause"))


def write(conn: sqlite3.Connection, job: Job[T]) -> T:
    """Run ``job`` in a write transaction holding the file's write lock from the start."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = job(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def read(conn: sqlite3.Connection, job: Job[T]) -> T:
    """Run ``job`` in a read transaction: one snapshot for all its statements."""
    conn.execute("BEGIN")
    try:
        return job(conn)
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def _create_tables(conn: sqlite3.Connection, tables: Tables) -> None:
    for statement in ddl_statements(tables, if_not_exists=True):
        conn.execute(statement)


def schema_mismatch(conn: sqlite3.Connection, tables: Tables) -> SchemaMismatchError | None:
    """What the file lacks of the column contract, or None when nothing is missing:
    tables, columns, the key upserts need, and the rowid that orders ties."""
    missing_tables: list[str] = []
    missing_columns: dict[str, list[str]] = {}
    other: list[str] = []
    for role, columns in COLUMNS.items():
        name = tables.role(role)
        rows = conn.execute(f"PRAGMA table_xinfo({quote_identifier(name)})").fetchall()
        if not rows:
            missing_tables.append(name)
            continue
        present = {str(row[1]) for row in rows}
        lacking = [c.name for c in columns if c.name not in present]
        if lacking:
            missing_columns[name] = lacking
            continue
        key = PRIMARY_KEYS[role]
        if not _has_unique_index(conn, name, key):
            other.append(f"table {name} has no primary key or unique index on ({', '.join(key)})")
        if role == "messages" and not _has_rowid(conn, name):
            other.append(f"table {name} is WITHOUT ROWID: its rowid keeps ties in save order")
    if missing_tables or missing_columns or other:
        return SchemaMismatchError(missing_tables, missing_columns, other_problems=other)
    return None


def _has_unique_index(conn: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> bool:
    for index in conn.execute(f"PRAGMA index_list({quote_identifier(table)})").fetchall():
        # (seq, name, unique, origin, partial)
        if not index[2] or index[4]:
            continue
        info = conn.execute(f"PRAGMA index_info({quote_identifier(str(index[1]))})").fetchall()
        if sorted(str(r[2]) for r in info) == sorted(columns):
            return True
    return False


def _has_rowid(conn: sqlite3.Connection, table: str) -> bool:
    try:
        conn.execute(f"SELECT rowid FROM {quote_identifier(table)} LIMIT 0")
    except sqlite3.OperationalError:
        return False
    return True
