"""``python -m chat_persistence``: the ``chat-persistence`` command."""

from ._cli import main

main(prog_name="chat-persistence")
