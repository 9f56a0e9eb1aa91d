"""Which server a development command talks to, and throwaway databases on it.

The server is the one at ``LLMCP_DATABASE_URL`` when it is set, otherwise an
embedded one: for commands (:func:`database_url`), a persistent server whose
data lives in ``LLMCP_DATA_DIR`` (default ``.llmcp`` under the current
directory), started for the command and stopped after it; for the test harness
and ``llmcp codegen`` (:class:`ScratchDatabases`), a new server in a temporary
folder, private to the run, with one migrated template and cheap clones of it.
Every database a ``ScratchDatabases`` makes carries a per-run prefix and is
dropped by :meth:`ScratchDatabases.close`.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from llmcp import conninfo
from llmcp.config import URL_VARIABLE
from llmcp.dev.embedded import EmbeddedServer
from llmcp.migrate import Migrator

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
        raise conninfo.connection_error(exc, admin_url) from None


def with_database(url: str, dbname: str) -> str:
    """``url`` with its database name replaced by ``dbname``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


class ScratchDatabases:
    """A server plus a migrated template database, handing out clones."""

    def __init__(self, *, migrations_dirs: Sequence[Path] | None = None) -> None:
        """Migrate the template from ``migrations_dirs`` (in version order across
        them); None: :func:`llmcp.migrate.default_migrations_dirs`, llmcp's and then
        the service's configured folder."""
        self._server: EmbeddedServer | None = None
        url = external_url()
        if url is None:
            self._server = EmbeddedServer().start()
            url = self._server.url()
        self.admin_url = with_database(url, "postgres")
        self.prefix = f"llmcp_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._counter = itertools.count()
        self._created: list[str] = []
        self.template = self.create_empty("template")
        Migrator(self.url(self.template), migrations_dirs=migrations_dirs).up()

    @property
    def server(self) -> EmbeddedServer | None:
        """The embedded server, or None when an external one is used."""
        return self._server

    def url(self, dbname: str) -> str:
        return with_database(self.admin_url, dbname)

    def create_empty(self, label: str = "db") -> str:
        name = f"{self.prefix}_{label}_{next(self._counter)}"
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created.append(name)
        return name

    def clone(self, label: str = "db") -> str:
        """A new database, a copy of the migrated template; returns its name."""
        name = f"{self.prefix}_{label}_{next(self._counter)}"
        self._admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(self.template)
            )
        )
        self._created.append(name)
        return name

    def drop(self, name: str) -> None:
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if name in self._created:
            self._created.remove(name)

    def close(self) -> None:
        try:
            if self._server is None or self._server.is_running():
                for name in reversed(list(self._created)):
                    self.drop(name)
        finally:
            if self._server is not None:
                self._server.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)
