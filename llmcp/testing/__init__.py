"""Helpers for testing against a real PostgreSQL: databases cloned from a migrated template."""

from llmcp.scratch import ScratchDatabases


class TestDatabases(ScratchDatabases):
    """:class:`~llmcp.scratch.ScratchDatabases` under the name the test fixtures use."""

    __test__ = False  # not a pytest test class


__all__ = ["TestDatabases"]
