"""An example chat-persistence backend, ``example-dict``: chat history in a dict."""

from ._adapter import DictPersistence
from ._plugin import DictOptions

__all__ = ["DictOptions", "DictPersistence"]
