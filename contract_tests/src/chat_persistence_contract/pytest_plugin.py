"""The pytest plugin (``pytest11`` entry point): registers the ``contract`` marker.

Loaded in every pytest run where this package is installed, so it does nothing
else; the suite itself is ``PersistenceAdapterContract``, used by subclassing.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``contract`` marker the suite's tests carry."""
    config.addinivalue_line(
        "markers",
        "contract: a check of the chat-persistence adapter contract (chat_persistence_contract)",
    )
