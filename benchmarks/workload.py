"""Deterministic workload data, shared by the main harness and the peer worker.

Standard library only: the peer worker imports this module from a virtual
environment that has none of our packages. A message is a plain dict
(``id``, ``role``, ``session_id``, ``parts``) whose ``parts`` is the wire
``parts_json`` array; each contender turns it into its own native type before
the clock starts.
"""

from __future__ import annotations

import random
from typing import Any

SEED = 20240601

_WORDS = [
    "the",
    "history",
    "of",
    "a",
    "conversation",
    "is",
    "stored",
    "as",
    "messages",
    "with",
    "parts",
    "and",
    "each",
    "part",
    "has",
    "a",
    "type",
    "text",
    "reasoning",
    "tool",
    "call",
    "result",
    "file",
    "data",
    "session",
    "thread",
    "archive",
    "cursor",
    "page",
    "newest",
    "oldest",
    "postgres",
    "memory",
    "adapter",
    "contract",
    "runtime",
    "agent",
    "model",
    "user",
    "assistant",
    "system",
    "query",
    "index",
    "latency",
    "throughput",
    "median",
    "ratio",
    "baseline",
    "batch",
    "insert",
    "select",
    "unnest",
    "binary",
    "json",
    "decode",
]


def _text(rng: random.Random, chars: int = 300) -> str:
    out: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(_WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


def make_messages(
    count: int,
    *,
    seed: int = SEED,
    prefix: str = "m",
    sessions: list[str] | None = None,
) -> list[dict[str, Any]]:
    """``count`` messages: alternating user/assistant, 1-3 text parts of ~300
    characters, about one assistant message in four also carrying a tool call.

    With ``sessions``, the thread is split into that many equal consecutive runs,
    one per session id (the way a runtime's sessions follow each other).
    """
    rng = random.Random(f"{seed}:{prefix}:{count}")
    messages: list[dict[str, Any]] = []
    for i in range(count):
        role = "user" if i % 2 == 0 else "assistant"
        parts: list[dict[str, Any]] = [
            {"type": "text", "text": _text(rng)} for _ in range(rng.randint(1, 3))
        ]
        if role == "assistant" and rng.random() < 0.25:
            parts.append(
                {
                    "type": "tool-call",
                    "toolCallId": f"call_{prefix}{i:07d}",
                    "toolName": rng.choice(("search", "fetch_page", "run_sql")),
                    "input": {"query": _text(rng, 40), "limit": rng.randint(1, 20)},
                }
            )
        session = None
        if sessions:
            session = sessions[min(i * len(sessions) // count, len(sessions) - 1)]
        messages.append(
            {"id": f"{prefix}{i:07d}", "role": role, "session_id": session, "parts": parts}
        )
    return messages


def batches(items: list[Any], size: int) -> list[list[Any]]:
    """``items`` cut into consecutive batches of ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]
