"""The ``memory`` backend's plugin: registered through the ``chat_persistence``
entry point. Cheap to import; the adapter module loads when an adapter is made."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from chat_persistence import Backend, ConfigError, PersistenceAdapter, hookimpl
from chat_persistence.storage import redact

_VALID = ["sdk_version", "store"]


@attrs.frozen
class MemoryOptions:
    """Options of the ``memory`` backend.

    ``store``: None for a private store per adapter, or the name of a process-wide
    store that every adapter given the same name shares. ``sdk_version``: written
    on sessions that ``archive_session`` creates (default:
    ``chat-persistence/<version>``).
    """

    store: str | None = None
    sdk_version: str | None = None


def memory_url_options(url: str) -> Mapping[str, Any]:
    """``memory://`` -> ``{}``; ``memory://NAME?sdk_version=x`` ->
    ``{"store": "NAME", "sdk_version": "x"}``. Other query parameters are passed on,
    so the registry names them as unknown options."""
    parts = urlsplit(url)
    options: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in options:
            raise ConfigError(
                f"option {key!r} is given twice in URL {redact(url)!r}",
                backend="memory",
                option=key,
                valid=_VALID,
            )
        options[key] = value
    name = unquote(parts.netloc + parts.path)
    if name:
        if "store" in options:
            raise ConfigError(
                f"URL {redact(url)!r} names the store twice (as memory://NAME and ?store=)",
                backend="memory",
                option="store",
                valid=_VALID,
            )
        options["store"] = name
    if parts.fragment:
        raise ConfigError(
            f"URL {redact(url)!r} has a fragment ('#{redact(parts.fragment)}'); "
            "the memory backend takes none",
            backend="memory",
            option="url",
            valid=_VALID,
        )
    return options


def create_memory_adapter(options: MemoryOptions) -> PersistenceAdapter:
    """Build a ``MemoryPersistence`` from its options."""
    from ._adapter import MemoryPersistence

    return MemoryPersistence(sdk_version=options.sdk_version, store=options.store)


@hookimpl
def chat_persistence_backends() -> list[Backend]:
    """The ``memory`` backend."""
    return [
        Backend(
            name="memory",
            factory=create_memory_adapter,
            options=MemoryOptions,
            schemes=("memory",),
            description=(
                "In-process store: the embedded default and a test double. "
                "memory:// is private to one adapter; memory://NAME is shared in the process. "
                "Nothing survives the process."
            ),
            url_options=memory_url_options,
        )
    ]
