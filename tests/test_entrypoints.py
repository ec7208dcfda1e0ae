"""The registry's entry-point reading finds what ``importlib.metadata`` finds: the
same entry points in the same order, from the same distributions (the first of a
name on ``sys.path`` shadowing the rest), with the same names and versions; and it
hands an environment it does not read itself (a zip file on ``sys.path``) to
``importlib.metadata``. Real distributions written to folders on ``sys.path``."""

from __future__ import annotations

import importlib.metadata
import re
import zipfile
from pathlib import Path

import pytest

from chat_persistence._entrypoints import EntryPoint, _normalize, entry_points, version

GROUPS = ("chat_persistence", "console_scripts", "pytest11", "other")


def by_importlib(group: str) -> list[EntryPoint]:
    return [
        EntryPoint(
            ep.name,
            ep.value,
            ep.dist.name if ep.dist is not None else None,
            ep.dist.version if ep.dist is not None else None,
        )
        for ep in importlib.metadata.entry_points(group=group)
    ]


def dist_info(root: Path, folder: str, *, metadata: str, entry_points: str | None) -> None:
    info = root / folder
    info.mkdir(parents=True)
    (info / ("PKG-INFO" if folder.endswith(".egg-info") else "METADATA")).write_text(
        metadata, encoding="utf-8"
    )
    if entry_points is not None:
        (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


EPS_ALPHA = """\
# a comment, then a blank line

[chat_persistence]
alpha = cp_alpha_plugin
  spaced   =   cp_alpha_plugin : hooks.impl  [extra]
[other]
alpha-other=cp_alpha_other
; not a comment for importlib = a value
"""


def write_environment(first: Path, second: Path) -> None:
    """Two folders of distributions: names in mixed case and spelling, an egg-info
    folder, an egg-info file, a repeated and a folded header, and distributions
    in ``second`` that ``first`` shadows."""
    dist_info(
        first,
        "alpha-1.0.dist-info",
        metadata="Metadata-Version: 2.1\nName: alpha\nName: not-this\nVersion: 1.0\n\nBody: x\n",
        entry_points=EPS_ALPHA,
    )
    dist_info(
        first,
        "Beta_Pkg-2.0.dist-info",
        metadata="Metadata-Version: 2.1\r\nName: Beta.Pkg\r\nVersion: 2.0\r\n",
        entry_points="[chat_persistence]\nbeta = cp_beta:plugin\n",
    )
    dist_info(
        first,
        "gamma.egg-info",
        metadata="Metadata-Version: 1.0\nName: gamma\nSummary: folded\n  over two lines\n"
        "Version: 0.3\n",
        entry_points="[chat_persistence]\ngamma = cp_gamma\n",
    )
    (first / "delta-1.0.egg-info").write_text("Name: delta\nVersion: 1.0\n", encoding="utf-8")
    dist_info(
        first,
        "nometa-1.0.dist-info",
        metadata="Metadata-Version: 2.1\nName: nometa\n",
        entry_points="[chat_persistence]\nnometa = cp_nometa\n",
    )
    # Shadowed by first/: importlib.metadata never reads these.
    dist_info(
        second,
        "alpha-2.0.dist-info",
        metadata="Metadata-Version: 2.1\nName: alpha\nVersion: 2.0\n",
        entry_points="[chat_persistence]\nalpha = cp_alpha_shadowed\n",
    )
    dist_info(
        second,
        "beta.pkg-3.0.dist-info",
        metadata="Metadata-Version: 2.1\nName: beta-pkg\nVersion: 3.0\n",
        entry_points="[chat_persistence]\nbeta = cp_beta_shadowed\n",
    )
    dist_info(
        second,
        "epsilon-1.0.dist-info",
        metadata="Metadata-Version: 2.1\nName: epsilon\nVersion: 1.0\n",
        entry_points="[chat_persistence]\nalpha = cp_epsilon_same_name\n",
    )


@pytest.mark.parametrize("group", GROUPS)
def test_the_installed_entry_points_are_importlibs(group: str) -> None:
    assert entry_points(group) == by_importlib(group)


def test_the_installed_plugins_are_found() -> None:
    names = {ep.name for ep in entry_points("chat_persistence")}
    assert {"memory", "postgres", "sqlite"} <= names


@pytest.mark.parametrize("group", GROUPS)
def test_written_distributions_are_read_as_importlib_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: str
) -> None:
    write_environment(tmp_path / "first", tmp_path / "second")
    monkeypatch.syspath_prepend(str(tmp_path / "second"))
    monkeypatch.syspath_prepend(str(tmp_path / "first"))
    assert entry_points(group) == by_importlib(group)


def test_the_first_distribution_of_a_name_shadows_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_environment(tmp_path / "first", tmp_path / "second")
    monkeypatch.syspath_prepend(str(tmp_path / "second"))
    monkeypatch.syspath_prepend(str(tmp_path / "first"))
    found = {ep for ep in entry_points("chat_persistence") if ep.value.startswith("cp_")}
    assert found == {
        EntryPoint("alpha", "cp_alpha_plugin", "alpha", "1.0"),
        EntryPoint("spaced", "cp_alpha_plugin : hooks.impl  [extra]", "alpha", "1.0"),
        EntryPoint("beta", "cp_beta:plugin", "Beta.Pkg", "2.0"),
        EntryPoint("gamma", "cp_gamma", "gamma", "0.3"),
        EntryPoint("nometa", "cp_nometa", "nometa", None),
        EntryPoint("alpha", "cp_epsilon_same_name", "epsilon", "1.0"),
    }


def test_a_versions_are_importlibs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_environment(tmp_path / "first", tmp_path / "second")
    monkeypatch.syspath_prepend(str(tmp_path / "second"))
    monkeypatch.syspath_prepend(str(tmp_path / "first"))
    for name in ("chat-persistence", "attrs", "alpha", "beta_pkg", "BETA.pkg", "gamma"):
        assert version(name) == importlib.metadata.version(name)
    assert version("not-installed-anywhere") is None


def test_a_line_without_equals_fails_as_in_importlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist_info(
        tmp_path,
        "broken-1.0.dist-info",
        metadata="Name: broken\nVersion: 1.0\n",
        entry_points="[some_other_group]\nthis line has no equals sign\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TypeError):
        by_importlib("chat_persistence")
    with pytest.raises(TypeError, match=r"broken-1\.0\.dist-info"):
        entry_points("chat_persistence")


def test_a_zip_file_on_sys_path_is_left_to_importlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
        zipped.writestr(
            "zipped-1.0.dist-info/entry_points.txt", "[chat_persistence]\nzipped = cp_zipped\n"
        )
    monkeypatch.syspath_prepend(str(archive))
    found = entry_points("chat_persistence")
    assert EntryPoint("zipped", "cp_zipped", "zipped", "1.0") in found
    assert found == by_importlib("chat_persistence")
    assert version("zipped") == "1.0"


def test_a_folder_named_in_capitals_is_left_to_importlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist_info(
        tmp_path,
        "Loud-1.0.DIST-INFO",
        metadata="Name: loud\nVersion: 1.0\n",
        entry_points="[chat_persistence]\nloud = cp_loud\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert entry_points("chat_persistence") == by_importlib("chat_persistence")


def test_an_entry_point_loads_its_module_or_its_object() -> None:
    assert EntryPoint("m", "json", None, None).load() is importlib.import_module("json")
    decoder = EntryPoint("d", "json.decoder : JSONDecoder.decode", None, None).load()
    assert decoder is importlib.import_module("json.decoder").JSONDecoder.decode
    with pytest.raises(ValueError, match="names no module"):
        EntryPoint("bad", "not a module!", None, None).load()


@pytest.mark.parametrize("name", ["", "a", "A.B", "a__b", "-a-", "a-_.b", "Zope.Interface", "._-"])
def test_names_are_normalized_as_importlib_does(name: str) -> None:
    assert _normalize(name) == re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")
