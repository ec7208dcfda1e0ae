"""The event loop that owned adapters live on.

An adapter's connections belong to the event loop that opened them (a psycopg pool
does). The SDK calls a session from whatever loop runs the agent: ``Runner.run_sync``
makes a new loop per call, and threads each bring their own. So an adapter that a
session owns is opened, used and closed on one loop of its own, in a daemon thread
shared by every owned adapter in the process; callers on any loop await it there.
Once open, an adapter declaring ``Capability.ANY_LOOP`` is called on the caller's
loop instead (the session decides). (An adapter the host passes in is called on the
caller's loop: the host knows its loops.)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def home_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=serve, name="chat-persistence-agents", daemon=True).start()
            ready.wait()
            _loop = loop
        return _loop


async def on_home(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the shared loop, from any loop (cancelling it with the caller)."""
    home = home_loop()
    caller = asyncio.get_running_loop()
    if caller is home:
        return await coro
    return await _Hop(coro, home, caller).run()


class _Hop(Generic[T]):
    """One call on the home loop: a task there and a future on the caller's loop,
    each settled by a callback scheduled on the other's loop (half the cost of
    ``run_coroutine_threadsafe`` and ``wrap_future``, which put a thread-safe future
    between them)."""

    def __init__(
        self,
        coro: Coroutine[Any, Any, T],
        home: asyncio.AbstractEventLoop,
        caller: asyncio.AbstractEventLoop,
    ) -> None:
        self.coro, self.home, self.caller = coro, home, caller
        self.result: asyncio.Future[T] = caller.create_future()
        self.task: asyncio.Task[T] | None = None

    async def run(self) -> T:
        self.home.call_soon_threadsafe(self._start)
        try:
            return await self.result
        except asyncio.CancelledError:
            if not self.home.is_closed():
                # Runs after _start: one loop runs callbacks in the order scheduled.
                self.home.call_soon_threadsafe(self._cancel)
            raise

    def _start(self) -> None:  # on the home loop
        self.task = self.home.create_task(self.coro)
        self.task.add_done_callback(self._report)

    def _cancel(self) -> None:  # on the home loop
        if self.task is not None:
            self.task.cancel()

    def _report(self, task: asyncio.Task[T]) -> None:  # on the home loop
        if not task.cancelled():
            task.exception()  # retrieved, whether or not the caller still waits
        if not self.caller.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: no one waits
                self.caller.call_soon_threadsafe(self._settle, task)

    def _settle(self, task: asyncio.Task[T]) -> None:  # on the caller's loop
        if self.result.done():
            return
        if task.cancelled():
            self.result.cancel()
        elif (error := task.exception()) is not None:
            self.result.set_exception(error)
        else:
            self.result.set_result(task.result())


def on_home_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the shared loop and wait for it (at most ``timeout`` seconds),
    from synchronous code."""
    return asyncio.run_coroutine_threadsafe(coro, home_loop()).result(timeout)
