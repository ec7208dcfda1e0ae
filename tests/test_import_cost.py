"""Plugin modules stay cheap to import (SPEC §4, llm #732): choosing the memory
backend, or asking the CLI for help, never loads psycopg."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def modules_after(code: str) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter; report which modules it loaded."""
    probe = textwrap.dedent(code) + textwrap.dedent(
        """
        import json, sys
        print(json.dumps({
            name: name in sys.modules
            for name in (
                "psycopg", "psycopg_pool", "chat_persistence._cli", "click",
                "attrs", "cattrs", "pluggy", "importlib.metadata", "email",
                "zipfile", "logging", "difflib", "sqlite3",
                "chat_persistence_postgres._ddl", "chat_persistence_sqlite._contract",
                "asyncio", "chat_persistence._registry", "chat_persistence._demo",
                "chat_persistence._info", "chat_persistence._model",
            )
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_creating_a_memory_adapter_does_not_import_psycopg() -> None:
    loaded = modules_after(
        """
        import sys
        import chat_persistence
        adapter = chat_persistence.create_adapter("memory://")
        assert type(adapter).__name__ == "MemoryPersistence", adapter
        # Creating needs neither the rows of available_backends() nor the model.
        assert "chat_persistence._info" not in sys.modules
        assert "chat_persistence._model" not in sys.modules
        # Every plugin was loaded to find the backend, postgres's included.
        names = {i.name for i in chat_persistence.available_backends() if i.ok}
        assert {"memory", "postgres"} <= names, names
        """
    )
    assert loaded["psycopg"] is False
    assert loaded["psycopg_pool"] is False
    # No options to convert: cattrs stays unloaded too.
    assert loaded["cattrs"] is False
    # Entry points and the default sdk_version are read from the installed
    # distributions' folders: importlib.metadata (and its email parser) stay unloaded.
    assert loaded["importlib.metadata"] is False
    assert loaded["email"] is False
    assert loaded["zipfile"] is False
    # Only errors and warnings need these, and the other backends' DDL only `ddl`.
    assert loaded["logging"] is False
    assert loaded["difflib"] is False
    assert loaded["sqlite3"] is False
    assert loaded["chat_persistence_postgres._ddl"] is False
    assert loaded["chat_persistence_sqlite._contract"] is False


def test_options_given_are_converted_and_checked() -> None:
    loaded = modules_after(
        """
        import chat_persistence
        adapter = chat_persistence.create_adapter("memory://shared?sdk_version=app/2")
        assert adapter.sdk_version == "app/2", adapter.sdk_version
        """
    )
    assert loaded["cattrs"] is True


def test_importing_the_library_does_not_import_the_cli() -> None:
    loaded = modules_after("import chat_persistence")
    assert loaded["chat_persistence._cli"] is False
    assert loaded["click"] is False
    assert loaded["psycopg"] is False


def test_importing_the_library_loads_nothing_heavy_until_a_name_is_used() -> None:
    loaded = modules_after("import chat_persistence")
    assert loaded["attrs"] is False
    assert loaded["cattrs"] is False
    assert loaded["pluggy"] is False
    assert loaded["importlib.metadata"] is False


def test_reading_never_builds_the_cattrs_converter() -> None:
    loaded = modules_after(
        """
        from chat_persistence import stored_message, unstructure_parts
        m = stored_message(thread_id="t", message_id="m", role="user", session_id=None,
                           created_at=None, parts_json=[{"type": "text", "text": "hi"}])
        assert unstructure_parts(m.parts) == [{"type": "text", "text": "hi"}]
        """
    )
    assert loaded["cattrs"] is False


def test_cli_help_and_backends_do_not_import_psycopg() -> None:
    loaded = modules_after(
        """
        from chat_persistence._cli import main
        for args in (["--help"], ["backends", "--help"], ["backends"]):
            try:
                main(args, prog_name="chat-persistence")
            except SystemExit as exit:
                assert exit.code == 0, (args, exit.code)
        """
    )
    assert loaded["chat_persistence._cli"] is True
    assert loaded["psycopg"] is False


def test_cli_help_loads_neither_the_registry_nor_asyncio() -> None:
    loaded = modules_after(
        """
        from chat_persistence._cli import main
        for args in (["--help"], ["demo", "--help"]):
            try:
                main(args, prog_name="chat-persistence")
            except SystemExit as exit:
                assert exit.code == 0, (args, exit.code)
        """
    )
    assert loaded["chat_persistence._cli"] is True
    for name in ("asyncio", "chat_persistence._registry", "chat_persistence._demo"):
        assert loaded[name] is False, name
    for name in ("attrs", "pluggy", "importlib.metadata"):
        assert loaded[name] is False, name


def test_the_memory_package_loads_its_adapter_only_when_asked() -> None:
    probe = textwrap.dedent(
        """
        import json, sys
        import chat_persistence_memory
        before = "chat_persistence_memory._adapter" in sys.modules
        chat_persistence_memory.MemoryPersistence
        after = "chat_persistence_memory._adapter" in sys.modules
        print(json.dumps([before, after]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == [False, True]
