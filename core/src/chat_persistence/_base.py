"""A small base class that gives an adapter its open/close lifecycle."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from ._errors import AdapterNotOpenError


class AdapterBase:
    """Lifecycle plumbing for adapters: ``async with``, idempotent ``open`` and
    ``aclose``, and ``_check_open()`` for operations to call first.

    Subclasses override ``_open`` and ``_close``.
    """

    _is_open: bool = False

    async def _open(self) -> None:
        """Acquire resources; called once per ``open``."""

    async def _close(self) -> None:
        """Release resources; called once per ``aclose``."""

    @property
    def is_open(self) -> bool:
        """Whether operations may be called."""
        return self._is_open

    async def open(self) -> None:
        """Acquire the adapter's resources. Calling it on an open adapter does nothing."""
        if not self._is_open:
            await self._open()
            self._is_open = True

    async def aclose(self) -> None:
        """Release the adapter's resources. Calling it on a closed adapter does nothing."""
        if self._is_open:
            self._is_open = False
            await self._close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _check_open(self) -> None:
        if not self._is_open:
            raise AdapterNotOpenError(type(self).__name__)
