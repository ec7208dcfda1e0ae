"""``list_stored_parts`` (new in 0.2): the default listing as stored JSON rows.

An adapter implementing the protocol directly may lack it; these checks are then
skipped with that reason. Every adapter on ``AdapterBase`` has it.
"""

from __future__ import annotations

from typing import Any, cast

from chat_persistence import (
    DataPart,
    InvalidMessageError,
    Message,
    PersistenceAdapter,
    StoredParts,
    TextPart,
    unstructure_parts,
)

from .._builders import at, every_kind_of_part, text_message
from .._expect import expect, expect_equal, expect_ids, expect_raises
from .._table import CheckContext, check

STORED_PARTS = "list_stored_parts"


async def _stored_parts(adapter: PersistenceAdapter, thread_id: str) -> list[StoredParts]:
    return await adapter.list_stored_parts(thread_id)


@check(operation=STORED_PARTS)
async def stored_parts_are_the_listing(ctx: CheckContext) -> None:
    """``list_stored_parts(thread)`` equals ``[(m.id, m.role, unstructure_parts(m.parts))
    for m in list_messages(thread)]``: every kind of part, in listing order (not save
    or id order), an archived session's messages left out, a re-saved message in its
    old place with its new role and parts, nothing of another thread."""
    adapter, thread_id, other = ctx.adapter, ctx.thread_id(), ctx.thread_id()
    archived, live = ctx.session_id(), ctx.session_id()
    await adapter.save_messages(
        thread_id,
        [
            Message(id="b-kinds", role="assistant", parts=every_kind_of_part(), created_at=at(30)),
            text_message("d-first", created_at=at(10)),
            text_message("a-hidden", session_id=archived, created_at=at(20)),
        ],
    )
    await adapter.save_messages(
        thread_id, [text_message("c-resaved", "before"), text_message("e-live", session_id=live)]
    )
    await adapter.save_messages(other, [text_message("d-first", "another thread's")])
    await adapter.archive_session(archived, thread_id=thread_id)
    resaved = Message(id="c-resaved", role="system", parts=(TextPart("after"), DataPart([1, 2])))
    await adapter.save_messages(thread_id, [resaved])
    listed = await adapter.list_messages(thread_id)
    expect_ids(listed, ["d-first", "b-kinds", "c-resaved", "e-live"], "list_messages")
    got = await _stored_parts(adapter, thread_id)
    expect(isinstance(got, list), f"list_stored_parts must return a list, got {got!r}")
    expected = [(m.id, m.role, unstructure_parts(m.parts)) for m in listed]
    expect_equal(got, expected, "list_stored_parts (the listing's messages as stored JSON)")
    after = [{"type": "text", "text": "after"}, {"type": "data", "data": [1, 2]}]
    expect_equal(got[2], ("c-resaved", "system", after), "the re-saved message")


@check(operation=STORED_PARTS)
async def stored_parts_of_nothing_and_bad_ids(ctx: CheckContext) -> None:
    """An unknown thread gives []; a bad thread id raises ``InvalidMessageError``
    naming ``thread_id``, as ``list_messages`` does."""
    adapter = ctx.adapter
    expect_equal(await _stored_parts(adapter, ctx.thread_id()), [], "an unknown thread")
    for what, bad in (("an empty id", ""), ("a NUL", "t\x00"), ("not a string", 7)):
        err = await expect_raises(
            InvalidMessageError,
            _stored_parts(adapter, cast(Any, bad)),
            f"list_stored_parts({what})",
        )
        named = str(getattr(err, "field", None))
        expect("thread_id" in named, f"{what}: the error must name 'thread_id', got {named!r}")
