"""The checks of the contract, one module per area; importing them registers them."""

from .._table import CHECKS, Check
from . import (
    concurrency,
    deleting,
    isolation,
    lifecycle,
    listing,
    messages,
    sessions,
    stateful,
    stored,
    times,
    validation,
)

AREAS = (
    lifecycle,
    messages,
    times,
    listing,
    stored,
    validation,
    sessions,
    isolation,
    deleting,
    concurrency,
    stateful,
)
"""The areas in the order their checks run: cheap and basic first, randomized last."""

__all__ = ["AREAS", "ordered_checks"]


def ordered_checks() -> list[Check]:
    """Every registered check: by area, then in the order each module defines them."""
    rank = {module.__name__: index for index, module in enumerate(AREAS)}
    return sorted(CHECKS.values(), key=lambda c: rank.get(c.function.__module__, len(rank)))
