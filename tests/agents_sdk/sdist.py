"""The SDK's test suite, from the sdist of the pinned version on PyPI (never committed).

``pip download`` fetches it into a cache folder (``CHAT_PERSISTENCE_AGENTS_SDK_CACHE``,
default a folder in the system's temporary directory), which later runs reuse.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

SUITE_FILES = (
    "tests/memory/test_session.py",
    "tests/memory/test_session_limit.py",
    "tests/test_hitl_session_scenario.py",
)
"""The SDK's session tests, relative to the sdist's root."""

CACHE_ENV = "CHAT_PERSISTENCE_AGENTS_SDK_CACHE"


def pinned_version() -> str:
    """The installed ``openai-agents`` (uv.lock pins it): the tests match the code."""
    return version("openai-agents")


def cache_root() -> Path:
    """Where sdists are downloaded and unpacked."""
    given = os.environ.get(CACHE_ENV, "").strip()
    return Path(given) if given else Path(tempfile.gettempdir()) / "chat-persistence-agents-sdk"


def sdk_source(sdk_version: str | None = None) -> Path:
    """The unpacked sdist of ``openai-agents`` (the installed version by default):
    downloaded once, unpacked into a fresh folder and renamed into place, so two runs
    at once never see half a tree."""
    sdk_version = sdk_version or pinned_version()
    root = cache_root()
    target = root / f"openai_agents-{sdk_version}"
    if all((target / name).is_file() for name in SUITE_FILES):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"openai-agents=={sdk_version}",
                "--dest",
                scratch,
            ],
            check=True,
        )
        (archive,) = Path(scratch).glob("openai_agents-*.tar.gz")
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
                tar.extractall(unpacked, filter="data")
            else:  # an sdist from PyPI, of the pinned version
                tar.extractall(unpacked)
        (tree,) = unpacked.iterdir()
        try:
            tree.rename(target)
        except OSError:  # another run put it there first
            if not target.is_dir():
                raise
            shutil.rmtree(tree)
    return target
