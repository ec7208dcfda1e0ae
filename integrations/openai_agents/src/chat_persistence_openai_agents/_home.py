"""The event loop that owned adapters live on.

An adapter's connections belong to the event loop that opened them (a psycopg pool
does). The SDK calls a session from whatever loop runs the agent: ``Runner.run_sync``
makes a new loop per call, and threads each bring their own. So an adapter that a
session owns is opened, used and closed on one loop of its own, in a daemon thread
shared by every owned adapter in the process; callers on any loop await it there.
(An adapter the host passes in is called on the caller's loop: the host knows its
loops.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

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
    loop = home_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:  # pragma: no cover - always called from a coroutine
        running = None
    if running is loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


def on_home_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the shared loop and wait for it (at most ``timeout`` seconds),
    from synchronous code."""
    return asyncio.run_coroutine_threadsafe(coro, home_loop()).result(timeout)
