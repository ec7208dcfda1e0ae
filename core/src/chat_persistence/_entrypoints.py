"""The entry points of one group, and a distribution's version, without importing
``importlib.metadata`` when nothing calls for it.

``importlib.metadata`` costs about 20 ms to import (it pulls in ``email``,
``zipfile`` and ``pathlib``), more than everything else ``create_adapter("memory://")``
does. Where the environment is plain (every ``sys.path`` entry a folder, no import
hook that finds distributions of its own) the installed distributions are folders
named ``*.dist-info`` or ``*.egg-info`` (the PyPA "recording installed projects"
spec), and this module reads them exactly as ``importlib.metadata`` does: the
same folders in the same order, the first distribution of a name on ``sys.path``
shadowing the later ones, the same ``entry_points.txt`` and ``METADATA`` reading.
Anything else (a zip file or an egg on ``sys.path``, a finder of another kind, a
folder name it would read differently) is left to ``importlib.metadata`` itself.
Nothing is cached: every call reads the disk, as ``importlib.metadata`` does.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Iterator
from importlib import import_module
from importlib.machinery import PathFinder
from typing import NamedTuple

_INFO_SUFFIXES = (".dist-info", ".egg-info")
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")
_LINE = re.compile(r".*?(?:\r\n|\r|\n)|.+", re.DOTALL)
_UNREADABLE = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


class EntryPoint(NamedTuple):
    """One entry point, with the name and version of the distribution declaring it."""

    name: str
    value: str
    distribution: str | None
    version: str | None

    def load(self) -> object:
        """The module (``module``) or object (``module:attr``) the entry point names."""
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(
                f"entry point {self.name!r} = {self.value!r} names no module "
                "(expected 'module' or 'module:attr')"
            )
        target: object = import_module(match.group("module"))
        for attr in (match.group("attr") or "").split("."):
            if attr:
                target = getattr(target, attr)
        return target


class _Unplain(Exception):
    """The environment holds something only ``importlib.metadata`` reads."""


def entry_points(group: str) -> list[EntryPoint]:
    """Every entry point of ``group``, in ``importlib.metadata.entry_points`` order."""
    try:
        infos = list(_distributions())
    except _Unplain:
        return _entry_points_by_importlib(group)
    found: list[EntryPoint] = []
    for info in infos:
        pairs = _pairs(info, group)
        if pairs:
            name, version = _name_and_version(info)
            found += [EntryPoint(n, v, name, version) for n, v in pairs]
    return found


def version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None if it is not installed."""
    wanted = _normalize(distribution)
    try:
        info = next((i for i in _distributions() if _stem_key(i) == wanted), None)
    except _Unplain:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as metadata_version

        try:
            return metadata_version(distribution)
        except PackageNotFoundError:
            return None
    return None if info is None else _name_and_version(info)[1]


def _entry_points_by_importlib(group: str) -> list[EntryPoint]:
    from importlib.metadata import entry_points as metadata_entry_points

    return [
        EntryPoint(
            ep.name,
            ep.value,
            ep.dist.name if ep.dist is not None else None,
            ep.dist.version if ep.dist is not None else None,
        )
        for ep in metadata_entry_points(group=group)
    ]


def _distributions() -> Iterator[str]:
    """The metadata folders of the installed distributions, the first of each name
    only, in the order ``importlib.metadata`` finds them; ``_Unplain`` if it would
    find them some other way."""
    finders = [f for f in sys.meta_path if getattr(f, "find_distributions", None) is not None]
    if finders != [PathFinder]:
        raise _Unplain
    seen: set[str] = set()
    for entry in list(sys.path):
        for info in _infos_in(entry):
            key = _stem_key(info)
            if key not in seen:
                seen.add(key)
                yield info


def _infos_in(entry: object) -> list[str]:
    if not isinstance(entry, str) or os.path.basename(entry).lower().endswith(".egg"):
        raise _Unplain
    try:
        children = os.listdir(entry or ".")
    except Exception:
        if os.path.isfile(entry):
            raise _Unplain from None  # a zip file: importlib.metadata reads inside it
        return []
    grouped: dict[str, list[str]] = {}
    for child in children:
        low = child.lower()
        if not low.endswith(_INFO_SUFFIXES):
            continue
        if os.path.splitext(child)[1] not in _INFO_SUFFIXES:
            raise _Unplain  # it would name this one from its METADATA, not the folder
        key = _normalize(low.rpartition(".")[0].partition("-")[0])
        grouped.setdefault(key, []).append(os.path.join(entry, child))
    return [info for infos in grouped.values() for info in infos]


def _stem_key(info: str) -> str:
    return _normalize(os.path.basename(info).rpartition(".")[0].partition("-")[0])


@functools.cache
def _normalize(name: str) -> str:
    """PEP 503's normalized name with ``_`` for ``-``, as ``importlib.metadata``
    keys distributions (``re.sub(r"[-_.]+", "-", name).lower()``, without a regex
    to compile)."""
    folded = name.lower().replace("-", "_").replace(".", "_")
    while "__" in folded:
        folded = folded.replace("__", "_")
    return folded


def _read(info: str, filename: str) -> str | None:
    try:
        with open(os.path.join(info, filename), encoding="utf-8") as stream:
            return stream.read()
    except _UNREADABLE:
        return None


def _pairs(info: str, group: str) -> list[tuple[str, str]]:
    """``entry_points.txt``'s ``name = value`` lines under ``[group]``; a line with
    no ``=`` under any section raises ``TypeError``, as in ``importlib.metadata``."""
    section: str | None = None
    pairs: list[tuple[str, str]] = []
    for raw in (_read(info, "entry_points.txt") or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section is not None:
            name, equals, value = line.partition("=")
            if not equals:
                raise TypeError(f"{info}/entry_points.txt: {line!r} is not 'name = value'")
            if section == group:
                pairs.append((name.strip(), value.strip()))
    return pairs


def _name_and_version(info: str) -> tuple[str | None, str | None]:
    """``Name`` and ``Version`` of a distribution's ``METADATA`` (``PKG-INFO`` for an
    egg), read as the ``email`` parser ``importlib.metadata`` uses reads them: the
    headers end at the first line that is not one, the first of a repeated header
    counts, a folded one goes on over its indented lines."""
    text = _read(info, "METADATA") or _read(info, "PKG-INFO") or ""
    headers: dict[str, str] = {}
    current: str | None = None
    for line in _LINE.findall(text):
        if line[:1] in (" ", "\t"):
            if current is not None:
                headers[current] += line
            continue
        name, colon, value = line.partition(":")
        if not colon or any(c <= " " or c > "~" for c in name):
            break
        current = name.lower() if name and name.lower() not in headers else None
        if current is not None:
            headers[current] = value.lstrip(" \t")
    return _header(headers, "name"), _header(headers, "version")


def _header(headers: dict[str, str], name: str) -> str | None:
    value = headers.get(name)
    return None if value is None else value.rstrip("\r\n")
