"""``llmcp dev server``: a migrated server in the foreground, stopped cleanly by a signal."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from llmcp.dev.embedded import EmbeddedServer

_READY_TIMEOUT_S = 120  # a first start runs initdb and every migration
_URL_PREFIX = "LLMCP_DATABASE_URL="


@pytest.fixture
def workdir(private_dir: Path) -> Iterator[Path]:
    """The subprocess's cwd (see ``private_dir``)."""
    yield private_dir
    with contextlib.suppress(Exception):  # a failed test must not leave a server behind
        EmbeddedServer(private_dir / "pg").stop(mode="immediate")


class DevServer:
    """One ``llmcp dev server --data-dir pg`` subprocess, its stdout read by a thread."""

    def __init__(self, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMCP_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llmcp.cli", "dev", "server", "--data-dir", "pg"],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)  # end of output

    def url(self) -> str:
        """The printed URL, once the server is up and migrated."""
        deadline = time.monotonic() + _READY_TIMEOUT_S
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            if line.startswith(_URL_PREFIX):
                return line.removeprefix(_URL_PREFIX)
        self.kill()
        pytest.fail(f"no URL printed; stdout {seen}, stderr {self.stderr()!r}")

    def rest_of_stdout(self) -> list[str]:
        lines = []
        while (line := self.lines.get(timeout=10)) is not None:
            lines.append(line)
        return lines

    def stop(self, signum: int) -> tuple[int, float]:
        """Send ``signum``; the exit code and how long the exit took."""
        started = time.monotonic()
        self.process.send_signal(signum)
        code = self.process.wait(timeout=30)
        return code, time.monotonic() - started

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read() if self.process.poll() is not None else ""

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def _count_organizations(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM organizations").fetchone()
    assert row is not None
    return int(row[0])


def test_serves_a_migrated_database_until_sigint(workdir: Path) -> None:
    server = DevServer(workdir)
    try:
        url = server.url()
        assert _count_organizations(url) == 0  # migrated
        assert (workdir / "pg" / "data" / "PG_VERSION").exists()  # relative to the cwd
        # the URL works from anywhere, e.g. for another llmcp command
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMCP_")}
        status = subprocess.run(
            [sys.executable, "-m", "llmcp.cli", "db", "status", "--exit-code"],
            cwd="/", env={**env, "LLMCP_DATABASE_URL": url},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr  # nothing pending

        code, seconds = server.stop(signal.SIGINT)
        assert code == 0, server.stderr()
        assert seconds < 10
        assert server.rest_of_stdout()[-1] == "llmcp dev server: stopped"
    finally:
        server.kill()
    assert not (workdir / "pg" / "data" / "postmaster.pid").exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)


def test_a_second_run_on_the_folder_is_refused_and_sigterm_stops_the_first(
    workdir: Path,
) -> None:
    first = DevServer(workdir)
    try:
        url = first.url()
        second = DevServer(workdir)
        try:
            code = second.process.wait(timeout=30)  # refused at once, not after a wait
        finally:
            second.kill()
        assert code == 1
        assert "is in use by another run" in second.stderr()
        assert _count_organizations(url) == 0  # the first still serves, untouched

        code, seconds = first.stop(signal.SIGTERM)
        assert code == 0, first.stderr()
        assert seconds < 10
    finally:
        first.kill()
    assert not (workdir / "pg" / "data" / "postmaster.pid").exists()
