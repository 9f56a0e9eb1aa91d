"""Helpers for testing against a real PostgreSQL.

- :class:`TestDatabases`: a server and databases cloned from a migrated template;
- :func:`rolled_back` / :func:`arolled_back`: a transaction that is always undone;
- :mod:`llmcp.testing.strategies`: hypothesis strategies for the input structs
  (imports hypothesis, so it is not imported here);
- :mod:`llmcp.testing.plugin`: pytest fixtures (``pytest_plugins = ["llmcp.testing.plugin"]``).
"""

from llmcp.dev.scratch import ScratchDatabases
from llmcp.testing.isolation import arolled_back, rolled_back


class TestDatabases(ScratchDatabases):
    """:class:`~llmcp.dev.scratch.ScratchDatabases` under the name the test fixtures use."""

    __test__ = False  # not a pytest test class


__all__ = ["TestDatabases", "arolled_back", "rolled_back"]
