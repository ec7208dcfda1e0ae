"""Reading ``timestamptz`` values that Python's ``datetime`` cannot hold.

Other programs may store ``infinity``, ``-infinity``, years after 9999 or before
year 1, and a host's session time zone can push a value past year 9999 when it is
shown in local time. psycopg raises ``DataError`` for those. ``ClampedTimestamptzLoader``
reads the binary value (microseconds since 2000-01-01 UTC, whatever the session's
``TimeZone``) and clamps what is out of range to ``datetime.min``/``datetime.max``
in UTC, with a logged warning: such a row reads as something defined, and never
makes a thread unreadable.
"""

from __future__ import annotations

import logging
import struct
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import pq
from psycopg.abc import Buffer
from psycopg.adapt import Loader

logger = logging.getLogger("chat_persistence.postgres")

TIMESTAMPTZ_OID = psycopg.adapters.types["timestamptz"].oid
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MIN = datetime.min.replace(tzinfo=UTC)
_MAX = datetime.max.replace(tzinfo=UTC)
_MIN_US = (_MIN - _EPOCH) // timedelta(microseconds=1)
_MAX_US = (_MAX - _EPOCH) // timedelta(microseconds=1)
_UNPACK = struct.Struct("!q").unpack


def clamped(micros: int) -> datetime:
    """The UTC datetime ``micros`` after 2000-01-01, clamped to Python's range."""
    if micros > _MAX_US:
        logger.warning("a stored time after year 9999 (or infinity) is read as %s", _MAX)
        return _MAX
    if micros < _MIN_US:
        logger.warning("a stored time before year 1 (or -infinity) is read as %s", _MIN)
        return _MIN
    return _EPOCH + timedelta(microseconds=micros)


class ClampedTimestamptzLoader(Loader):
    """Binary ``timestamptz`` as a UTC datetime, clamped to Python's range."""

    format = pq.Format.BINARY

    def load(self, data: Buffer) -> datetime:
        return clamped(_UNPACK(data)[0])
