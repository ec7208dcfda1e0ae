"""Large data, on PostgreSQL 16, SQLite and the memory backend: a 10 MB part
round-trips, a batch over 256 MB is stored, and a thread of 100,000 messages pages
forwards and backwards completely, in order."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from chat_persistence import (
    JSON,
    DataPart,
    Message,
    PersistenceAdapter,
    TextPart,
    ToolResultPart,
    unstructure_parts,
)
from chat_persistence.storage import json_text
from chat_persistence_memory import MemoryPersistence
from chat_persistence_postgres import PostgresPersistence
from chat_persistence_sqlite import SqlitePersistence
from fix_pg import PgSchema

THREAD_SIZE = 100_000
BATCH = 5_000
TIES = 1_000
PAGE = 1_000


@pytest.fixture(params=["memory", "postgres", "sqlite"])
async def adapter(request: pytest.FixtureRequest) -> AsyncIterator[PersistenceAdapter]:
    if request.param == "memory":
        async with MemoryPersistence() as memory:
            yield memory
        return
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("sqlite_path")
        async with SqlitePersistence(path=str(path)) as lite:
            yield lite
        return
    schema: PgSchema = request.getfixturevalue("pg_schema")
    tables: dict[str, str] = request.getfixturevalue("pg_tables")
    async with PostgresPersistence(conninfo=schema.dsn, tables=tables, max_size=2) as postgres:
        yield postgres


def ten_megabytes() -> str:
    """10 MiB of text that is hard on a JSON path: quotes, backslashes, control
    characters, astral characters, every plane."""
    rng = random.Random(10)
    alphabet = 'ab"\\\n\t\x01é€😀\U0010fffd<>&\u2028' + "xyz" * 5
    chunk = "".join(rng.choice(alphabet) for _ in range(4096))
    return (chunk * (10 * 1024 * 1024 // len(chunk) + 1))[: 10 * 1024 * 1024]


async def test_a_ten_megabyte_part_round_trips(
    adapter: PersistenceAdapter, tally: Counter[str]
) -> None:
    big = ten_megabytes()
    assert len(big.encode()) >= 10 * 1024 * 1024
    message = Message(
        "big",
        "tool",
        [
            ToolResultPart("c1", "read_file", {"content": big, "lines": list(range(1000))}),
            TextPart(big),
            DataPart(cast(JSON, [big[:1000]] * 100)),
        ],
    )
    saved = await adapter.save_messages("t", [message])
    assert saved[0].parts == message.parts
    got = await adapter.get_message("t", "big")
    assert got == saved[0]
    assert await adapter.list_messages("t") == saved
    tally["10 MiB parts round-tripped"] += 1


async def test_a_hundred_thousand_messages_page_forwards_and_backwards(
    adapter: PersistenceAdapter, tally: Counter[str]
) -> None:
    # The first TIES messages share one explicit time (ids sort in save order, so
    # every backend's tie-break agrees); the rest get store-assigned times.
    tie = datetime(2024, 1, 1, tzinfo=UTC)
    order = [f"m{i:06d}" for i in range(THREAD_SIZE)]
    for start in range(0, THREAD_SIZE, BATCH):
        batch = [
            Message(
                message_id,
                "user",
                [TextPart(message_id)],
                created_at=tie if start + i < TIES else None,
            )
            for i, message_id in enumerate(order[start : start + BATCH])
        ]
        await adapter.save_messages("t", batch)

    forwards = [order[0]]
    for _ in range(THREAD_SIZE // PAGE + 2):
        page = await adapter.list_messages("t", after=forwards[-1], limit=PAGE)
        if not page:
            break
        assert len(page) <= PAGE
        assert all(m.parts == (TextPart(m.id),) for m in page)
        forwards += [m.id for m in page]
    assert forwards == order

    newest = await adapter.list_messages("t", limit=PAGE)
    backwards = [m.id for m in reversed(newest)]
    for _ in range(THREAD_SIZE // PAGE + 2):
        page = await adapter.list_messages("t", before=backwards[-1], limit=PAGE)
        if not page:
            break
        backwards += [m.id for m in reversed(page)]
    assert backwards[::-1] == order
    tally["messages paged forwards and backwards"] += 2 * THREAD_SIZE


async def test_a_batch_over_256_megabytes_is_stored(
    adapter: PersistenceAdapter, tally: Counter[str]
) -> None:
    """jsonb holds at most 256 MB in one value: a batch whose parts are larger
    together (each one is not) is stored by Postgres as by the memory backend."""
    ninety_megabytes = "plain text " * (90 * 1024 * 1024 // 11)
    batch = [Message(f"big{i}", "user", [TextPart(ninety_megabytes + str(i))]) for i in range(3)]
    saved = await adapter.save_messages("huge", batch)
    assert [m.parts for m in saved] == [m.parts for m in batch]
    listed = await adapter.list_messages("huge")
    assert [m.id for m in listed] == ["big0", "big1", "big2"]
    assert [m.parts for m in listed] == [m.parts for m in batch]
    size = sum(len(json_text(unstructure_parts(m.parts)).encode()) for m in batch)
    assert size > 256 * 1024 * 1024
    tally["batches over 256 MB stored"] += 1
