"""The OpenAI Agents SDK's ``Session`` over any chat-persistence backend.

``ChatPersistenceSession.from_url("user-42", "postgresql://...")`` keeps an agent's
conversation in a chat-persistence thread (the SDK session id is the thread id),
where every other runtime reading that thread sees ordinary messages.
"""

from __future__ import annotations

from ._session import ChatPersistenceSession, SessionClosedError

__all__ = ["ChatPersistenceSession", "SessionClosedError"]
