"""The ``chat-persistence`` command line.

Not imported by ``chat_persistence``: the library never pays for click, and the
commands import what they need (the contract suite, a backend's driver) lazily.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import click

from ._errors import (
    BackendLoadError,
    BackendNotFoundError,
    ConfigError,
    PersistenceError,
    SchemaMismatchError,
    StorageUnavailableError,
)
from ._protocol import Capability, PersistenceAdapter
from ._redact import redact
from ._table import summary, table

if TYPE_CHECKING:
    from ._info import BackendInfo
    from ._registry import Registry

# asyncio, the registry (attrs, pluggy) and the demo load in the commands that use
# them: `chat-persistence --help` costs click and little else.

EXIT_FAILED = 1
"""What was checked is wrong: a schema mismatch, a failed contract check."""
EXIT_CONFIG = 2
"""The command could not run: bad configuration, unknown backend, store unreachable."""

_CONFIG_ERRORS = (ConfigError, BackendNotFoundError, BackendLoadError, StorageUnavailableError)


class CommandError(click.ClickException):
    """What was checked is wrong: printed on one line, exit status 1."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class CannotRunError(CommandError):
    """The command could not run (configuration, backend, store): exit status 2."""

    exit_code = EXIT_CONFIG


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        # Every error is one redacted line: a traceback may show a connection string.
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except PersistenceError as err:
            failure = CannotRunError if isinstance(err, _CONFIG_ERRORS) else CommandError
            raise failure(_one_line(err)) from None
        except Exception as err:
            # A bug in a backend (or here): what was run is wrong, so exit 1.
            raise CommandError(f"unexpected {type(err).__name__}: {_one_line(err)}") from None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    cause = err.__cause__
    if isinstance(err, StorageUnavailableError) and cause is not None:
        # The driver's first line is what matters; adapters often quote it already.
        said = " ".join((str(cause).splitlines() or [""])[0].split())
        if said not in text:
            text += f" ({type(cause).__name__}: {said})"
    return redact(text)


def _registry(ctx: click.Context) -> Registry:
    """The registry to use: ``obj`` when a host or a test passes one, else the
    process-wide one."""
    from ._registry import Registry, default_registry

    obj = ctx.find_object(Registry)
    return obj if obj is not None else default_registry


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chat-persistence", prog_name="chat-persistence")
@click.option("-v", "--verbose", count=True, help="Also show the log of the drivers (-vv: debug).")
def main(verbose: int) -> None:
    """Durable chat history: inspect backends, print DDL, check a schema, run the
    contract suite, see a demo."""
    _configure_logging(verbose)


def _configure_logging(verbose: int) -> None:
    """chat-persistence's own warnings always; the drivers' (a pool retrying, say)
    only with -v, since the error they lead to is reported anyway."""
    root = logging.getLogger()
    if root.handlers:
        return  # the host (or pytest) configured logging already
    handler = logging.StreamHandler()
    handler.setFormatter(_RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    if verbose == 0:
        handler.addFilter(_quiet_drivers)
    root.addHandler(handler)
    root.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG))


class _RedactingFormatter(logging.Formatter):
    """A driver's log line (a pool failing to connect, say) may quote its conninfo."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _quiet_drivers(record: logging.LogRecord) -> bool:
    return record.name.startswith("chat_persistence") or record.levelno >= logging.ERROR


# -- backends ---------------------------------------------------------------


@main.command()
@click.pass_context
def backends(ctx: click.Context) -> None:
    """List the installed backends and the plugins that failed to load.

    Exits 0 even when some plugin failed: the others still work. Set
    CHAT_PERSISTENCE_PLUGINS=name,name to load only the plugins you name.
    """
    infos = _registry(ctx).available_backends()
    rows = [
        [
            i.name,
            ", ".join(f"{s}://" for s in b.schemes) or "-",
            i.distribution or "(registered by hand)",
            i.version or "-",
            summary(b.description) or "-",
        ]
        for i in infos
        if i.ok and (b := i.backend) is not None
    ]
    if rows:
        click.echo("Installed backends:\n")
        click.echo(table(["NAME", "SCHEMES", "DISTRIBUTION", "VERSION", "DESCRIPTION"], rows))
    else:
        click.echo("No backends installed. Install one: pip install chat-persistence-memory")
    problems = _problems(infos)
    if problems:
        click.echo(f"\nPlugins that failed to load ({len(problems)}):\n")
        for who, err in problems:
            click.echo(f"  {who}\n    {type(err).__name__}: {_one_line(err)}")
        click.echo(
            "\nThe backends above still work. To skip a broken plugin, set "
            "CHAT_PERSISTENCE_PLUGINS to the plugins you want, comma-separated."
        )


def _problems(infos: Sequence[BackendInfo]) -> list[tuple[str, BaseException]]:
    """One row per error: a backend name claimed twice shares one error."""
    rows: list[tuple[str, BaseException]] = []
    seen: set[int] = set()
    for info in infos:
        err = info.error
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if info.backend is not None:
            who = f"backend {info.name!r}"
        else:
            source = f" from {info.distribution} {info.version}" if info.distribution else ""
            who = f"plugin {info.plugin!r}{source}"
        rows.append((who, err))
    return rows


# -- ddl --------------------------------------------------------------------


@main.command()
@click.option("--backend", default="postgres", show_default=True, help="Backend to ask.")
@click.option(
    "--messages-table", default="chat_messages", show_default=True, help="Messages table name."
)
@click.option(
    "--sessions-table", default="chat_sessions", show_default=True, help="Sessions table name."
)
@click.pass_context
def ddl(ctx: click.Context, backend: str, messages_table: str, sessions_table: str) -> None:
    """Print the reference DDL of the column contract for the given table names.

    The host owns its schema and migrations; this is the starting point. Table
    names may be schema-qualified (app.chat_messages).
    """
    if messages_table == sessions_table:
        raise CannotRunError(
            f"--messages-table and --sessions-table both name {messages_table!r}: "
            "the two tables need two names"
        )
    found = _registry(ctx).get_backend(backend)
    if found.reference_ddl is None:
        raise CannotRunError(
            f"backend {backend!r} has no reference DDL (it does not use SQL tables)"
        )
    try:
        text = found.reference_ddl({"messages": messages_table, "sessions": sessions_table})
    except ValueError as err:
        if isinstance(err, PersistenceError):
            raise
        raise CannotRunError(_one_line(err)) from err
    click.echo(text.rstrip("\n"))


# -- check ------------------------------------------------------------------


@main.command()
@click.argument("url")
@click.pass_context
def check(ctx: click.Context, url: str) -> None:
    """Connect to URL and check its tables against the column contract.

    Exits 0 when they match, 1 listing every missing table and column, and 2 when
    the configuration is wrong or the store cannot be reached.
    """
    adapter = _registry(ctx).create_adapter(url)
    if not _schema_matches(adapter, url):
        ctx.exit(EXIT_FAILED)
    if Capability.SCHEMA_VALIDATION in adapter.capabilities:
        click.echo(f"OK: {redact(url)} matches the column contract")
    else:
        click.echo(f"OK: {redact(url)} opened (this backend has no schema to check)")


def _schema_matches(adapter: PersistenceAdapter, url: str) -> bool:
    """Open ``adapter`` and validate its schema; print what is missing if it does not
    match. Errors other than a mismatch (the store unreachable) propagate."""

    async def probe() -> None:
        async with adapter:
            await adapter.validate_schema()

    import asyncio

    try:
        asyncio.run(probe())
    except SchemaMismatchError as err:
        click.echo(f"Schema mismatch at {redact(url)}:")
        for table in err.missing_tables:
            click.echo(f"  missing table {table}")
        for table, columns in err.missing_columns.items():
            for column in columns:
                click.echo(f"  table {table}: missing column {column}")
        for problem in err.other_problems:
            click.echo(f"  {redact(problem)}")
        click.echo("Print the reference DDL with: chat-persistence ddl --help")
        return False
    return True


# -- contract ---------------------------------------------------------------


@main.command()
@click.argument("url")
@click.option(
    "--only", "only", multiple=True, metavar="NAME", help="Run only this check (repeatable)."
)
@click.option(
    "--require",
    "require",
    multiple=True,
    type=click.Choice([c.value for c in Capability]),
    help="A capability the backend must declare, else the run fails (repeatable).",
)
@click.pass_context
def contract(ctx: click.Context, url: str, only: tuple[str, ...], require: tuple[str, ...]) -> None:
    """Run the shared contract suite against the backend at URL.

    Every check uses fresh random thread ids and deletes what it wrote, so it is
    safe against a live database. Exits 1 when any check failed, or when the
    backend lacks a capability given with --require.
    """
    runner = _contract_runner()
    # One probe first: against missing tables or an unreachable store every check
    # would fail for the same reason, so say it once.
    if not _schema_matches(_registry(ctx).create_adapter(url), url):
        click.echo("Contract not run: the schema does not match.")
        ctx.exit(EXIT_FAILED)
    kwargs = _contract_options(runner, only, require)
    try:
        report = runner(url, **kwargs)
    except ValueError as err:  # an unknown --only name, a bad target
        if isinstance(err, PersistenceError):
            raise
        raise CannotRunError(_one_line(err)) from err
    if inspect.isawaitable(report):
        import asyncio

        report = asyncio.run(_await(report))
    click.echo(redact(report.format()))
    if not report.passed:
        ctx.exit(EXIT_FAILED)


def _contract_runner() -> Callable[..., Any]:
    """The installed suite's ``run_contract``, or a ``CannotRunError`` saying why not."""
    try:
        suite = importlib.import_module("chat_persistence_contract")
    except ImportError as err:
        if err.name != "chat_persistence_contract":
            raise CannotRunError(
                f"the contract suite failed to import: {type(err).__name__}: {err}"
            ) from err
        raise CannotRunError(
            "the contract suite is not installed; install it with: "
            "pip install chat-persistence-contract"
        ) from err
    run_contract = getattr(suite, "run_contract", None)
    if not callable(run_contract):
        raise CannotRunError("this chat-persistence-contract has no run_contract(); upgrade it")
    return cast(Callable[..., Any], run_contract)


def _contract_options(
    runner: Callable[..., Any], only: tuple[str, ...], require: tuple[str, ...]
) -> dict[str, Any]:
    """The runner's keyword arguments for ``--only`` and ``--require``, if it takes them."""
    taken = inspect.signature(runner).parameters
    kwargs: dict[str, Any] = {}
    if only:
        if "only" not in taken:
            raise CannotRunError(
                "this version of chat-persistence-contract cannot run selected checks (--only)"
            )
        kwargs["only"] = list(only)
    if require:
        if "required_capabilities" not in taken:
            raise CannotRunError(
                "this version of chat-persistence-contract cannot require capabilities (--require)"
            )
        kwargs["required_capabilities"] = list(require)
    return kwargs


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


# -- demo -------------------------------------------------------------------


@main.command()
@click.argument("url", default="memory://")
@click.option("--keep", is_flag=True, help="Keep the demo thread in a durable store.")
@click.pass_context
def demo(ctx: click.Context, url: str, keep: bool) -> None:
    """Run a scripted two-session conversation through the backend at URL
    (default memory://), then show what it stored and how archiving works.

    It writes to a fresh random thread and, on a durable store, deletes it at
    the end unless --keep is given.
    """
    import asyncio

    from ._demo import Demo

    adapter = _registry(ctx).create_adapter(url)
    asyncio.run(Demo(adapter, url, keep=keep).run())
