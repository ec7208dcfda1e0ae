"""Several processes on one SQLite file keep every rule of SPEC section 3, and a
writer killed with SIGKILL mid-save loses nothing it was told was saved."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

from chat_persistence import Message, Session
from chat_persistence_sqlite import SqlitePersistence
from fix_sqlite import counter_command, planned_saves, writer_command

WRITERS = 4
ROUNDS = 40


async def _create(path: Path, session: Session | None = None) -> None:
    async with SqlitePersistence(path=str(path)) as adapter:
        if session is not None:
            await adapter.save_session(session)


async def _listed(path: Path) -> list[Message]:
    async with SqlitePersistence(path=str(path)) as adapter:
        return await adapter.list_messages("t")


async def _session(path: Path, session_id: str) -> Session | None:
    async with SqlitePersistence(path=str(path)) as adapter:
        return await adapter.get_session(session_id)


def test_four_writer_processes_into_one_thread(sqlite_path: Path, tally: Counter[str]) -> None:
    """Singles and batches of 20 from four processes at once: every message once,
    times strictly increasing, every batch contiguous and in its order."""
    asyncio.run(_create(sqlite_path))  # the file and its tables exist before the race
    procs = [
        subprocess.Popen(
            writer_command(sqlite_path, w, ROUNDS, "t"), stdout=subprocess.PIPE, text=True
        )
        for w in range(WRITERS)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * WRITERS
    acked: list[list[str]] = [json.loads(line) for out in outputs for line in out.splitlines()]
    planned = [ids for w in range(WRITERS) for ids in planned_saves(w, ROUNDS)]
    assert sorted(acked) == sorted(planned)

    listed = asyncio.run(_listed(sqlite_path))
    ids = [m.id for m in listed]
    assert sorted(ids) == sorted(i for save in planned for i in save)
    assert len(set(ids)) == len(ids)
    times = [m.created_at for m in listed]
    assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(times))
    position = {message_id: index for index, message_id in enumerate(ids)}
    for save in planned:
        first = position[save[0]]
        assert [position[i] for i in save] == list(range(first, first + len(save))), save
    tally["messages saved by four processes into one thread (sqlite)"] += len(ids)


def test_compare_and_set_across_processes_has_one_winner(sqlite_path: Path) -> None:
    """Four processes incrementing one counter by compare-and-set: the counter ends
    at the number of wins, so no two won from the same read."""
    asyncio.run(_create(sqlite_path, Session("s", "t", "v", state=0)))
    procs = [
        subprocess.Popen(counter_command(sqlite_path, 60, "s"), stdout=subprocess.PIPE, text=True)
        for _ in range(WRITERS)
    ]
    wins = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0] * WRITERS
    stored = asyncio.run(_session(sqlite_path, "s"))
    assert stored is not None
    assert stored.state == sum(wins)
    assert sum(wins) >= 60  # each round has at least one winner


def test_a_writer_killed_mid_save_loses_nothing_acknowledged(sqlite_path: Path) -> None:
    asyncio.run(_create(sqlite_path))
    acked: list[list[str]] = []
    command = writer_command(sqlite_path, 0, 0, "t")
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(json.loads(line))
            if len(acked) == 60:
                os.kill(proc.pid, signal.SIGKILL)  # it is saving the next one by now
                break
        acked += [json.loads(line) for line in proc.stdout]
    assert proc.returncode == -signal.SIGKILL

    with sqlite3.connect(sqlite_path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {r[0] for r in raw.execute("SELECT message_id FROM chat_messages")}
    planned = planned_saves(0, len(acked) + 2)
    for save in acked:
        assert set(save) <= stored, f"acknowledged save {save[0]}.. is missing"
    whole = 0
    for save in planned:
        present = set(save) & stored
        assert present in (set(), set(save)), f"save {save[0]}.. is half written"
        whole += bool(present)
    assert stored <= {i for save in planned for i in save}
    assert whole in (len(acked), len(acked) + 1)  # the one in flight: all or nothing
    assert len(asyncio.run(_listed(sqlite_path))) == len(stored)
