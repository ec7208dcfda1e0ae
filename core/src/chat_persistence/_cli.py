"""The chat-persistence command line."""

import click


@click.group()
def main() -> None:
    """Durable chat history: inspect backends, run the contract suite, see a demo."""
