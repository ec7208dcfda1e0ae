"""``BackendInfo``: a row of ``available_backends()``. Its own module, loaded when
a row is asked for (or a plugin fails), so that ``create_adapter`` does not build
the class."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ._hooks import Backend


@attrs.frozen
class BackendInfo:
    """One row of ``available_backends()``: a backend, or a plugin that failed.

    ``error`` is None for a usable backend; for a plugin that failed to load (or a
    backend name claimed twice) it holds the error, and ``backend`` is None.
    """

    name: str
    plugin: str
    distribution: str | None
    version: str | None
    backend: Backend | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether this backend can be created."""
        return self.error is None
