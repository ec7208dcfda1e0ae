"""Keeping a conninfo's secrets out of every error this backend raises.

libpq quotes the connection string back in some errors (a URI it cannot parse is
echoed whole), and a password may sit in it as given, percent-encoded or decoded.
``Secrets`` knows every form of this conninfo's ``password`` and ``sslpassword``
and masks them in any text before it becomes an error message.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

MASK = "***"
_SECRET_KEYS = ("password", "sslpassword")
# A URL's userinfo password, and key=value or query parameters for either key.
_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^@/?#]*?:([^@/?#]*)@")
_PARAMETER = re.compile(r"(?:^|[\s?&])(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&#]*)")


class Secrets:
    """The secrets of one conninfo (or none)."""

    def __init__(self, conninfo: str | None) -> None:
        found: set[str] = set()
        if conninfo:
            try:
                params = conninfo_to_dict(conninfo)
            except psycopg.Error:
                params = {}
            found.update(str(params[k]) for k in _SECRET_KEYS if params.get(k))
            if match := _URL_PASSWORD.match(conninfo):
                found.add(match.group(1))
            found.update(m.group(1).strip("'") for m in _PARAMETER.finditer(conninfo))
        forms = {f for s in found for f in (s, unquote(s), quote(s, safe=""))}
        self._forms = sorted((f for f in forms if f), key=len, reverse=True)

    def mask(self, text: str) -> str:
        """``text`` with every form of every secret replaced by ``***``."""
        for secret in self._forms:
            text = text.replace(secret, MASK)
        return text

    def line(self, err: BaseException) -> str:
        """The first line of an error's message, masked."""
        return self.mask(first_line(err))


def first_line(err: BaseException) -> str:
    """The first line of an error's message (psycopg's run on with hints and context)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
