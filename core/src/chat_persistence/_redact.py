"""The one way secrets are kept out of what chat-persistence prints, logs or raises."""

from __future__ import annotations

import re

MASK = "***"

_SECRET_KEYS = frozenset(
    {
        # libpq's (PostgreSQL 18)
        "password",
        "sslpassword",
        "oauth_client_secret",
        "scram_client_key",
        "scram_server_key",
        # what other drivers and services call theirs
        "pass",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "api_key",
        "apikey",
    }
)
"""Parameter names whose value is a secret, compared case-insensitively."""

# A URL runs to the first space or quote: error messages quote what they echo.
_URL = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*://[^\s'"]*""")
_QUERY_START = re.compile(r"[?#]")
_QUERY_PAIR = re.compile(r"([?&])([^=&#]*)=([^&]*)")  # a value runs to the next "&"
# A libpq keyword string: key = value, the value bare or quoted (with escapes).
_KEYWORD_PAIR = re.compile(
    r"""([A-Za-z_][\w%-]*)(\s*=\s*)('(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[^\s'"]*)"""
)


# user:password@ outside a URL (a scheme without "//", a bare host spec).
_USERINFO = re.compile(r"""([A-Za-z0-9._%+-]+):([^\s@/'"]+)@""")


def redact(text: str) -> str:
    """``text`` with every secret a connection string in it may hold replaced by
    ``***``: the password of a URL's userinfo, and the value of a ``password``,
    ``sslpassword`` (and like) parameter, in a URL's query (percent-encoded keys
    too) or in a libpq keyword string (``host=db password=hunter2``), and the
    password of a ``user:password@host`` outside a URL."""
    out: list[str] = []
    start = 0
    for found in _URL.finditer(text):
        out.append(_redact_keywords(text[start : found.start()]))
        out.append(_redact_url(found.group()))
        start = found.end()
    out.append(_redact_keywords(text[start:]))
    return "".join(out)


def _is_secret(key: str) -> bool:
    from urllib.parse import unquote_plus

    try:
        name = unquote_plus(key, errors="strict")
    except UnicodeDecodeError:
        name = key
    return name.strip().lower() in _SECRET_KEYS


def _redact_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    end = _QUERY_START.search(rest)
    head, tail = (rest[: end.start()], rest[end.start() :]) if end else (rest, "")
    # The last "@" before the query: a password may hold an unencoded "/" or "@".
    userinfo, at, host = head.rpartition("@")
    if at and ":" in userinfo:
        head = f"{userinfo.partition(':')[0]}:{MASK}@{host}"

    def pair(m: re.Match[str]) -> str:
        if _is_secret(m.group(2)):
            return f"{m.group(1)}{m.group(2)}={MASK}"
        return m.group()

    return f"{scheme}://{head}{_QUERY_PAIR.sub(pair, tail)}"


def _redact_keywords(text: str) -> str:
    def pair(m: re.Match[str]) -> str:
        if _is_secret(m.group(1)):
            return f"{m.group(1)}{m.group(2)}{MASK}"
        return m.group()

    return _USERINFO.sub(rf"\1:{MASK}@", _KEYWORD_PAIR.sub(pair, text))
