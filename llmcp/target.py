"""Which PostgreSQL server a command talks to.

``LLMCP_DATABASE_URL`` when it is set; otherwise an embedded server whose data
lives in ``LLMCP_DATA_DIR`` (default ``.llmcp`` under the current directory),
started for the duration of the command and stopped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from llmcp.embedded import EmbeddedServer
from llmcp.errors import DatabaseUnavailableError

URL_VARIABLE = "LLMCP_DATABASE_URL"
DATA_DIR_VARIABLE = "LLMCP_DATA_DIR"
EMBEDDED_DATABASE = "llmcp"


def external_url() -> str | None:
    """The server named by ``LLMCP_DATABASE_URL``, if any."""
    return os.environ.get(URL_VARIABLE) or None


@contextmanager
def database_url() -> Iterator[str]:
    """Yield the URL of the database to use, starting an embedded server if needed."""
    url = external_url()
    if url is not None:
        yield url
        return
    data_dir = Path(os.environ.get(DATA_DIR_VARIABLE, ".llmcp")).resolve()
    with EmbeddedServer(data_dir) as server:
        ensure_database(server.url(), EMBEDDED_DATABASE)
        yield server.url(EMBEDDED_DATABASE)


def ensure_database(admin_url: str, name: str) -> None:
    """Create database ``name`` unless it exists."""
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(f"cannot reach the server: {exc}") from exc
