"""The SQLite backend passes the whole contract suite: through the pytest door on
a file (reopened on the same file for durability), through ``run_contract`` on a
private in-memory database, and through ``chat-persistence contract sqlite:///...``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat_persistence import Capability, PersistenceAdapter, create_adapter
from chat_persistence_contract import AdapterFactory, PersistenceAdapterContract, arun_contract

SQLITE_FILE_CAPABILITIES = frozenset(
    {Capability.DURABLE, Capability.SCHEMA_VALIDATION, Capability.TIES_IN_SAVE_ORDER}
)


class TestSqliteFileContract(PersistenceAdapterContract):
    """Every check against ``sqlite:///<file>``; nothing is skipped."""

    required_capabilities = SQLITE_FILE_CAPABILITIES

    @pytest.fixture
    def url(self, sqlite_path: Path) -> str:
        return f"sqlite:///{sqlite_path}"

    @pytest.fixture
    async def adapter(self, url: str) -> AsyncIterator[PersistenceAdapter]:
        async with create_adapter(url) as adapter:
            yield adapter

    @pytest.fixture
    def reopen_adapter(self, url: str) -> AdapterFactory:
        return lambda: create_adapter(url)


async def test_in_memory_passes_everything_but_durability() -> None:
    """``sqlite://`` is private to its adapter, so it does not declare durability."""
    adapter = create_adapter("sqlite://")
    assert Capability.DURABLE not in adapter.capabilities
    report = await arun_contract("sqlite://")
    assert report.passed, report.format()
    assert [r.reason for r in report.skipped] == [
        "the adapter does not declare capability durable"
    ], report.format()


async def test_run_contract_on_a_file_skips_nothing(sqlite_path: Path) -> None:
    report = await arun_contract(
        f"sqlite:///{sqlite_path}", required_capabilities=SQLITE_FILE_CAPABILITIES
    )
    assert report.passed, report.format()
    assert not report.skipped, report.format()


def test_contract_command_on_a_relative_url(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chat_persistence", "contract", "sqlite:///chat.db"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "chat.db").is_file()
    assert " 0 failed, 0 skipped " in done.stdout, done.stdout
