"""Finding backends (entry points and hand-registered plugins) and creating adapters.

pluggy's own entry-point loader stops at the first plugin that fails to import;
here every plugin is loaded, registered and called on its own, so one broken
plugin is reported and never hides the others.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import attrs

from ._errors import BackendLoadError, BackendNotFoundError, ConfigError
from ._hooks import PROJECT, Backend, BackendInfo, BackendSpec
from ._protocol import PersistenceAdapter

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    import cattrs

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
            return self.get_backend(url), {}
        scheme = urlsplit(url).scheme.lower()
        scan = self._scanned()
        name = scan.schemes.get(scheme)
        if name is None:
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
            raise ConfigError(
                f"no backend handles URL scheme {scheme!r}; known schemes: "
                f"{', '.join(known) or '(none)'}{hint}{failed}",
                option="url",
                valid=known,
            ) from _only_failure(scan)
        backend = self.get_backend(name)
        return backend, backend.url_options(url)

    def _scanned(self) -> _Scan:
        with self._lock:
            if self._scan is None:
                self._scan = self._load()
            return self._scan

    def _load(self) -> _Scan:
        # Imported on first scan, so that importing chat_persistence stays cheap.
        from importlib.metadata import entry_points

        import pluggy

        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(BackendSpec)
        failures: list[BackendInfo] = []
        sources: dict[str, _Source] = {}

        def add(plugin: object, source: _Source) -> None:
            registered = False
            try:
                pm.register(plugin, name=source.plugin)
                registered = True
                pm.check_pending()
                if not pm.get_hookcallers(plugin):
                    raise TypeError(
                        "implements no chat_persistence hook (is @hookimpl missing "
                        "from chat_persistence_backends?)"
                    )
            except Exception as err:
                if registered:
                    pm.unregister(plugin)
                failures.append(_failure(source, err))
            else:
                sources[source.plugin] = source

        allowed = _allow_list()
        for ep in entry_points(group=self._group):
            if allowed is not None and ep.name not in allowed:
                continue
            source = _source_of(ep)
            if pm.has_plugin(source.plugin) or any(f.plugin == source.plugin for f in failures):
                # Two distributions with one entry-point name: load both, so that a
                # backend they both claim is reported as a conflict, not hidden.
                source = attrs.evolve(source, plugin=f"{ep.name} ({source.distribution})")
            try:
                plugin = ep.load()
            except Exception as err:
                failures.append(_failure(source, err))
                continue
            add(plugin, source)
        for name, plugin in self._by_hand.items():
            add(plugin, _Source(plugin=name, distribution=None, version=None))

        found: dict[str, list[tuple[Backend, _Source]]] = {}
        for impl in pm.hook.chat_persistence_backends.get_hookimpls():
            source = sources[impl.plugin_name]
            try:
                backends = _checked_backends(impl.function())
            except Exception as err:
                failures.append(_failure(source, err))
                continue
            for backend in backends:
                found.setdefault(backend.name, []).append((backend, source))

        infos: list[BackendInfo] = []
        usable: dict[str, Backend] = {}
        for name, claims in sorted(found.items()):
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
        infos += failures

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
        return _Scan(
            infos=infos,
            backends=usable,
            schemes=schemes,
            failed={f.plugin: f.error for f in failures if f.error is not None},
        )


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


def structure_options(backend: Backend, raw: Mapping[str, Any]) -> Any:
    """Turn a configuration mapping into the backend's options class, naming any
    unknown, missing or mistyped option."""
    fields = attrs.fields(backend.options)
    valid = [f.name for f in fields]
    for key in raw:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown option {key!r} for backend {backend.name!r}; "
                f"valid options: {', '.join(valid) or '(none)'}{hint}",
                backend=backend.name,
                option=str(key),
                valid=valid,
            )
    for f in fields:
        if f.default is attrs.NOTHING and f.name not in raw:
            raise ConfigError(
                f"missing option {f.name!r} for backend {backend.name!r}; "
                f"valid options: {', '.join(valid)}",
                backend=backend.name,
                option=f.name,
                valid=valid,
            )
    if not raw:
        # Every option has a default (checked above): nothing to convert, so the
        # common ``create_adapter("memory://")`` never loads cattrs.
        return backend.options()
    import cattrs

    try:
        return _options_converter().structure(dict(raw), backend.options)
    except Exception as err:
        if isinstance(err, cattrs.ClassValidationError):
            # An options class's own validators already name the option: keep theirs.
            own = [e for e in err.exceptions if isinstance(e, ConfigError)]
            if own:
                raise own[0] from None
        option: str | None = None
        if isinstance(err, cattrs.ClassValidationError):
            details = "; ".join(cattrs.transform_error(err, path="options"))
            noted = err.group_exceptions()[0]
            if noted:
                option = noted[0][1].name
        else:
            details = f"{type(err).__name__}: {err}"
        raise ConfigError(
            f"invalid options for backend {backend.name!r}: {details}",
            backend=backend.name,
            option=option,
            valid=valid,
        ) from err


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _structure_bool(value: object, _: object) -> bool:
    # bool("false") is True: URL query values are strings, so read them as words.
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected a bool (true/false), got {value!r}")


def _structure_int(value: object, _: object) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str):
        return int(value.strip())  # URL query values are strings
    raise TypeError(f"expected an int, got {type(value).__name__} {value!r}")


def _structure_float(value: object, _: object) -> float:
    if type(value) in (int, float):
        return float(cast(float, value))
    if isinstance(value, str):
        return float(value.strip())
    raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")


def _structure_str(value: object, _: object) -> str:
    # cattrs would turn anything into a string (str(5), str({...})): a typo'd value
    # must be an error, not a silently wrong option.
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")


@functools.cache
def _options_converter() -> cattrs.Converter:
    import cattrs

    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(str, _structure_str)
    return conv


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
