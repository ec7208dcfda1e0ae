"""Running the OpenAI Agents SDK's own session tests with ``ChatPersistenceSession``
standing in for ``SQLiteSession``: the sdist fetcher, the backends and the pytest
plugin that rebinds the name."""
