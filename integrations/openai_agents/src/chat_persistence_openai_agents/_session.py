"""``ChatPersistenceSession``: the OpenAI Agents SDK's ``Session`` over any adapter."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from collections import ChainMap
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from agents.memory.session_settings import (
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)

from chat_persistence import (
    AdapterBase,
    Capability,
    InvalidArgumentError,
    InvalidMessageError,
    Message,
    NotFoundError,
    OperationNotSupportedError,
    PersistenceAdapter,
    PersistenceError,
    ToolCallPart,
    create_adapter,
    stored_message,
    supports_delete_messages,
    supports_stored_parts,
    validate_id,
    validate_messages,
)

from ._decode import decode, decode_rows, plain_text
from ._encode import encode, encode_all
from ._home import on_home, on_home_sync

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

T = TypeVar("T")

_NEEDED = ("open", "aclose", "save_messages", "list_messages", "delete_thread")
"""What the session calls on every adapter (``pop_item`` also needs ``delete_messages``)."""
_SCAN_PAGE = 200
"""Messages read per page when looking back through a thread."""


class SessionClosedError(PersistenceError, RuntimeError):
    """An operation was called on a ``ChatPersistenceSession`` after ``close()``."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(
            f"ChatPersistenceSession {session_id!r} is closed: make a new one to go on"
        )


class ChatPersistenceSession:
    """An Agents SDK ``Session`` whose history lives in a chat-persistence thread.

    The SDK session id is the thread id; each item is one ``Message`` that other
    runtimes reading the thread understand, and reads back JSON-equal to what was
    added. ``ChatPersistenceSession(session_id, adapter)`` uses an adapter the host
    opens and closes, called on the caller's event loop. ``from_url`` makes (and
    owns) one, opened on a loop of its own, so the session works from any loop or
    thread (``Runner.run_sync``, ``asyncio.run`` per call); an adapter declaring
    ``Capability.ANY_LOOP`` (memory, SQLite) is then called on the caller's loop,
    any other stays on that loop.
    """

    session_id: str
    """The SDK session id, which is the thread id."""
    session_settings: SessionSettings | None
    """The SDK's settings; ``limit`` is the default of ``get_items``."""

    def __init__(
        self,
        session_id: str,
        adapter: PersistenceAdapter,
        *,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
    ) -> None:
        validate_id("session_id", session_id)
        missing = [name for name in _NEEDED if not callable(getattr(adapter, name, None))]
        if missing:
            # The type only: a URL passed by mistake may hold a password.
            raise InvalidArgumentError(
                "adapter",
                type(adapter).__name__,
                f"must be a PersistenceAdapter (it has no {', '.join(missing)});"
                " for a URL use ChatPersistenceSession.from_url",
            )
        self.session_id = session_id
        self.session_settings = (
            SessionSettings()
            if session_settings is None
            else coerce_session_settings(cast(Any, session_settings))
        )
        self._adapter = adapter
        self._owned = False
        self._closed = False
        self._ready = False
        self._direct = False
        self._opening: asyncio.Future[None] | None = None
        self._lock = threading.Lock()
        self._tool_names: dict[str, str] = {}

    @classmethod
    def from_url(
        cls,
        session_id: str,
        url: str | None = None,
        *,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
    ) -> Self:
        """A session owning an adapter made by ``create_adapter(url)`` (``None``: from
        ``CHAT_PERSISTENCE_URL``). No I/O until first use; ``aclose()`` or ``close()``
        releases the adapter."""
        session = cls(session_id, create_adapter(url), session_settings=session_settings)
        session._owned = True
        return session

    @property
    def adapter(self) -> PersistenceAdapter:
        """The adapter holding this session's thread."""
        return self._adapter

    def __repr__(self) -> str:
        owner = "owned" if self._owned else "host's"
        state = "closed" if self._closed else "open"
        return f"<ChatPersistenceSession {self.session_id!r} on {owner} {self._adapter!r}, {state}>"

    # -- the SDK's Session protocol -------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The newest ``limit`` items (default ``session_settings.limit``; ``None`` or
        a negative limit: all), oldest first."""
        wanted = resolve_session_limit(limit, self.session_settings)
        items = await self._run(lambda adapter: self._get_items(adapter, wanted))
        return cast("list[TResponseInputItem]", items)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` atomically, one message each, in order. An item no store
        keeps (a NUL character, NaN) raises ``InvalidMessageError`` naming it, and
        nothing is written."""
        if self._closed:
            raise SessionClosedError(self.session_id)
        if items:
            found = list(cast(list[object], items))
            await _outliving_cancellation(
                self._run(lambda adapter: self._add_items(adapter, found))
            )

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove the newest item and return it (``None`` when there is none). Concurrent
        pops never return one item twice."""
        item = await _outliving_cancellation(self._run(self._pop_item))
        return cast("TResponseInputItem | None", item)

    async def clear_session(self) -> None:
        """Delete the thread: its messages and sessions."""
        await _outliving_cancellation(
            self._run(lambda adapter: adapter.delete_thread(self.session_id))
        )
        self._tool_names.clear()

    # -- the operations, on the adapter's loop ----------------------------------------

    async def _get_items(
        self, adapter: PersistenceAdapter, wanted: int | None
    ) -> list[dict[str, Any]]:
        if wanted == 0:
            return []
        if wanted is None or wanted < 0:
            if supports_stored_parts(adapter):
                return self._decode_rows(await adapter.list_stored_parts(self.session_id))
            return self._decode(await adapter.list_messages(self.session_id))
        return await self._newest(adapter, wanted)

    async def _add_items(self, adapter: PersistenceAdapter, items: list[object]) -> None:
        names = ChainMap(self._batch_tool_names(items), self._tool_names)
        missing = _output_call_ids(items) - names.keys()
        if missing:
            names.maps.insert(0, await self._lookup_tool_names(adapter, missing))
        messages = encode_all(items, names)
        try:
            if not _validates(adapter):
                validate_messages(self.session_id, messages)
            await adapter.save_messages(self.session_id, messages)
        except (InvalidMessageError, TypeError):
            # Refused before anything was written: find the item to name.
            for i, item in enumerate(items):
                encode(i, item, names)
            raise
        self._remember(messages)

    async def _pop_item(self, adapter: PersistenceAdapter) -> dict[str, Any] | None:
        if not supports_delete_messages(adapter):
            raise OperationNotSupportedError(type(adapter).__name__, "delete_messages")
        while True:
            newest = await self._newest_with_items(adapter)
            if newest is None:
                return None
            taken = await adapter.delete_messages(self.session_id, [newest.id])
            if not taken:
                continue  # another pop took it first: look again
            items = decode(taken[0])
            if len(items) > 1:
                # Another runtime's message that stands for several items: the rest stay.
                rest = [encode(i, item, {}) for i, item in enumerate(items[:-1])]
                await adapter.save_messages(self.session_id, rest)
            return items[-1]

    # -- lifecycle --------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the session; an owned adapter is closed too. Idempotent."""
        self._closed = True
        if self._take_ready():
            await on_home(self._adapter.aclose())

    def close(self, timeout: float | None = None) -> None:
        """Close the session from synchronous code (the SDK's ``close()``); an owned
        adapter is closed too, before this returns (waiting at most ``timeout``
        seconds). Idempotent. Owned adapters still open at exit are closed then."""
        self._closed = True
        if self._take_ready():
            on_home_sync(self._adapter.aclose(), timeout)

    async def __aenter__(self) -> Self:
        await self._run(_nothing)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- helpers ----------------------------------------------------------------------

    def _take_ready(self) -> bool:
        """Whether an owned adapter was opened (and so must be closed), exactly once."""
        with self._lock:
            opened = self._owned and self._ready
            self._ready = self._direct = False
            return opened

    async def _run(self, operation: Callable[[PersistenceAdapter], Awaitable[T]]) -> T:
        """Run ``operation``: on the caller's loop with the host's adapter; on the home
        loop with an owned one, opened there on first use, unless it declares
        ``Capability.ANY_LOOP`` (then, once open, on the caller's loop too)."""
        if self._closed:
            raise SessionClosedError(self.session_id)
        if not self._owned or self._direct:
            return await operation(self._adapter)
        return await on_home(self._on_home(operation))

    async def _on_home(self, operation: Callable[[PersistenceAdapter], Awaitable[T]]) -> T:
        if not self._ready:
            if self._opening is None:  # one loop, so no race between check and set
                self._opening = asyncio.ensure_future(self._adapter.open())
            opening = self._opening
            try:
                await asyncio.shield(opening)
            except BaseException:
                if opening.done() and self._opening is opening:
                    self._opening = None  # let the next call try again
                raise
            if self._closed:
                raise SessionClosedError(self.session_id)
            with self._lock:
                self._ready = True
                # Opened on the home loop, but free of it: later calls skip the hop.
                self._direct = Capability.ANY_LOOP in getattr(self._adapter, "capabilities", ())
            _open_owned.add(self)
        return await operation(self._adapter)

    def _decode(self, messages: Iterable[Message]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for message in messages:
            plain = plain_text(message)
            if plain is not None:  # the commonest item, the fast way
                items.append(plain)
            else:
                self._decode_other(message, items)
        return items

    def _decode_rows(self, rows: Iterable[tuple[str, str, object]]) -> list[dict[str, Any]]:
        """``_decode`` of ``list_stored_parts`` rows."""
        return decode_rows(rows, self._decode_stored)

    def _decode_stored(self, message_id: str, role: str, parts: object) -> list[dict[str, Any]]:
        message = stored_message(
            thread_id=self.session_id,
            message_id=message_id,
            role=role,
            session_id=None,  # neither is needed for the items
            created_at=None,
            parts_json=parts,
        )
        items: list[dict[str, Any]] = []
        self._decode_other(message, items)
        return items

    def _decode_other(self, message: Message, items: list[dict[str, Any]]) -> None:
        for item in decode(message):
            items.append(item)
            if item.get("type") == "function_call":
                call_id, name = item.get("call_id"), item.get("name")
                if isinstance(call_id, str) and isinstance(name, str):
                    self._tool_names[call_id] = name

    async def _newest(self, adapter: PersistenceAdapter, wanted: int) -> list[dict[str, Any]]:
        """The newest ``wanted`` items: one page when every message is one item."""
        items: list[dict[str, Any]] = []
        before: str | None = None
        while len(items) < wanted:
            page_size = wanted - len(items)
            try:
                page = await adapter.list_messages(self.session_id, limit=page_size, before=before)
            except NotFoundError:  # the cursor was deleted meanwhile: read again
                items, before = [], None
                continue
            items = self._decode(page) + items
            if len(page) < page_size:
                break
            before = page[0].id
        return items[-wanted:]

    async def _newest_with_items(self, adapter: PersistenceAdapter) -> Message | None:
        """The newest message that stands for at least one item."""
        before: str | None = None
        while True:
            page = await adapter.list_messages(self.session_id, limit=1, before=before)
            if not page:
                return None
            if decode(page[0]):
                return page[0]
            before = page[0].id

    def _batch_tool_names(self, items: Sequence[object]) -> dict[str, str]:
        names: dict[str, str] = {}
        for item in items:
            if isinstance(item, dict) and item.get("type") == "function_call":
                call = cast(dict[str, Any], item)
                if isinstance(call.get("call_id"), str) and isinstance(call.get("name"), str):
                    names[call["call_id"]] = call["name"]
        return names

    async def _lookup_tool_names(
        self, adapter: PersistenceAdapter, call_ids: set[str]
    ) -> dict[str, str]:
        """Tool names of the calls in the thread that ``call_ids`` answer, newest first."""
        found: dict[str, str] = {}
        before: str | None = None
        while len(found) < len(call_ids):
            page = await adapter.list_messages(self.session_id, limit=_SCAN_PAGE, before=before)
            for message in reversed(page):
                for part in message.parts:
                    if isinstance(part, ToolCallPart) and part.tool_call_id in call_ids:
                        found.setdefault(part.tool_call_id, part.tool_name)
            if len(page) < _SCAN_PAGE:
                break
            before = page[0].id
        return found

    def _remember(self, messages: Iterable[Message]) -> None:
        for message in messages:
            for part in message.parts:
                if isinstance(part, ToolCallPart):
                    self._tool_names[part.tool_call_id] = part.tool_name


_open_owned: weakref.WeakSet[ChatPersistenceSession] = weakref.WeakSet()
"""Sessions whose owned adapter is open: closed at exit if the host did not."""


@atexit.register
def _close_owned_at_exit() -> None:
    for session in list(_open_owned):
        # Best effort at exit: a store gone by now has nothing left to release.
        with contextlib.suppress(Exception):
            session.close(timeout=5)


async def _outliving_cancellation(write: Coroutine[Any, Any, T]) -> T:
    """Await ``write`` to its end even when the caller is cancelled meanwhile, then let
    the cancellation through: a cancelled write has happened, or failed, never half
    and never unknown (as with the SDK's own sessions)."""
    task = asyncio.ensure_future(write)
    interrupted = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            interrupted = interrupted or not task.done()
        except BaseException:
            break  # the write's own failure, raised by ``task.result()`` below
    if interrupted:
        if not task.cancelled():
            task.exception()  # its outcome is known; the caller asked to stop
        raise asyncio.CancelledError
    return task.result()


async def _nothing(adapter: PersistenceAdapter) -> None:
    """The operation of ``async with session:``: only the opening."""


def _validates(adapter: PersistenceAdapter) -> bool:
    """Whether ``adapter.save_messages`` is ``AdapterBase``'s, which runs every
    validator on the batch before it writes anything."""
    return isinstance(adapter, AdapterBase) and (
        type(adapter).save_messages is AdapterBase.save_messages
    )


def _output_call_ids(items: Iterable[object]) -> set[str]:
    ids: set[str] = set()
    for item in items:
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            call_id = cast(dict[str, Any], item).get("call_id")
            if isinstance(call_id, str):
                ids.add(call_id)
    return ids
