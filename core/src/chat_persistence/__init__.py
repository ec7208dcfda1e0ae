"""Durable chat history for chat and agent runtimes, behind one async interface.

Pick a backend by URL or name with ``create_adapter``; write your own with a
``chat_persistence_backends`` hook implementation and prove it with the
contract suite (``chat_persistence_contract``).
"""

from __future__ import annotations

import typing

from ._errors import (
    AdapterNotOpenError,
    BackendLoadError,
    BackendNotFoundError,
    ConfigError,
    ConflictError,
    InvalidArgumentError,
    InvalidMessageError,
    NotFoundError,
    OperationNotSupportedError,
    PersistenceError,
    SchemaMismatchError,
    StorageUnavailableError,
)
from ._json import JSON
from ._lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
    from ._base import AdapterBase, supports_delete_messages, supports_stored_parts
    from ._codec import (
        StoredPartsWarning,
        stored_message,
        structure_part,
        structure_stored_parts,
        unstructure_part,
        unstructure_parts,
    )
    from ._hooks import (
        Backend,
        hookimpl,
        hookspec,
    )
    from ._info import BackendInfo
    from ._model import (
        DataPart,
        FilePart,
        Message,
        Part,
        ReasoningPart,
        Session,
        TextPart,
        ToolCallPart,
        ToolResultPart,
        UnknownPart,
    )
    from ._protocol import Capability, PersistenceAdapter, StoredParts
    from ._registry import (
        Registry,
        available_backends,
        create_adapter,
        register_plugin,
        unregister_plugin,
    )
    from ._storage import ListQuery
    from ._validation import (
        validate_id,
        validate_ids,
        validate_messages,
        validate_page,
        validate_session,
    )

__all__ = [
    "JSON",
    "AdapterBase",
    "AdapterNotOpenError",
    "Backend",
    "BackendInfo",
    "BackendLoadError",
    "BackendNotFoundError",
    "Capability",
    "ConfigError",
    "ConflictError",
    "DataPart",
    "FilePart",
    "InvalidArgumentError",
    "InvalidMessageError",
    "ListQuery",
    "Message",
    "NotFoundError",
    "OperationNotSupportedError",
    "Part",
    "PersistenceAdapter",
    "PersistenceError",
    "ReasoningPart",
    "Registry",
    "SchemaMismatchError",
    "Session",
    "StorageUnavailableError",
    "StoredParts",
    "StoredPartsWarning",
    "TextPart",
    "ToolCallPart",
    "ToolResultPart",
    "UnknownPart",
    "available_backends",
    "create_adapter",
    "hookimpl",
    "hookspec",
    "register_plugin",
    "stored_message",
    "structure_part",
    "structure_stored_parts",
    "supports_delete_messages",
    "supports_stored_parts",
    "unregister_plugin",
    "unstructure_part",
    "unstructure_parts",
    "validate_id",
    "validate_ids",
    "validate_messages",
    "validate_page",
    "validate_session",
]

# Loaded on first use, so that importing the package (and `chat-persistence --help`)
# does not pay for attrs, pluggy and the codec before anything needs them.
_LAZY = {
    "AdapterBase": "._base",
    "StoredPartsWarning": "._codec",
    "stored_message": "._codec",
    "structure_part": "._codec",
    "structure_stored_parts": "._codec",
    "unstructure_part": "._codec",
    "unstructure_parts": "._codec",
    "Backend": "._hooks",
    "BackendInfo": "._info",
    "Capability": "._protocol",
    "hookimpl": "._hooks",
    "hookspec": "._hooks",
    "DataPart": "._model",
    "FilePart": "._model",
    "Message": "._model",
    "Part": "._model",
    "ReasoningPart": "._model",
    "Session": "._model",
    "TextPart": "._model",
    "ToolCallPart": "._model",
    "ToolResultPart": "._model",
    "UnknownPart": "._model",
    "ListQuery": "._storage",
    "PersistenceAdapter": "._protocol",
    "StoredParts": "._protocol",
    "supports_delete_messages": "._base",
    "supports_stored_parts": "._base",
    "Registry": "._registry",
    "available_backends": "._registry",
    "create_adapter": "._registry",
    "register_plugin": "._registry",
    "unregister_plugin": "._registry",
    "validate_id": "._validation",
    "validate_ids": "._validation",
    "validate_messages": "._validation",
    "validate_page": "._validation",
    "validate_session": "._validation",
}


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, __all__)
