"""Our side: typed messages from the workload, and the Postgres adapter when it is
usable (checked by a real round trip, so an unfinished adapter is reported, not
benchmarked)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from chat_persistence import Message, PersistenceAdapter, structure_part

AdapterFactory = Callable[[str, str], PersistenceAdapter]
"""(messages table, sessions table) -> an adapter, not yet open."""


def to_message(wire: dict[str, Any]) -> Message:
    """A workload message as our typed ``Message``."""
    return Message(
        id=wire["id"],
        role=wire["role"],
        parts=tuple(structure_part(p) for p in wire["parts"]),
        session_id=wire["session_id"],
    )


async def postgres_adapter(
    dsn: str, messages: str, sessions: str
) -> tuple[AdapterFactory | None, str]:
    """A factory for ``PostgresPersistence`` on given tables, or None and why not.

    The check is a round trip on the given (empty, scratch) tables: save two
    messages, list them back, delete the thread.
    """
    try:
        from chat_persistence_postgres import PostgresPersistence  # type: ignore[attr-defined]
    except Exception as err:
        return None, f"chat_persistence_postgres.PostgresPersistence not importable: {err}"

    def factory(messages_table: str, sessions_table: str) -> PersistenceAdapter:
        return PostgresPersistence(
            conninfo=dsn, tables={"messages": messages_table, "sessions": sessions_table}
        )

    thread = f"probe-{uuid.uuid4().hex}"
    probe = [
        to_message(
            {
                "id": "a",
                "role": "user",
                "session_id": None,
                "parts": [{"type": "text", "text": "hi"}],
            }
        ),
        to_message(
            {
                "id": "b",
                "role": "assistant",
                "session_id": None,
                "parts": [{"type": "text", "text": "ho"}],
            }
        ),
    ]
    try:
        async with factory(messages, sessions) as store:
            await store.save_messages(thread, probe)
            back = await store.list_messages(thread)
            await store.delete_thread(thread)
        if [m.id for m in back] != ["a", "b"] or back[0].parts != probe[0].parts:
            return None, f"PostgresPersistence round trip returned {back!r}"
    except Exception as err:
        return None, f"PostgresPersistence does not work yet: {type(err).__name__}: {err}"
    return factory, ""


def memory_adapter() -> tuple[Callable[[], PersistenceAdapter] | None, str]:
    """A factory for the memory backend, or None and why not."""
    try:
        from chat_persistence_memory import MemoryPersistence  # type: ignore[attr-defined]
    except Exception as err:
        return None, f"chat_persistence_memory.MemoryPersistence not importable: {err}"
    return MemoryPersistence, ""
