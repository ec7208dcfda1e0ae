"""Finding backends (entry points and hand-registered plugins) and creating adapters
from configuration: a URL, a backend name or a mapping."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from ._errors import BackendLoadError, BackendNotFoundError, ConfigError
from ._hooks import PROJECT, Backend
from ._loading import Loader, Scan, Source, allow_list, warn
from ._options import nearest, structure_options, unknown_option
from ._protocol import PersistenceAdapter
from ._redact import redact

if TYPE_CHECKING:
    from ._info import BackendInfo

URL_ENV = "CHAT_PERSISTENCE_URL"
DEFAULT_URL = "memory://"

Config = str | Mapping[str, Any] | None


class Registry:
    """The backends this process can use.

    Entry points of the ``chat_persistence`` group are scanned once, lazily;
    ``CHAT_PERSISTENCE_PLUGINS`` (comma-separated entry-point names) limits which
    are loaded. Plugins registered by hand are always used.
    """

    def __init__(self, *, group: str = PROJECT) -> None:
        self._group = group
        self._by_hand: dict[str, object] = {}
        self._scan: Scan | None = None
        self._lock = threading.Lock()

    def register_plugin(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object (a module or instance with hook implementations)
        by hand, no entry point needed. Returns the name it is registered under."""
        plugin_name = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin):x}"
        with self._lock:
            if plugin_name in self._by_hand:
                raise ValueError(f"a plugin named {plugin_name!r} is already registered")
            self._by_hand[plugin_name] = plugin
            self._scan = None
        return plugin_name

    def unregister_plugin(self, name: str) -> None:
        """Forget a plugin registered by hand."""
        with self._lock:
            del self._by_hand[name]
            self._scan = None

    def reload(self) -> None:
        """Scan entry points again on next use (after installing a plugin, say)."""
        with self._lock:
            self._scan = None

    def available_backends(self) -> list[BackendInfo]:
        """Every backend found, and every plugin that failed, with its error."""
        return list(self._scanned().infos)

    def get_backend(self, name: str) -> Backend:
        """The backend called ``name``; raises a clear error if it cannot be had."""
        scan = self._scanned()
        backend = scan.backends.get(name)
        if backend is not None:
            return backend
        for info in scan.infos:
            if info.name == name and info.error is not None:
                raise BackendLoadError(name, f"{type(info.error).__name__}: {info.error}") from (
                    info.error
                )
        installed = sorted(scan.backends)
        raise BackendNotFoundError(
            name,
            installed=installed,
            suggestion=nearest(name, installed),
            failed=scan.failed,
            filtered=scan.filtered,
        ) from _only_failure(scan)

    def create_adapter(self, config: Config = None) -> PersistenceAdapter:
        """Build an adapter (no I/O: open it with ``async with``) from configuration.

        ``config`` is a URL (``memory://``, ``postgresql://...``), a bare backend
        name, or a mapping ``{"backend": name, **options}``. None reads
        ``CHAT_PERSISTENCE_URL``; with that unset it falls back to ``memory://``
        and logs a warning that history will not outlive the process.
        """
        backend, raw = self._resolve(config)
        options = structure_options(backend, raw)
        try:
            return backend.factory(options)
        except ConfigError:
            raise
        except Exception as err:
            raise BackendLoadError(
                backend.name, f"could not create the adapter: {type(err).__name__}: {err}"
            ) from err

    def _resolve(self, config: Config) -> tuple[Backend, Mapping[str, Any]]:
        if config is None:
            config = os.environ.get(URL_ENV) or None
            if config is None:
                warn(
                    "%s is not set: using %s, so chat history will not survive this process",
                    URL_ENV,
                    DEFAULT_URL,
                )
                config = DEFAULT_URL
        if isinstance(config, str):
            return self._resolve_url(config)
        if isinstance(config, Mapping):
            options = dict(config)
            name = options.pop("backend", None)
            if not isinstance(name, str):
                raise ConfigError(
                    "configuration mapping needs a 'backend' key naming the backend "
                    f"(installed: {', '.join(sorted(self._scanned().backends))})",
                    option="backend",
                )
            return self.get_backend(name), options
        raise ConfigError(
            f"configuration must be a URL string, a mapping or None, not {type(config).__name__}"
        )

    def _resolve_url(self, url: str) -> tuple[Backend, Mapping[str, Any]]:
        if "://" not in url:
            if url.strip() == "":
                raise ConfigError("configuration URL is empty")
            if "=" in url or any(c.isspace() for c in url):
                raise ConfigError(
                    f"configuration {redact(url)!r} is neither a URL nor a backend name "
                    "(a libpq keyword string? give a URL: postgresql://user@host/db)",
                    option="url",
                )
            return self.get_backend(url), {}
        parts = _split_url(url)
        backend = self._backend_for_scheme(parts.scheme.lower())
        _check_url_parameters(backend, url, parts.query)
        try:
            options = backend.url_options(url)
        except ConfigError:
            raise
        except ValueError as err:
            raise ConfigError(
                f"malformed URL {redact(url)!r} for backend {backend.name!r}: {redact(str(err))}",
                backend=backend.name,
                option="url",
            ) from None
        return backend, options

    def _backend_for_scheme(self, scheme: str) -> Backend:
        scan = self._scanned()
        name = scan.schemes.get(scheme)
        if name is not None:
            return self.get_backend(name)
        known = sorted(scan.schemes)
        close = nearest(scheme, known)
        hint = f"; did you mean '{close}://'?" if close else ""
        # A URL scheme that matches a backend which failed to load: say why.
        if scheme in scan.failed:
            self.get_backend(scheme)
        # Any plugin that failed may be the one that handles this scheme.
        failed = "".join(
            f"; plugin {plugin!r} failed to load: {type(err).__name__}: {err}"
            for plugin, err in scan.failed.items()
        )
        filtered = f"; {scan.filtered}" if scan.filtered else ""
        raise ConfigError(
            f"no backend handles URL scheme {scheme!r}; known schemes: "
            f"{', '.join(known) or '(none)'}{hint}{failed}{filtered}",
            option="url",
            valid=known,
        ) from _only_failure(scan)

    def _scanned(self) -> Scan:
        with self._lock:
            if self._scan is None:
                self._scan = self._load()
            return self._scan

    def _load(self) -> Scan:
        loader = Loader(self._group)
        loader.load_entry_points(allow_list())
        for name, plugin in self._by_hand.items():
            loader.add(plugin, Source(plugin=name, distribution=None, version=None))
        return loader.scan()


def _only_failure(scan: Scan) -> BaseException | None:
    """The error of the one plugin that failed, to chain; None if not exactly one."""
    return next(iter(scan.failed.values())) if len(scan.failed) == 1 else None


def _split_url(url: str) -> SplitResult:
    """``url`` split, or a ``ConfigError`` (with no secret in it) if it is malformed."""
    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise ConfigError(f"malformed URL {redact(url)!r}: {err}", option="url") from None
    if not parts.scheme:
        raise ConfigError(f"malformed URL {redact(url)!r}: it has no scheme", option="url")
    return parts


def _check_url_parameters(backend: Backend, url: str, query: str) -> None:
    """Every query parameter of ``url`` is one the backend takes, or a
    ``ConfigError`` naming the nearest (for backends that declare what they take)."""
    if backend.url_parameters is None:
        return
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigError(
            f"malformed query string in URL {redact(url)!r}: expected name=value pairs "
            "joined by '&'",
            backend=backend.name,
            option="url",
        ) from None
    valid = sorted(set(backend.url_parameters()))
    for key, _ in pairs:
        if key not in valid:
            raise unknown_option(backend.name, key, valid, what="URL parameter")


default_registry = Registry()
"""The process-wide registry the module-level functions use."""


def available_backends() -> list[BackendInfo]:
    """Every backend found, with the distribution and version that provides it, and
    every plugin that failed to load, with its error."""
    return default_registry.available_backends()


def create_adapter(config: Config = None) -> PersistenceAdapter:
    """Build an adapter from a URL, a mapping, or ``CHAT_PERSISTENCE_URL`` (no I/O)."""
    return default_registry.create_adapter(config)


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin object by hand in the process-wide registry."""
    return default_registry.register_plugin(plugin, name)


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered by hand from the process-wide registry."""
    default_registry.unregister_plugin(name)
