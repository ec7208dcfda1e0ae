"""Durable chat history for chat and agent runtimes, behind one async interface.

Pick a backend by URL or name with ``create_adapter``; write your own with a
``chat_persistence_backends`` hook implementation and prove it with the
contract suite (``chat_persistence_contract``).
"""

from ._base import AdapterBase
from ._codec import (
    StoredPartsWarning,
    stored_message,
    structure_part,
    structure_stored_parts,
    unstructure_part,
    unstructure_parts,
)
from ._errors import (
    AdapterNotOpenError,
    BackendLoadError,
    BackendNotFoundError,
    ConfigError,
    ConflictError,
    InvalidArgumentError,
    InvalidMessageError,
    NotFoundError,
    PersistenceError,
    SchemaMismatchError,
    StorageUnavailableError,
)
from ._hooks import Backend, BackendInfo, Capability, hookimpl, hookspec
from ._json import JSON
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
from ._protocol import PersistenceAdapter
from ._registry import (
    Registry,
    available_backends,
    create_adapter,
    register_plugin,
    unregister_plugin,
)
from ._validation import validate_id, validate_messages, validate_page, validate_session

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
    "Message",
    "NotFoundError",
    "Part",
    "PersistenceAdapter",
    "PersistenceError",
    "ReasoningPart",
    "Registry",
    "SchemaMismatchError",
    "Session",
    "StorageUnavailableError",
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
    "unregister_plugin",
    "unstructure_part",
    "unstructure_parts",
    "validate_id",
    "validate_messages",
    "validate_page",
    "validate_session",
]
