"""Our own PgBouncer process in transaction mode, for the pooled test pass and the pooled
benchmark (Debian's ``pgbouncer`` package: ``apt-get install pgbouncer``).

Everything it needs sits in one private folder (0700): ``pgbouncer.ini``,
``userlist.txt`` (plain passwords of throwaway test roles: PgBouncer logs in to
the server with them), its pid file, unix socket and log. It listens on
127.0.0.1 only, and forwards every database name (``*``) to one server, so
the harness's per-run databases need no entry of their own. ``start`` reuses
a PgBouncer already running from the same folder (idempotent); ``stop`` ends
it. PgBouncer refuses to run as root: under root it runs as ``os_user``, who
then owns the folder.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

from llmcp.errors import DatabaseUnavailableError

_START_TIMEOUT_S = 15.0


def binary() -> Path | None:
    """The pgbouncer program (Debian installs it in /usr/sbin), or None."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    return None if found is None else Path(found)


def default_os_user() -> str:
    """Whom PgBouncer runs as under root: the embedded server's user (it reaches that
    server's private socket), else Debian's ``postgres``."""
    from llmcp.dev.embedded import SYSTEM_USER

    for name in (SYSTEM_USER, "postgres"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return "nobody"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _quoted(value: str) -> str:
    """A userlist.txt field: in double quotes, a quote doubled."""
    return '"' + value.replace('"', '""') + '"'


class PgBouncer:
    """A PgBouncer (transaction pooling) in ``folder`` in front of one server.

    ``server`` holds libpq keywords for the ``*`` database entry (``host``,
    ``port``; ``host`` may be a unix-socket folder); ``users`` maps each role
    that may connect to its password. ``max_prepared_statements`` > 0 turns on
    PgBouncer's own tracking of protocol-level prepared statements (1.21+).
    """

    def __init__(
        self,
        folder: Path,
        *,
        server: Mapping[str, str],
        users: Mapping[str, str],
        os_user: str | None = None,
        port: int | None = None,
        pool_size: int = 20,
        max_prepared_statements: int = 0,
    ) -> None:
        self.folder = folder
        self.server = dict(server)
        self.users = dict(users)
        self.os_user = (os_user or default_os_user()) if os.geteuid() == 0 else None
        self._port = port
        self.pool_size = pool_size
        self.max_prepared_statements = max_prepared_statements

    @property
    def ini(self) -> Path:
        return self.folder / "pgbouncer.ini"

    @property
    def pid_file(self) -> Path:
        return self.folder / "pgbouncer.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "pgbouncer.log"

    @property
    def port(self) -> int:
        if self._port is None:
            self._port = self._configured_port() or _free_port()
        return self._port

    def url(self, dbname: str, user: str) -> str:
        """A libpq URL for ``dbname`` as ``user`` (one of ``users``) through this PgBouncer."""
        password = quote(self.users[user], safe="")
        return (
            f"postgresql://{quote(user, safe='')}:{password}@127.0.0.1:{self.port}/{quote(dbname)}"
        )

    # -- lifecycle --------------------------------------------------------

    def start(self) -> Self:
        """Start PgBouncer unless one runs from this folder already (then it is reused,
        its port kept); waits until it accepts connections."""
        program = binary()
        if program is None:
            raise DatabaseUnavailableError("pgbouncer is not installed (apt-get install pgbouncer)")
        ini, userlist = self._render()
        if self.pid() is not None and self._answers():
            if self._current(self.ini) == ini and self._current(self.auth_file) == userlist:
                return self  # the same configuration: reuse it
            self.stop()
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        self._write(self.ini, ini)
        self._write(self.auth_file, userlist)
        self.pid_file.unlink(missing_ok=True)
        ids = self._ids()
        if ids is not None:
            for path in (self.folder, *self.folder.iterdir()):
                os.chown(path, *ids)
        proc = subprocess.run(
            [str(program), "-d", "-q", str(self.ini)],
            capture_output=True,
            text=True,
            user=ids[0] if ids else None,
            group=ids[1] if ids else None,
            extra_groups=[] if ids else None,
            cwd="/",
            check=False,
        )
        if proc.returncode != 0:
            raise DatabaseUnavailableError(f"pgbouncer did not start: {self._tail(proc.stderr)}")
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not (self.pid() is not None and self._answers()):
            if time.monotonic() > deadline:
                raise DatabaseUnavailableError(f"pgbouncer did not start: {self._tail('')}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """End the PgBouncer of this folder (immediate shutdown), if it runs."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL it (a crash, for fault tests); ``start`` brings up a new one."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while self.pid() is not None:
                time.sleep(0.01)

    def pid(self) -> int | None:
        """The running PgBouncer's process id, or None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
        # a zombie (killed, not yet reaped by its parent) is gone for our purpose
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
                return None
        return pid

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- files ------------------------------------------------------------

    @property
    def auth_file(self) -> Path:
        return self.folder / "userlist.txt"

    def _render(self) -> tuple[str, str]:
        """The text of pgbouncer.ini and of userlist.txt."""
        target = " ".join(f"{key}={value}" for key, value in sorted(self.server.items()))
        settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": str(self.folder),
            "auth_type": "scram-sha-256",
            "auth_file": str(self.auth_file),
            "pidfile": str(self.pid_file),
            "logfile": str(self.log_file),
            "pool_mode": "transaction",
            "max_client_conn": "500",
            "default_pool_size": str(self.pool_size),
            # per-run databases come and go: close what they leave idle soon
            "server_idle_timeout": "10",
            "autodb_idle_timeout": "30",
            "log_connections": "0",
            "log_disconnections": "0",
        }
        if self.max_prepared_statements:
            settings["max_prepared_statements"] = str(self.max_prepared_statements)
        lines = ["[databases]", f"* = {target}", "", "[pgbouncer]"]
        lines += [f"{key} = {value}" for key, value in settings.items()]
        users = "".join(f"{_quoted(u)} {_quoted(p)}\n" for u, p in sorted(self.users.items()))
        return "\n".join(lines) + "\n", users

    @staticmethod
    def _current(path: Path) -> str | None:
        try:
            return path.read_text()
        except OSError:
            return None

    @staticmethod
    def _write(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)

    def _configured_port(self) -> int | None:
        """The port of the ini a previous ``start`` wrote into this folder, if any."""
        try:
            text = self.ini.read_text()
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "listen_port":
                return int(value.strip())
        return None

    def _ids(self) -> tuple[int, int] | None:
        if self.os_user is None:
            return None
        entry = pwd.getpwnam(self.os_user)
        return entry.pw_uid, entry.pw_gid

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _tail(self, stderr: str) -> str:
        log = self.log_file.read_text(errors="replace")[-1500:] if self.log_file.exists() else ""
        return (stderr.strip() + "\n" + log).strip()


def main(argv: list[str] | None = None) -> int:
    """``python -m llmcp.dev.pgbouncer SERVER_URL [--stop]``: start (or reuse) the
    PgBouncer of ``scripts/pgbouncer-url`` in front of SERVER_URL's server and print
    its URL (for ``LLMCP_TEST_POOLER_URL``); ``--stop`` ends it."""
    import argparse

    from llmcp import conninfo
    from llmcp.dev.scratch import TEST_APP_PASSWORD, TEST_APP_ROLE

    parser = argparse.ArgumentParser(prog="pgbouncer-url")
    parser.add_argument("server_url", help="the server's URL, as its administrator")
    parser.add_argument("--stop", action="store_true", help="stop the PgBouncer instead")
    parser.add_argument("--folder", type=Path, default=default_folder())
    args = parser.parse_args(argv)
    settings = conninfo.parse(args.server_url)
    users = {TEST_APP_ROLE: TEST_APP_PASSWORD}
    if settings.get("user") and settings.get("password"):
        users[settings["user"]] = settings["password"]
    server = {"host": settings.get("host") or "127.0.0.1", "port": settings.get("port") or "5432"}
    bouncer = PgBouncer(args.folder, server=server, users=users, os_user="postgres")
    if args.stop:
        bouncer.stop()
        return 0
    bouncer.start()
    print(f"postgresql://127.0.0.1:{bouncer.port}")
    return 0


def default_folder() -> Path:
    """Where ``scripts/pgbouncer-url`` keeps its PgBouncer (``LLMCP_PGBOUNCER_DIR``)."""
    configured = os.environ.get("LLMCP_PGBOUNCER_DIR")
    return Path(configured) if configured else Path(f"/tmp/llmcp-pgbouncer-{os.getuid()}")


if __name__ == "__main__":
    raise SystemExit(main())
