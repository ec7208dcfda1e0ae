"""The ``chat-persistence`` command line.

Not imported by ``chat_persistence``: the library never pays for click, and the
commands import what they need (the contract suite, a backend's driver) lazily.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import click

from ._errors import (
    BackendLoadError,
    BackendNotFoundError,
    ConfigError,
    PersistenceError,
    SchemaMismatchError,
    StorageUnavailableError,
)
from ._hooks import BackendInfo
from ._model import (
    Message,
    Part,
    ReasoningPart,
    Session,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    UnknownPart,
)
from ._protocol import Capability, PersistenceAdapter
from ._registry import Registry, default_registry

EXIT_FAILED = 1
"""What was checked is wrong: a schema mismatch, a failed contract check."""
EXIT_CONFIG = 2
"""The command could not run: bad configuration, unknown backend, store unreachable."""

_CONFIG_ERRORS = (ConfigError, BackendNotFoundError, BackendLoadError, StorageUnavailableError)


class CommandError(click.ClickException):
    """What was checked is wrong: printed on one line, exit status 1."""

    exit_code = EXIT_FAILED


class CannotRunError(CommandError):
    """The command could not run (configuration, backend, store): exit status 2."""

    exit_code = EXIT_CONFIG


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PersistenceError as err:
            failure = CannotRunError if isinstance(err, _CONFIG_ERRORS) else CommandError
            raise failure(_one_line(err)) from err


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    cause = err.__cause__
    if isinstance(err, StorageUnavailableError) and cause is not None:
        # The driver's first line is what matters; adapters often quote it already.
        said = " ".join((str(cause).splitlines() or [""])[0].split())
        if said not in text:
            text += f" ({type(cause).__name__}: {said})"
    return text


def _registry(ctx: click.Context) -> Registry:
    """The registry to use: ``obj`` when a host or a test passes one, else the
    process-wide one."""
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
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if verbose == 0:
        handler.addFilter(_quiet_drivers)
    root.addHandler(handler)
    root.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG))


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
            _summary(b.description) or "-",
        ]
        for i in infos
        if i.ok and (b := i.backend) is not None
    ]
    if rows:
        click.echo("Installed backends:\n")
        click.echo(_table(["NAME", "SCHEMES", "DISTRIBUTION", "VERSION", "DESCRIPTION"], rows))
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


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def _summary(text: str, limit: int = 80) -> str:
    """The first sentence of a description, at most ``limit`` characters."""
    words = " ".join(text.split())
    end = words.find(". ")
    first = words[: end + 1] if end >= 0 else words
    return first if len(first) <= limit else first[: limit - 1] + "…"


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

    async def probe() -> None:
        async with adapter:
            await adapter.validate_schema()

    try:
        asyncio.run(probe())
    except SchemaMismatchError as err:
        click.echo(f"Schema mismatch at {redact_url(url)}:")
        for table in err.missing_tables:
            click.echo(f"  missing table {table}")
        for table, columns in err.missing_columns.items():
            for column in columns:
                click.echo(f"  table {table}: missing column {column}")
        for problem in err.other_problems:
            click.echo(f"  {problem}")
        click.echo("Print the reference DDL with: chat-persistence ddl --help")
        ctx.exit(EXIT_FAILED)
    if Capability.SCHEMA_VALIDATION in _capabilities(adapter):
        click.echo(f"OK: {redact_url(url)} matches the column contract")
    else:
        click.echo(f"OK: {redact_url(url)} opened (this backend has no schema to check)")


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
    runner = cast(Callable[..., Any], run_contract)
    kwargs: dict[str, Any] = {}
    if only:
        if "only" not in inspect.signature(runner).parameters:
            raise CannotRunError(
                "this version of chat-persistence-contract cannot run selected checks (--only)"
            )
        kwargs["only"] = list(only)
    if require:
        if "required_capabilities" not in inspect.signature(runner).parameters:
            raise CannotRunError(
                "this version of chat-persistence-contract cannot require capabilities (--require)"
            )
        kwargs["required_capabilities"] = list(require)
    try:
        report = runner(url, **kwargs)
    except ValueError as err:  # an unknown --only name, a bad target
        if isinstance(err, PersistenceError):
            raise
        raise CannotRunError(_one_line(err)) from err
    if inspect.isawaitable(report):
        report = asyncio.run(_await(report))
    click.echo(report.format())
    if not report.passed:
        ctx.exit(EXIT_FAILED)


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
    adapter = _registry(ctx).create_adapter(url)
    asyncio.run(_Demo(adapter, url, keep=keep).run())


class _Demo:
    def __init__(self, adapter: PersistenceAdapter, url: str, *, keep: bool) -> None:
        self.adapter = adapter
        self.url = url
        self.keep = keep
        self.thread = f"demo-{uuid.uuid4().hex[:12]}"
        self.first = f"{self.thread}-session-1"
        self.second = f"{self.thread}-session-2"

    async def run(self) -> None:
        async with self.adapter:
            durable = Capability.DURABLE in _capabilities(self.adapter)
            try:
                await self._script()
            finally:
                if durable and not self.keep:
                    await self.adapter.delete_thread(self.thread)
            self._say()
            if not durable:
                self._say("This backend keeps nothing once the process ends.")
            elif self.keep:
                self._say(f"Kept thread {self.thread}.")
            else:
                self._say(f"Deleted thread {self.thread} (pass --keep to keep it).")

    async def _script(self) -> None:
        a = self.adapter
        self._say(f"Demo on {redact_url(self.url)}, thread {self.thread}")
        self._heading("Session 1: a question answered with a tool")
        await a.save_session(Session(self.first, self.thread, _SDK_VERSION, state={"turn": 1}))
        await self._save(
            Message(
                self._id(),
                "user",
                [TextPart("What's the weather in Lisbon?")],
                session_id=self.first,
            ),
            Message(
                self._id(),
                "assistant",
                [
                    ReasoningPart("The user wants current weather: call the weather tool."),
                    ToolCallPart("call-1", "get_weather", {"city": "Lisbon"}),
                    ToolResultPart("call-1", "get_weather", {"temperature_c": 21, "sky": "clear"}),
                    TextPart("It is 21 °C and clear in Lisbon."),
                ],
                session_id=self.first,
            ),
        )
        archived = await a.archive_session(self.first, thread_id=self.thread)
        self._say(
            f"\narchive_session(session 1) set archived_at = {_time(archived.archived_at)}.\n"
            "Its messages stay stored, but the default listing no longer shows them."
        )
        again = await a.archive_session(self.first, thread_id=self.thread)
        kept = "kept" if again.archived_at == archived.archived_at else "CHANGED"
        self._say(f"Archiving it again {kept} the first archived_at ({_time(again.archived_at)}).")

        self._heading("Session 2: a new exchange in the same thread")
        await a.save_session(Session(self.second, self.thread, _SDK_VERSION, state={"turn": 1}))
        await self._save(
            Message(self._id(), "user", [TextPart("And tomorrow?")], session_id=self.second),
            Message(
                self._id(),
                "assistant",
                [TextPart("Tomorrow looks clear too.")],
                session_id=self.second,
            ),
        )

        self._heading("What is stored")
        self._say(
            "list_messages(thread): the default listing; messages of archived sessions "
            "are left out, so only session 2 shows:"
        )
        self._messages(await a.list_messages(self.thread))
        self._say(
            "\nlist_messages(thread, session_id=<session 1>): an explicit session skips the "
            "archive filter; this is the archived-session browser:"
        )
        self._messages(await a.list_messages(self.thread, session_id=self.first))
        self._say("\nlist_sessions(thread): live sessions only:")
        self._sessions(await a.list_sessions(self.thread))
        self._say("\nlist_sessions(thread, include_archived=True): every session, oldest first:")
        self._sessions(await a.list_sessions(self.thread, include_archived=True))

    async def _save(self, *messages: Message) -> None:
        stored = await self.adapter.save_messages(self.thread, messages)
        for m in stored:
            self._say(f"  saved {m.role:<9} {_describe_parts(m.parts)}")

    def _id(self) -> str:
        return f"msg-{uuid.uuid4().hex[:8]}"

    def _messages(self, messages: Sequence[Message]) -> None:
        if not messages:
            self._say("  (none)")
        session_names = {self.first: "session 1", self.second: "session 2"}
        for m in messages:
            session = session_names.get(m.session_id or "", m.session_id or "no session")
            self._say(
                f"  {_time(m.created_at)}  {session:<9}  {m.role:<9}  {_describe_parts(m.parts)}"
            )

    def _sessions(self, sessions: Sequence[Session]) -> None:
        names = {self.first: "session 1", self.second: "session 2"}
        rows = [
            [names.get(s.id, s.id), _time(s.created_at), _time(s.updated_at), _time(s.archived_at)]
            for s in sessions
        ]
        click.echo(_table(["SESSION", "CREATED_AT", "UPDATED_AT", "ARCHIVED_AT"], rows))

    def _heading(self, text: str) -> None:
        self._say(f"\n== {text}")

    def _say(self, text: str = "") -> None:
        click.echo(text)


_SDK_VERSION = "chat-persistence-demo/1"


def _capabilities(adapter: object) -> frozenset[Capability]:
    return frozenset(getattr(adapter, "capabilities", frozenset()))


def _time(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(sep=" ", timespec="microseconds")


def _describe_parts(parts: Sequence[Part]) -> str:
    return " | ".join(_describe_part(p) for p in parts) or "(no parts)"


def _describe_part(part: Part) -> str:
    if isinstance(part, TextPart):
        return f"text {_quote(part.text)}"
    if isinstance(part, ReasoningPart):
        return f"reasoning {_quote(part.text)}"
    if isinstance(part, ToolCallPart):
        return f"tool-call {part.tool_name}({_json(part.input)})"
    if isinstance(part, ToolResultPart):
        return f"tool-result {part.tool_name} -> {_json(part.output)}"
    if isinstance(part, UnknownPart):
        return f"unknown part {_json(part.raw)}"
    return part.type


def _quote(text: str, limit: int = 60) -> str:
    return json.dumps(text if len(text) <= limit else text[: limit - 1] + "…", ensure_ascii=False)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def redact_url(url: str) -> str:
    """``url`` with any password (in the userinfo or the query) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # urlunsplit would drop the "//" of "memory://"
    return urlunsplit(parts._replace(netloc=netloc, query=query))
