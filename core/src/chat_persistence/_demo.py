"""The ``demo`` command: a scripted two-session conversation through any backend."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

import click

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
from ._redact import redact
from ._table import table


class Demo:
    """The ``demo`` command's script: two sessions, an archive, then what is stored."""

    def __init__(self, adapter: PersistenceAdapter, url: str, *, keep: bool) -> None:
        self.adapter = adapter
        self.url = url
        self.keep = keep
        self.thread = f"demo-{uuid.uuid4().hex[:12]}"
        self.first = f"{self.thread}-session-1"
        self.second = f"{self.thread}-session-2"

    async def run(self) -> None:
        async with self.adapter:
            durable = Capability.DURABLE in self.adapter.capabilities
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
        self._say(f"Demo on {redact(self.url)}, thread {self.thread}")
        await self._first_session()
        await self._second_session()
        await self._show_stored()

    async def _first_session(self) -> None:
        a = self.adapter
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

    async def _second_session(self) -> None:
        self._heading("Session 2: a new exchange in the same thread")
        await self.adapter.save_session(
            Session(self.second, self.thread, _SDK_VERSION, state={"turn": 1})
        )
        await self._save(
            Message(self._id(), "user", [TextPart("And tomorrow?")], session_id=self.second),
            Message(
                self._id(),
                "assistant",
                [TextPart("Tomorrow looks clear too.")],
                session_id=self.second,
            ),
        )

    async def _show_stored(self) -> None:
        a = self.adapter
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
        click.echo(table(["SESSION", "CREATED_AT", "UPDATED_AT", "ARCHIVED_AT"], rows))

    def _heading(self, text: str) -> None:
        self._say(f"\n== {text}")

    def _say(self, text: str = "") -> None:
        click.echo(text)


_SDK_VERSION = "chat-persistence-demo/1"


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
