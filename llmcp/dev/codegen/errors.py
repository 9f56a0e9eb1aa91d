"""Codegen failures, each naming the file, line and query at fault."""

from __future__ import annotations

from pathlib import Path

from llmcp.errors import LlmcpError


class CodegenError(LlmcpError):
    """A query cannot be turned into typed code; nothing was written."""

    def __init__(self, message: str, *, file: Path | None = None, line: int | None = None,
                 query: str | None = None) -> None:  # fmt: skip
        where = ":".join(str(p) for p in (file, line) if p is not None)
        prefix = f"{where}: " if where else ""
        name = f"query {query!r}: " if query else ""
        super().__init__(f"{prefix}{name}{message}")
        self.file = file
        self.line = line
        self.query = query
