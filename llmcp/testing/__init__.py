"""Helpers for testing against a real PostgreSQL: databases cloned from a migrated template."""

from llmcp.testing.databases import TestDatabases

__all__ = ["TestDatabases"]
