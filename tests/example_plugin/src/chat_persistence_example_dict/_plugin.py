"""The plugin: what the ``chat_persistence`` entry point loads. Cheap to import."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs

from chat_persistence import Backend, PersistenceAdapter, hookimpl


@attrs.frozen
class DictOptions:
    """Options of the ``example-dict`` backend (``example-dict://?sdk_version=...``)."""

    sdk_version: str = "example-dict/0.1"


def url_options(url: str) -> Mapping[str, Any]:
    """The URL's query parameters become options; the registry rejects unknown ones."""
    return dict(parse_qsl(urlsplit(url).query))


def create(options: DictOptions) -> PersistenceAdapter:
    """Build an adapter; the adapter module is imported only now."""
    from ._adapter import DictPersistence

    return DictPersistence(sdk_version=options.sdk_version)


@hookimpl
def chat_persistence_backends() -> list[Backend]:
    """The backends this plugin provides."""
    return [
        Backend(
            name="example-dict",
            factory=create,
            options=DictOptions,
            schemes=("example-dict",),
            description="Chat history in a dict (an example plugin).",
            url_options=url_options,
        )
    ]
