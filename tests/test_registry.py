"""Plugins, registry and configuration (SPEC §4), with real plugin objects and real
installed distributions: no mocks of pluggy."""

from __future__ import annotations

import importlib.metadata
import logging
import types
import uuid
from pathlib import Path
from typing import Any

import pluggy
import pytest

import chat_persistence
from chat_persistence import (
    BackendLoadError,
    BackendNotFoundError,
    ConfigError,
    PersistenceAdapter,
    PersistenceError,
    Registry,
    hookimpl,
)
from chat_persistence_memory import MemoryPersistence
from plugin_dists import (
    FakeOptions,
    Misspelled,
    NeedsPathOptions,
    Provides,
    Raises,
    RecordingMemory,
    backend,
    install_broken_plugin,
    write_distribution,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAT_PERSISTENCE_URL", raising=False)
    monkeypatch.delenv("CHAT_PERSISTENCE_PLUGINS", raising=False)


def registry_with(*plugins: object) -> Registry:
    registry = Registry()
    for plugin in plugins:
        registry.register_plugin(plugin)
    return registry


def options_of(adapter: PersistenceAdapter) -> Any:
    assert isinstance(adapter, RecordingMemory)
    return adapter.options


def failures(registry: Registry) -> dict[str, BaseException]:
    return {
        info.plugin: info.error
        for info in registry.available_backends()
        if info.error is not None and info.backend is None
    }


def usable(registry: Registry) -> set[str]:
    return {info.name for info in registry.available_backends() if info.ok}


# -- configuration -----------------------------------------------------------------


def test_url_selects_the_backend_by_scheme_and_passes_its_options() -> None:
    registry = registry_with(Provides(backend("fake")))
    adapter = registry.create_adapter("fake://host?level=3&label=x&verbose=false&ratio=2.5")
    assert options_of(adapter) == FakeOptions(level=3, label="x", verbose=False, ratio=2.5)


def test_url_scheme_is_case_insensitive() -> None:
    registry = registry_with(Provides(backend("fake")))
    assert options_of(registry.create_adapter("FAKE://")) == FakeOptions()


def test_bare_name_selects_the_backend_with_default_options() -> None:
    registry = registry_with(Provides(backend("fake")))
    assert options_of(registry.create_adapter("fake")) == FakeOptions()


def test_mapping_selects_the_backend_and_gives_its_options() -> None:
    registry = registry_with(Provides(backend("fake")))
    adapter = registry.create_adapter({"backend": "fake", "level": 7, "verbose": True})
    assert options_of(adapter) == FakeOptions(level=7, verbose=True)


def test_mapping_without_a_backend_key_is_a_config_error() -> None:
    registry = registry_with(Provides(backend("fake")))
    with pytest.raises(ConfigError) as caught:
        registry.create_adapter({"level": 1})
    assert caught.value.option == "backend"
    assert "fake" in str(caught.value)


@pytest.mark.parametrize("config", ["", "   ", 42, ["memory://"]])
def test_config_that_is_not_a_url_name_or_mapping_is_a_config_error(config: Any) -> None:
    with pytest.raises(ConfigError):
        Registry().create_adapter(config)


def test_environment_url_is_used_when_no_config_is_given(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CHAT_PERSISTENCE_URL", "fake://?level=4")
    registry = registry_with(Provides(backend("fake")))
    with caplog.at_level(logging.WARNING, logger="chat_persistence"):
        adapter = registry.create_adapter()
    assert options_of(adapter).level == 4
    assert caplog.records == []


def test_no_config_falls_back_to_memory_with_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT_PERSISTENCE_PLUGINS", "memory,postgres")
    with caplog.at_level(logging.WARNING, logger="chat_persistence"):
        adapter = Registry().create_adapter()
    assert type(adapter) is MemoryPersistence
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "CHAT_PERSISTENCE_URL" in record.getMessage()
    assert "memory://" in record.getMessage()
    assert "will not survive" in record.getMessage()


def test_empty_environment_url_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CHAT_PERSISTENCE_URL", "")
    with caplog.at_level(logging.WARNING, logger="chat_persistence"):
        assert isinstance(Registry().create_adapter(), MemoryPersistence)
    assert len(caplog.records) == 1


# -- clear errors ----------------------------------------------------------------------


def test_unknown_backend_lists_the_installed_ones_and_the_nearest() -> None:
    registry = registry_with(Provides(backend("alpha-store")))
    with pytest.raises(BackendNotFoundError) as caught:
        registry.create_adapter("alpha-stor")
    err = caught.value
    assert err.name == "alpha-stor"
    assert {"alpha-store", "memory", "postgres"} <= set(err.installed)
    assert err.suggestion == "alpha-store"
    assert "did you mean 'alpha-store'?" in str(err)
    assert "memory" in str(err)
    assert isinstance(err, LookupError)


def test_unknown_backend_far_from_every_name_has_no_suggestion() -> None:
    with pytest.raises(BackendNotFoundError) as caught:
        Registry().create_adapter({"backend": "zzzzzzzz"})
    assert caught.value.suggestion is None
    assert "did you mean" not in str(caught.value)


def test_unknown_url_scheme_lists_known_schemes_and_the_nearest() -> None:
    registry = registry_with(Provides(backend("fake")))
    with pytest.raises(ConfigError) as caught:
        registry.create_adapter("fakee://x")
    assert caught.value.option == "url"
    assert "fake" in caught.value.valid
    assert "memory" in caught.value.valid
    assert "did you mean 'fake://'?" in str(caught.value)


def test_unknown_option_names_it_the_valid_ones_and_the_nearest() -> None:
    registry = registry_with(Provides(backend("fake")))
    with pytest.raises(ConfigError) as caught:
        registry.create_adapter({"backend": "fake", "levle": 2})
    err = caught.value
    assert err.option == "levle"
    assert err.backend == "fake"
    assert err.valid == ["level", "label", "verbose", "ratio"]
    assert "did you mean 'level'?" in str(err)
    assert "level, label, verbose, ratio" in str(err)


def test_unknown_option_in_a_url_is_named() -> None:
    registry = registry_with(Provides(backend("fake")))
    with pytest.raises(ConfigError) as caught:
        registry.create_adapter("fake://?colour=red")
    assert caught.value.option == "colour"


def test_missing_required_option_is_named() -> None:
    registry = registry_with(Provides(backend("needy", options=NeedsPathOptions)))
    with pytest.raises(ConfigError) as caught:
        registry.create_adapter("needy")
    assert caught.value.option == "path"
    assert "missing option 'path'" in str(caught.value)
    assert caught.value.valid == ["path"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("level", "high"),
        ("level", [1]),
        ("label", 5),
        ("label", {"a": 1}),
        ("verbose", "maybe"),
        ("verbose", 2),
        ("ratio", "fast"),
    ],
)
def test_mistyped_option_is_named(option: str, value: object) -> None:
    registry = registry_with(Provides(backend("fake")))
    with pytest.raises(ConfigError) as caught:
        registry.create_adapter({"backend": "fake", option: value})
    assert caught.value.option == option
    assert f"options.{option}" in str(caught.value)
    assert isinstance(caught.value.__cause__, Exception)


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("Off", False), ("0", False)])
def test_boolean_options_read_words_from_urls(text: str, expected: bool) -> None:
    registry = registry_with(Provides(backend("fake")))
    assert options_of(registry.create_adapter(f"fake://?verbose={text}")).verbose is expected


def test_factory_errors_become_backend_load_errors_with_the_cause() -> None:
    def explode(options: Any) -> PersistenceAdapter:
        raise OSError("driver missing")

    registry = registry_with(Provides(backend("fragile", factory=explode)))
    with pytest.raises(BackendLoadError) as caught:
        registry.create_adapter("fragile")
    assert isinstance(caught.value.__cause__, OSError)
    assert "driver missing" in str(caught.value)


def test_config_errors_from_a_factory_pass_through() -> None:
    def picky(options: Any) -> PersistenceAdapter:
        raise ConfigError("label must not be 'plain'", backend="picky", option="label")

    registry = registry_with(Provides(backend("picky", factory=picky)))
    with pytest.raises(ConfigError) as caught:
        registry.create_adapter("picky")
    assert caught.value.option == "label"


# -- plugins that misbehave ---------------------------------------------------------------


def test_two_plugins_claiming_one_name_is_an_error_naming_both() -> None:
    registry = Registry()
    registry.register_plugin(Provides(backend("twin")), name="first-plugin")
    registry.register_plugin(Provides(backend("twin")), name="second-plugin")
    rows = [info for info in registry.available_backends() if info.name == "twin"]
    assert {info.plugin for info in rows} == {"first-plugin", "second-plugin"}
    for info in rows:
        assert isinstance(info.error, BackendLoadError)
        assert "first-plugin" in str(info.error)
        assert "second-plugin" in str(info.error)
    with pytest.raises(BackendLoadError) as caught:
        registry.create_adapter("twin")
    assert "first-plugin" in str(caught.value)
    assert "second-plugin" in str(caught.value)
    assert "memory" in usable(registry)


def test_a_plugin_whose_hook_raises_is_reported_and_the_others_work() -> None:
    boom = RuntimeError("database driver exploded")
    registry = Registry()
    registry.register_plugin(Raises(boom), name="exploding")
    registry.register_plugin(Provides(backend("fake")))
    assert failures(registry)["exploding"] is boom
    assert {"fake", "memory", "postgres"} <= usable(registry)
    assert isinstance(registry.create_adapter("fake://"), RecordingMemory)


@pytest.mark.parametrize("junk", ["memory", None, [object()], {"name": "x"}])
def test_a_plugin_whose_hook_returns_junk_is_reported(junk: Any) -> None:
    class Junk:
        @hookimpl
        def chat_persistence_backends(self) -> Any:
            return junk

    registry = Registry()
    registry.register_plugin(Junk(), name="junk")
    error = failures(registry)["junk"]
    assert isinstance(error, TypeError)
    assert "Backend" in str(error)
    assert "memory" in usable(registry)


def test_a_misspelled_hook_is_reported_and_the_others_work() -> None:
    registry = Registry()
    registry.register_plugin(Misspelled(), name="typo")
    registry.register_plugin(Provides(backend("fake")))
    error = failures(registry)["typo"]
    assert isinstance(error, pluggy.PluginValidationError)
    assert "chat_persistence_backend" in str(error)
    assert "never-seen" not in usable(registry)
    assert "fake" in usable(registry)


def test_a_plugin_with_no_hook_at_all_is_reported() -> None:
    registry = Registry()
    registry.register_plugin(object(), name="hookless")
    assert "hookimpl" in str(failures(registry)["hookless"])


def test_a_module_plugin_is_registered_under_its_name() -> None:
    module = _plugin_module(backend("from-module"))
    registry = Registry()
    assert registry.register_plugin(module) == module.__name__
    assert "from-module" in usable(registry)


def test_asking_for_a_failed_backend_raises_its_real_error_chained() -> None:
    boom = ImportError("No module named 'fancydb'")
    registry = Registry()
    registry.register_plugin(Raises(boom), name="fancy")
    with pytest.raises(BackendLoadError) as caught:
        registry.create_adapter("fancy")
    assert caught.value.__cause__ is boom
    assert "fancydb" in str(caught.value)
    assert "ImportError" in str(caught.value)


def test_an_unknown_scheme_names_the_plugin_that_failed() -> None:
    boom = ImportError("No module named 'fancydb'")
    registry = Registry()
    registry.register_plugin(Raises(boom), name="fancy")
    with pytest.raises(ConfigError) as caught:
        registry.create_adapter("fancydb://host/db")
    assert "fancy" in str(caught.value)
    assert "fancydb" in str(caught.value)
    assert caught.value.__cause__ is boom


def test_an_unknown_backend_names_every_plugin_that_failed() -> None:
    registry = Registry()
    registry.register_plugin(Raises(RuntimeError("one")), name="first")
    registry.register_plugin(Raises(RuntimeError("two")), name="second")
    with pytest.raises(BackendNotFoundError) as caught:
        registry.create_adapter("elsewhere")
    assert set(caught.value.failed) == {"first", "second"}
    assert "'first' failed to load: RuntimeError: one" in str(caught.value)
    assert "'second' failed to load: RuntimeError: two" in str(caught.value)


# -- registering by hand -------------------------------------------------------------------


def test_register_plugin_twice_under_one_name_is_refused() -> None:
    registry = Registry()
    registry.register_plugin(Provides(backend("fake")), name="p")
    with pytest.raises(ValueError, match="already registered"):
        registry.register_plugin(Provides(backend("other")), name="p")


def test_unregister_plugin_removes_its_backends() -> None:
    registry = registry_with()
    registry.register_plugin(Provides(backend("fake")), name="p")
    assert "fake" in usable(registry)
    registry.unregister_plugin("p")
    assert "fake" not in usable(registry)


def test_module_level_functions_use_the_process_registry() -> None:
    name = chat_persistence.register_plugin(Provides(backend("process-wide")))
    try:
        assert "process-wide" in {i.name for i in chat_persistence.available_backends()}
        assert isinstance(chat_persistence.create_adapter("process-wide"), RecordingMemory)
    finally:
        chat_persistence.unregister_plugin(name)
    assert "process-wide" not in {i.name for i in chat_persistence.available_backends()}


# -- entry points ----------------------------------------------------------------------------


def test_installed_backends_report_their_distribution_and_version() -> None:
    infos = {info.name: info for info in Registry().available_backends() if info.ok}
    for name, dist in (
        ("memory", "chat-persistence-memory"),
        ("postgres", "chat-persistence-postgres"),
    ):
        info = infos[name]
        assert info.distribution == dist
        assert info.version == importlib.metadata.version(dist)
        assert info.plugin == name
        assert info.backend is not None
        assert info.backend.name == name


def test_allow_list_loads_only_the_named_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_PERSISTENCE_PLUGINS", " memory , ")
    registry = registry_with(Provides(backend("fake")))
    assert usable(registry) == {"memory", "fake"}
    with pytest.raises(BackendNotFoundError):
        registry.create_adapter("postgres")


def test_empty_allow_list_loads_only_plugins_registered_by_hand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHAT_PERSISTENCE_PLUGINS", "")
    assert usable(Registry()) == set()
    assert usable(registry_with(Provides(backend("fake")))) == {"fake"}


def test_a_broken_entry_point_is_reported_and_memory_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_broken_plugin(tmp_path, monkeypatch)
    registry = Registry()
    [info] = [i for i in registry.available_backends() if i.plugin == "brokenplug"]
    assert not info.ok
    assert info.backend is None
    assert info.distribution == "broken-plugin-dist"
    assert info.version == "1.0"
    assert isinstance(info.error, RuntimeError)
    assert "fails at import" in str(info.error)
    assert {"memory", "postgres"} <= usable(registry)
    assert isinstance(registry.create_adapter("memory://"), MemoryPersistence)


def test_asking_for_a_broken_entry_point_raises_its_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_broken_plugin(tmp_path, monkeypatch)
    with pytest.raises(BackendLoadError) as caught:
        Registry().create_adapter("brokenplug")
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert "fails at import" in str(caught.value)


def test_allow_list_skips_a_broken_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_broken_plugin(tmp_path, monkeypatch)
    monkeypatch.setenv("CHAT_PERSISTENCE_PLUGINS", "memory,postgres")
    registry = Registry()
    assert all(info.ok for info in registry.available_backends())
    assert usable(registry) == {"memory", "postgres"}


def test_reload_finds_a_plugin_installed_after_the_first_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry()
    assert "brokenplug" not in failures(registry)
    install_broken_plugin(tmp_path, monkeypatch)
    assert "brokenplug" not in failures(registry)  # scanned once, lazily
    registry.reload()
    assert "brokenplug" in failures(registry)


def test_two_distributions_claiming_one_backend_are_both_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for dist in ("twin-one", "twin-two"):
        module = f"cp_test_{dist.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        write_distribution(
            tmp_path,
            dist,
            # One entry-point name in both: the second must not be silently dropped.
            entry_points={"twin": module},
            modules={module: TWIN_MODULE},
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    rows = [info for info in registry.available_backends() if info.name == "twin"]
    assert {info.distribution for info in rows} == {"twin-one", "twin-two"}
    with pytest.raises(BackendLoadError) as caught:
        registry.create_adapter("twin")
    assert "twin-one 1.0" in str(caught.value)
    assert "twin-two 1.0" in str(caught.value)
    assert {"memory", "postgres"} <= usable(registry)


TWIN_MODULE = """\
from chat_persistence import Backend, hookimpl
from chat_persistence_memory import MemoryOptions, MemoryPersistence


@hookimpl
def chat_persistence_backends():
    return [Backend("twin", lambda options: MemoryPersistence(), MemoryOptions)]
"""


def test_every_error_is_a_persistence_error() -> None:
    for error in (ConfigError, BackendLoadError, BackendNotFoundError):
        assert issubclass(error, PersistenceError)


def _plugin_module(provided: Any) -> types.ModuleType:
    module = types.ModuleType(f"cp_test_module_plugin_{uuid.uuid4().hex[:8]}")

    @hookimpl
    def chat_persistence_backends() -> list[Any]:
        return [provided]

    setattr(module, "chat_persistence_backends", chat_persistence_backends)  # noqa: B010
    return module


# -- failing fast on configuration mistakes (issue 10) -------------------------------------


def strict_backend(name: str, seen: list[str]) -> Any:
    """A backend that declares every URL parameter it takes (its own and a driver's)."""

    def url_options(url: str) -> dict[str, Any]:
        seen.append(url)
        return {}

    return backend(
        name,
        url_options=url_options,
        url_parameters=lambda: ("messages_table", "sessions_table", "sslmode", "password"),
    )


def test_a_misspelled_url_parameter_names_the_nearest_before_the_backend_sees_it() -> None:
    seen: list[str] = []
    registry = registry_with(Provides(strict_backend("strictdb", seen)))
    with pytest.raises(ConfigError) as caught:
        registry.create_adapter("strictdb://u@h/db?sslmode=require&messages_tabel=foo")
    assert caught.value.option == "messages_tabel"
    assert "did you mean 'messages_table'?" in str(caught.value)
    assert "sessions_table" in caught.value.valid
    assert seen == []
    registry.create_adapter("strictdb://u@h/db?messages_table=a&password=x")
    assert len(seen) == 1


def test_a_query_string_that_is_not_name_value_pairs_is_a_config_error() -> None:
    registry = registry_with(Provides(strict_backend("strictdb", [])))
    with pytest.raises(ConfigError) as caught:
        registry.create_adapter("strictdb://u@h/db?sslmode&password=hunter2")
    assert "malformed query string" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["memory://[::1", "://nothing", "postgresql://u:hunter2@[db/x"])
def test_a_malformed_url_is_a_config_error_without_its_secret(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Registry().create_adapter(url)
    assert "malformed URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_backends_own_url_error_becomes_a_config_error() -> None:
    def url_options(url: str) -> dict[str, Any]:
        raise ValueError(f"port could not be cast to integer value in {url!r}")

    registry = registry_with(Provides(backend("portdb", url_options=url_options)))
    with pytest.raises(ConfigError) as caught:
        registry.create_adapter("portdb://u:hunter2@h:port/db")
    assert caught.value.backend == "portdb"
    assert "port could not be cast" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "config", ["host=db password=hunter2", "dbname=chat user=app password='hunter 2'"]
)
def test_a_keyword_connection_string_is_refused_without_echoing_its_password(
    config: str,
) -> None:
    with pytest.raises(ConfigError) as caught:
        Registry().create_adapter(config)
    message = str(caught.value)
    assert "hunter" not in message
    assert "password=***" in message
    assert "postgresql://" in message  # what to give instead


def test_an_unknown_backend_name_is_shown_without_secrets() -> None:
    with pytest.raises(BackendNotFoundError) as caught:
        Registry().create_adapter("postgresql:u:hunter2@db")
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in caught.value.name


def test_the_plugin_allow_list_warns_about_a_plugin_that_is_not_installed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CHAT_PERSISTENCE_PLUGINS", "memory,postgress")
    with caplog.at_level(logging.WARNING, logger="chat_persistence"):
        names = {i.name for i in Registry().available_backends()}
    assert names == {"memory"}
    [record] = [r for r in caplog.records if "not installed" in r.getMessage()]
    assert "postgress" in record.getMessage()
    assert "postgres" in record.getMessage().split("installed plugins:")[1]


def test_a_scheme_hidden_by_the_allow_list_names_the_filter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHAT_PERSISTENCE_PLUGINS", "memory")
    with pytest.raises(ConfigError) as caught:
        Registry().create_adapter("postgresql://app@db/chat")
    message = str(caught.value)
    assert "no backend handles URL scheme 'postgresql'" in message
    assert "CHAT_PERSISTENCE_PLUGINS='memory' skipped installed plugin(s): postgres" in message
    with pytest.raises(BackendNotFoundError) as by_name:
        Registry().create_adapter({"backend": "postgres"})
    assert by_name.value.filtered is not None
    assert "CHAT_PERSISTENCE_PLUGINS" in str(by_name.value)


def test_without_an_allow_list_nothing_is_said_about_one() -> None:
    with pytest.raises(ConfigError) as caught:
        Registry().create_adapter("nosuch://x")
    assert "CHAT_PERSISTENCE_PLUGINS" not in str(caught.value)


def test_a_factory_error_quoting_its_conninfo_is_reported_without_the_secret() -> None:
    def factory(options: Any) -> PersistenceAdapter:
        raise RuntimeError("cannot parse 'host=db password=hunter2 port=x'")

    registry = registry_with(Provides(backend("leaky", factory=factory)))
    with pytest.raises(BackendLoadError) as caught:
        registry.create_adapter("leaky://")
    assert "password=***" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in caught.value.reason


def test_configuration_and_storage_errors_never_hold_a_secret() -> None:
    errors: list[PersistenceError] = [
        ConfigError("bad URL 'postgresql://app:hunter2@db/chat'", option="url"),
        chat_persistence.StorageUnavailableError("postgres", "at host=db password=hunter2"),
    ]
    for err in errors:
        assert "hunter2" not in str(err)
        assert "hunter2" not in repr(vars(err))
