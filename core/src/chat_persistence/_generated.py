"""Functions compiled from source specialised to a part class's wire fields, as attrs
makes ``__init__``: the read path and the fast check run once per part read or
written, and a loop over field descriptions costs several times more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def compile_function(
    name: str, params: str, body: list[str], namespace: dict[str, Any], *, label: str
) -> Callable[..., Any]:
    """``def name(params): body`` compiled in ``namespace`` (its globals)."""
    source = f"def {name}({params}):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(source, f"<chat_persistence {label}>", "exec"), namespace)
    return namespace[name]
