"""llmcp: a SQL-first, code-generated, typed PostgreSQL data layer for an LLM control plane."""

__version__ = "0.1.0"
