"""What a backend plugin provides, and the pluggy hook it provides it through."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import attrs
import pluggy

from ._protocol import PersistenceAdapter

PROJECT = "chat_persistence"
"""The pluggy project name and the entry-point group plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Decorator for a plugin's hook implementations."""


def _no_url_options(url: str) -> dict[str, Any]:
    return {}


@attrs.frozen
class Backend:
    """A backend a plugin offers.

    ``factory`` builds an adapter (without I/O) from an instance of ``options``,
    an attrs class that cattrs fills from configuration. ``url_options`` turns a
    configuration URL whose scheme is in ``schemes`` into an options mapping.
    """

    name: str
    factory: Callable[[Any], PersistenceAdapter]
    options: type[Any]
    schemes: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    description: str = ""
    url_options: Callable[[str], Mapping[str, Any]] = _no_url_options
    reference_ddl: Callable[[Mapping[str, str]], str] | None = None
    """For SQL backends: the reference DDL for the given table names."""
    url_parameters: Callable[[], Collection[str]] | None = None
    """Every query parameter a URL of this backend may hold (its own and those it
    passes on to a driver, say libpq's), or None if ``url_options`` checks them. When
    given, ``create_adapter`` refuses any other with a ``ConfigError`` naming the
    nearest, before the backend sees the URL. Called when a URL is used, so it may
    import the driver."""


class BackendSpec:
    """The hook specifications."""

    @hookspec
    def chat_persistence_backends(self) -> Sequence[Backend]:  # type: ignore[empty-body]
        """Return the backends this plugin provides."""
