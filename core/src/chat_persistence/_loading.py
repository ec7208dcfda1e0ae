"""One scan of the plugins: entry points and hand-registered plugin objects.

pluggy's own entry-point loader stops at the first plugin that fails to import;
here every plugin is loaded, registered and called on its own, so one broken
plugin is reported and never hides the others.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple, cast

from ._entrypoints import EntryPoint, entry_points
from ._errors import BackendLoadError
from ._hooks import PROJECT, Backend, BackendSpec

if TYPE_CHECKING:
    from ._info import BackendInfo


def warn(message: str, *args: object) -> None:
    """Log a warning on the ``chat_persistence`` logger (imported only to warn:
    ``logging`` is a cost the common path never needs)."""
    import logging

    logging.getLogger("chat_persistence").warning(message, *args)


PLUGINS_ENV = "CHAT_PERSISTENCE_PLUGINS"


class Scan:
    """What one scan found. Its ``infos`` (``available_backends()``) are built when
    first asked for: ``create_adapter`` needs only ``backends`` and ``schemes``."""

    __slots__ = ("_claims", "_failures", "_infos", "backends", "failed", "filtered", "schemes")

    def __init__(
        self,
        claims: list[tuple[str, Backend, Source, BaseException | None]],
        failures: list[BackendInfo],
        backends: dict[str, Backend],
        filtered: str | None,
    ) -> None:
        self._claims = claims
        self._failures = failures
        self._infos: list[BackendInfo] | None = None
        self.backends = backends
        self.schemes = _schemes(backends)
        self.failed = {f.plugin: f.error for f in failures if f.error is not None}
        self.filtered = filtered
        """What the plugin allow-list left out, for errors that a left-out plugin explains."""

    @property
    def infos(self) -> list[BackendInfo]:
        """Every backend claimed (each with its error if claimed twice), then every
        plugin that failed."""
        if self._infos is None:
            from ._info import BackendInfo

            self._infos = [
                BackendInfo(name, s.plugin, s.distribution, s.version, backend=b, error=err)
                for name, b, s, err in self._claims
            ] + self._failures
        return self._infos


# A NamedTuple, not an attrs class: building an attrs class costs about 1 ms, paid
# by every process that creates an adapter.
class Source(NamedTuple):
    """Where a plugin came from."""

    plugin: str
    distribution: str | None
    version: str | None


class Loader:
    """One scan of the plugins: each loaded, registered and called on its own."""

    def __init__(self, group: str) -> None:
        import pluggy  # on first scan, so that importing chat_persistence stays cheap

        self.group = group
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(BackendSpec)
        self.failures: list[BackendInfo] = []
        self.sources: dict[str, Source] = {}
        self.filtered: str | None = None

    def load_entry_points(self, allowed: set[str] | None) -> None:
        found = entry_points(self.group)
        if allowed is not None:
            self._note_filter(allowed, {ep.name for ep in found})
        for ep in found:
            if allowed is not None and ep.name not in allowed:
                continue
            source = _source_of(ep)
            if self.pm.has_plugin(source.plugin) or self._failed(source.plugin):
                # Two distributions with one entry-point name: load both, so that a
                # backend they both claim is reported as a conflict, not hidden.
                source = source._replace(plugin=f"{ep.name} ({source.distribution})")
            try:
                plugin = ep.load()
            except Exception as err:
                self.failures.append(_failure(source, err))
                continue
            self.add(plugin, source)

    def _note_filter(self, allowed: set[str], installed: set[str]) -> None:
        missing = sorted(allowed - installed)
        if missing:
            warn(
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

    def add(self, plugin: object, source: Source) -> None:
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

    def _claims(self) -> dict[str, list[tuple[Backend, Source]]]:
        found: dict[str, list[tuple[Backend, Source]]] = {}
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

    def scan(self) -> Scan:
        claimed: list[tuple[str, Backend, Source, BaseException | None]] = []
        usable: dict[str, Backend] = {}
        for name, claims in sorted(self._claims().items()):
            if len(claims) == 1:
                backend, source = claims[0]
                usable[name] = backend
                claimed.append((name, backend, source, None))
                continue
            who = " and ".join(_describe(s) for _, s in claims)
            err = BackendLoadError(name, f"claimed by more than one plugin: {who}; uninstall one")
            claimed += [(name, b, s, err) for b, s in claims]
        return Scan(claimed, self.failures, usable, self.filtered)


def _schemes(usable: Mapping[str, Backend]) -> dict[str, str]:
    """URL scheme -> backend name; the first backend to claim a scheme keeps it."""
    schemes: dict[str, str] = {}
    for name, backend in usable.items():
        for scheme in backend.schemes:
            other = schemes.setdefault(scheme.lower(), name)
            if other != name:
                warn(
                    "URL scheme %r is claimed by backends %r and %r; using %r",
                    scheme,
                    other,
                    name,
                    other,
                )
    return schemes


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


def allow_list() -> set[str] | None:
    raw = os.environ.get(PLUGINS_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _source_of(ep: EntryPoint) -> Source:
    return Source(plugin=ep.name, distribution=ep.distribution, version=ep.version)


def _describe(source: Source) -> str:
    if source.distribution is None:
        return f"plugin {source.plugin!r} (registered by hand)"
    return f"plugin {source.plugin!r} from {source.distribution} {source.version}"


def _failure(source: Source, err: BaseException) -> BackendInfo:
    from ._info import BackendInfo  # a plugin failed: its row is built now

    return BackendInfo(
        name=source.plugin,
        plugin=source.plugin,
        distribution=source.distribution,
        version=source.version,
        error=err,
    )
