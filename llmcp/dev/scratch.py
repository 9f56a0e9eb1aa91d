"""Which server a development command talks to, and throwaway databases on it.

The server is the one at ``LLMCP_DATABASE_URL`` when it is set, otherwise an
embedded one: for commands (:func:`database_url`), a persistent server whose
data lives in ``LLMCP_DATA_DIR`` (default ``.llmcp`` under the current
directory), started for the command and stopped after it; for the test harness
and ``llmcp codegen`` (:class:`ScratchDatabases`), a new server in a temporary
folder, private to the run, with one migrated template and cheap clones of it.
Every database a ``ScratchDatabases`` makes carries a per-run prefix and is
dropped by :meth:`ScratchDatabases.close`.

The template is migrated as the server's administrator, who owns every object
(the owner role of production); the databases are handed out as the URL of a
login role that is a member of ``llmcp_app`` and of nothing else
(:data:`TEST_APP_ROLE`, the application role of production):
:meth:`ScratchDatabases.url`. What truly needs the owner (DDL, migrating,
seeding with COPY, other roles' backends) takes :meth:`ScratchDatabases.owner_url`.

When ``LLMCP_TEST_POOLER_URL`` names a transaction pooler (PgBouncer) in front of
that server (``scripts/pgbouncer-url`` starts one), :meth:`ScratchDatabases.url`
goes through it, as a service behind PgBouncer does, while the owner's URLs
(migrating, DDL, seeding) stay direct, as migrations must;
:meth:`ScratchDatabases.direct_url` is the application role on the server itself.
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
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from llmcp import conninfo
from llmcp.config import URL_VARIABLE
from llmcp.dev.embedded import EmbeddedServer
from llmcp.errors import LlmcpError
from llmcp.migrate import GroupRole, Migrator

DATA_DIR_VARIABLE = "LLMCP_DATA_DIR"
POOLER_URL_VARIABLE = "LLMCP_TEST_POOLER_URL"
"""A pooler in front of the server (``postgresql://127.0.0.1:<port>``): the
application role's URLs go through it (the pooled test pass)."""
EMBEDDED_DATABASE = "llmcp"

TEST_APP_ROLE = "llmcp_test_app"
"""The login role the test databases are handed out as: a member of ``llmcp_app`` only."""
TEST_APP_PASSWORD = "llmcp-test-app-pw"
"""Its password, for servers that ask for one over TCP (the embedded server trusts
its socket and 127.0.0.1; Debian's asks on 127.0.0.1). A throwaway role of test
servers; the same on every run, since runs share it (roles belong to the server)."""
# serialises the runs that create or grant TEST_APP_ROLE on one server (advisory
# locks are per database: every run takes it in the maintenance database)
_ROLE_LOCK_KEY = int.from_bytes(b"llmcp_tr", "big")


def external_url() -> str | None:
    """The server named by ``LLMCP_DATABASE_URL``, if any."""
    return os.environ.get(URL_VARIABLE) or None


def pooler_url() -> str | None:
    """The pooler named by ``LLMCP_TEST_POOLER_URL``, if any."""
    return os.environ.get(POOLER_URL_VARIABLE) or None


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


def with_role(url: str, user: str, password: str | None = None) -> str:
    """``url`` with its user (and password) replaced; host, port and the rest kept."""
    parts = urlsplit(url)
    hostport = parts.netloc.rpartition("@")[2]
    userinfo = quote(user, safe="")
    if password is not None:
        userinfo += ":" + quote(password, safe="")
    netloc = f"{userinfo}@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def through(url: str, pooler: str) -> str:
    """``url`` (its role, password, database and settings) aimed at the host and port of
    ``pooler`` instead: the same database, through the pooler."""
    parts, via = urlsplit(url), urlsplit(pooler)
    userinfo = parts.netloc.rpartition("@")[0]
    hostport = via.netloc.rpartition("@")[2]
    netloc = f"{userinfo}@{hostport}" if userinfo else hostport
    query = "&".join(
        item for item in parts.query.split("&")
        if item and item.partition("=")[0] not in ("host", "hostaddr", "port")
    )  # fmt: skip
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def ensure_app_login_role(
    admin_url: str, role: str = TEST_APP_ROLE, password: str = TEST_APP_PASSWORD
) -> None:
    """Create the LOGIN role ``role`` unless it exists, and make it a member of
    ``llmcp_app`` (which the migrations created): as ``admin_url``'s role, which
    needs CREATEROLE (and ADMIN on ``llmcp_app``: it created it, or is a superuser).

    Race-free: runs sharing a server take turns on an advisory lock, and a role
    created meanwhile by anyone else is taken as it is. A role of that name that
    is a superuser or may bypass row-level security is refused, not changed.
    """
    app = GroupRole.APP.value
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ROLE_LOCK_KEY,))
            row = conn.execute(
                "SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = %s",
                (role,),
            ).fetchone()
            if row is None:
                try:
                    with conn.transaction():  # a savepoint
                        conn.execute(
                            sql.SQL(
                                "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
                                " NOREPLICATION NOBYPASSRLS INHERIT PASSWORD {}"
                            ).format(sql.Identifier(role), sql.Literal(password))
                        )
                except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                    pass  # made meanwhile by someone who did not take the lock
            elif row[0]:
                raise LlmcpError(
                    f"the role {role} exists and is a superuser or bypasses row-level "
                    "security: the tests must not run as it (DROP ROLE it)"
                )
            member = conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (role, app)).fetchone()
            if not (member and member[0]):
                conn.execute(
                    sql.SQL("GRANT {} TO {}").format(sql.Identifier(app), sql.Identifier(role))
                )
    except psycopg.OperationalError as exc:
        raise conninfo.connection_error(exc, admin_url) from None
    except psycopg.Error as exc:
        reason = conninfo.redact(exc.diag.message_primary or type(exc).__name__, admin_url)
        raise LlmcpError(
            f"cannot create the test role {role} as a member of {app} ({reason}): the "
            "tests need a server role with CREATEROLE (or create the role by hand)"
        ) from None


class ScratchDatabases:
    """A server plus a migrated template database, handing out clones.

    :meth:`url` is a database's URL as the application role (:data:`TEST_APP_ROLE`),
    :meth:`owner_url` as the administrator who migrated the template and owns
    everything in it.
    """

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
        Migrator(self.owner_url(self.template), migrations_dirs=migrations_dirs).up()
        ensure_app_login_role(self.admin_url)
        self.app_role = TEST_APP_ROLE
        self.pooler_url = pooler_url()

    @property
    def server(self) -> EmbeddedServer | None:
        """The embedded server, or None when an external one is used."""
        return self._server

    def url(self, dbname: str) -> str:
        """The URL of ``dbname`` as the application role (a member of ``llmcp_app`` only);
        through the pooler of ``LLMCP_TEST_POOLER_URL`` when one is set."""
        direct = self.direct_url(dbname)
        return direct if self.pooler_url is None else through(direct, self.pooler_url)

    def direct_url(self, dbname: str) -> str:
        """``dbname`` as the application role on the server itself, never through a pooler."""
        return with_role(self.owner_url(dbname), self.app_role, TEST_APP_PASSWORD)

    def owner_url(self, dbname: str) -> str:
        """The URL of ``dbname`` as the administrator: the owner of every object, a
        superuser on the embedded server. For DDL, migrations and seeding only."""
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
