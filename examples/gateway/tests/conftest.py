"""A fresh database per test (a clone of the plugin's migrated template)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from llmcp.config import DatabaseConfig
from llmcp.dev.scratch import ScratchDatabases


@dataclass(frozen=True)
class Database:
    url: str  # as the application role: what the service connects with
    owner_url: str  # as the owner: for the tests' own checks and DDL

    def config(self, *, max_size: int = 4, acquire_timeout: float = 10.0) -> DatabaseConfig:
        return DatabaseConfig(
            url=self.url, min_size=1, max_size=max_size, acquire_timeout=acquire_timeout
        )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def database(llmcp_scratch: ScratchDatabases) -> Iterator[Database]:
    name = llmcp_scratch.clone("gateway")
    yield Database(llmcp_scratch.url(name), llmcp_scratch.owner_url(name))
    llmcp_scratch.drop(name)
