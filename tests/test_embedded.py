"""The embedded server: private per run, guarded when persistent, restartable."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from llmcp.dev.embedded import EmbeddedServer
from llmcp.errors import DatabaseUnavailableError


def _marker(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A folder of our own (pytest's tmp_path may be pruned by another pytest run)."""
    path = Path(tempfile.mkdtemp(prefix="llmcp-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


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
        intruder = EmbeddedServer(tmp_path / "pg")
        intruder._lock_timeout_s = 0.5  # do not wait the default minute
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
