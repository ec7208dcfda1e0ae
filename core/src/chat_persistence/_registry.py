"""Finding backends (entry points and hand-registered plugins) and creating adapters.

pluggy's own entry-point loader stops at the first plugin that fails to import;
here every plugin is loaded, registered and called on its own, so one broken
plugin is reported and never hides the others.
"""

from __future__ import annotations

import difflib
import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import SplitResult, parse_qsl, urlsplit

import attrs

from ._errors import BackendLoadError, BackendNotFoundError, ConfigError
from ._hooks import PROJECT, Backend, BackendInfo, BackendSpec
from ._options import structure_options, unknown_option
from ._protocol import PersistenceAdapter
from ._redact import redact

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

logger = logging.getLogger("chat_persistence")

URL_ENV = "CHAT_PERSISTENCE_URL"
PLUGINS_ENV = "CHAT_PERSISTENCE_PLUGINS"
DEFAULT_URL = "memory://"

Config = str | Mapping[str, Any] | None


@attrs.define
class _Scan:
    infos: list[BackendInfo]
    backends: dict[str, Backend]
    schemes: dict[str, str]
    failed: dict[str, BaseException]
    filtered: str | None = None
    """What the plugin allow-list left out, for errors that a left-out plugin explains."""


@attrs.define
class _Source:
    plugin: str
    distribution: str | None
    version: str | None


class Registry:
    """The backends this process can use.

    Entry points of the ``chat_persistence`` group are scanned once, lazily;
    ``CHAT_PERSISTENCE_PLUGINS`` (comma-separated entry-point names) limits which
    are loaded. Plugins registered by hand are always used.
    """

    def __init__(self, *, group: str = PROJECT) -> None:
        self._group = group
        self._by_hand: dict[str, object] = {}
        self._scan: _Scan | None = None
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
        close = difflib.get_close_matches(name, installed, n=1, cutoff=0.6)
        raise BackendNotFoundError(
            name,
            installed=installed,
            suggestion=close[0] if close else None,
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
                logger.warning(
                    "%s is not set: using %s, so chat history will not survive this process",
                    URL_ENV,
                    DEFAULT_URL,
                )
                config = DEFAULT_URL
        if isinstance(config, str):
            return self._resolve_url(config)
        if isinstance(config, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
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
        close = difflib.get_close_matches(scheme, known, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}://'?" if close else ""
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

    def _scanned(self) -> _Scan:
        with self._lock:
            if self._scan is None:
                self._scan = self._load()
            return self._scan

    def _load(self) -> _Scan:
        loader = _Loader(self._group)
        loader.load_entry_points(_allow_list())
        for name, plugin in self._by_hand.items():
            loader.add(plugin, _Source(plugin=name, distribution=None, version=None))
        return loader.scan()


class _Loader:
    """One scan of the plugins: each loaded, registered and called on its own."""

    def __init__(self, group: str) -> None:
        import pluggy  # on first scan, so that importing chat_persistence stays cheap

        self.group = group
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(BackendSpec)
        self.failures: list[BackendInfo] = []
        self.sources: dict[str, _Source] = {}
        self.filtered: str | None = None

    def load_entry_points(self, allowed: set[str] | None) -> None:
        from importlib.metadata import entry_points

        found = list(entry_points(group=self.group))
        if allowed is not None:
            self._note_filter(allowed, {ep.name for ep in found})
        for ep in found:
            if allowed is not None and ep.name not in allowed:
                continue
            source = _source_of(ep)
            if self.pm.has_plugin(source.plugin) or self._failed(source.plugin):
                # Two distributions with one entry-point name: load both, so that a
                # backend they both claim is reported as a conflict, not hidden.
                source = attrs.evolve(source, plugin=f"{ep.name} ({source.distribution})")
            try:
                plugin = ep.load()
            except Exception as err:
                self.failures.append(_failure(source, err))
                continue
            self.add(plugin, source)

    def _note_filter(self, allowed: set[str], installed: set[str]) -> None:
        missing = sorted(allowed - installed)
        if missing:
            logger.warning(
                "%s names plugin(s) that are not installed: %s; installed plugins: %s",
                PLUGINS_ENV,
                ", ".join(missing),
                ", ".join(sorted(installed)) or "(none)",
            )
        skipped = sorted(installed - allowed)
        if skipped:
            self.filtered = (
                f"{PLUGINS_ENV}={os.environ.get(PLUGINS_ENV, '')!r} "
                f"skipped installed plugin(s): {', '.join(skipped)}"
            )

    def _failed(self, plugin: str) -> bool:
        return any(f.plugin == plugin for f in self.failures)

    def add(self, plugin: object, source: _Source) -> None:
        registered = False
        try:
            self.pm.register(plugin, name=source.plugin)
            registered = True
            self.pm.check_pending()
            if not self.pm.get_hookcallers(plugin):
                raise TypeError(
                    "implements no chat_persistence hook (is @hookimpl missing "
                    "from chat_persistence_backends?)"
                )
        except Exception as err:
            if registered:
                self.pm.unregister(plugin)
            self.failures.append(_failure(source, err))
        else:
            self.sources[source.plugin] = source

    def _claims(self) -> dict[str, list[tuple[Backend, _Source]]]:
        found: dict[str, list[tuple[Backend, _Source]]] = {}
        for impl in self.pm.hook.chat_persistence_backends.get_hookimpls():
            source = self.sources[impl.plugin_name]
            try:
                backends = _checked_backends(impl.function())
            except Exception as err:
                self.failures.append(_failure(source, err))
                continue
            for backend in backends:
                found.setdefault(backend.name, []).append((backend, source))
        return found

    def scan(self) -> _Scan:
        infos: list[BackendInfo] = []
        usable: dict[str, Backend] = {}
        for name, claims in sorted(self._claims().items()):
            if len(claims) == 1:
                backend, source = claims[0]
                usable[name] = backend
                infos.append(
                    BackendInfo(
                        name, source.plugin, source.distribution, source.version, backend=backend
                    )
                )
                continue
            who = " and ".join(_describe(s) for _, s in claims)
            err = BackendLoadError(name, f"claimed by more than one plugin: {who}; uninstall one")
            infos += [
                BackendInfo(name, s.plugin, s.distribution, s.version, backend=b, error=err)
                for b, s in claims
            ]
        return _Scan(
            infos=infos + self.failures,
            backends=usable,
            schemes=_schemes(usable),
            failed={f.plugin: f.error for f in self.failures if f.error is not None},
            filtered=self.filtered,
        )


def _schemes(usable: Mapping[str, Backend]) -> dict[str, str]:
    """URL scheme -> backend name; the first backend to claim a scheme keeps it."""
    schemes: dict[str, str] = {}
    for name, backend in usable.items():
        for scheme in backend.schemes:
            other = schemes.setdefault(scheme.lower(), name)
            if other != name:
                logger.warning(
                    "URL scheme %r is claimed by backends %r and %r; using %r",
                    scheme,
                    other,
                    name,
                    other,
                )
    return schemes


def _only_failure(scan: _Scan) -> BaseException | None:
    """The error of the one plugin that failed, to chain; None if not exactly one."""
    return next(iter(scan.failed.values())) if len(scan.failed) == 1 else None


def _checked_backends(result: object) -> list[Backend]:
    if not isinstance(result, (list, tuple)):
        raise TypeError(
            f"chat_persistence_backends must return a list of Backend, not {type(result).__name__}"
        )
    backends: list[Backend] = []
    for item in cast(list[object], result):
        if not isinstance(item, Backend):
            raise TypeError(
                f"chat_persistence_backends returned a {type(item).__name__}, not a Backend"
            )
        backends.append(item)
    return backends


def _split_url(url: str) -> SplitResult:
    """``url`` split, or a ``ConfigError`` (with no secret in it) if it is malformed."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
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


def _allow_list() -> set[str] | None:
    raw = os.environ.get(PLUGINS_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _source_of(ep: EntryPoint) -> _Source:
    dist = ep.dist
    return _Source(
        plugin=ep.name,
        distribution=dist.name if dist is not None else None,
        version=dist.version if dist is not None else None,
    )


def _describe(source: _Source) -> str:
    if source.distribution is None:
        return f"plugin {source.plugin!r} (registered by hand)"
    return f"plugin {source.plugin!r} from {source.distribution} {source.version}"


def _failure(source: _Source, err: BaseException) -> BackendInfo:
    return BackendInfo(
        name=source.plugin,
        plugin=source.plugin,
        distribution=source.distribution,
        version=source.version,
        error=err,
    )


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
