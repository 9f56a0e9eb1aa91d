"""Migrating a real server over TCP with the URL psycopg uses: no TLS on the server,
no sslmode in the URL, a password; and each way that fails says why, quickly,
without showing the password (every address is on this machine)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from llmcp.errors import ConnectFailure, ConnectionFailedError, MigrationError
from llmcp.migrate import Migrator, packaged_migrations_dir
from tests.servers import PASSWORD, PasswordServer, password_server, silent_listener

# a failure, from the call to the error, in at most this (psycopg waits >= 2 s)
LIMIT_S = 5.0
MIGRATIONS = len(list(packaged_migrations_dir().glob("*.sql")))


@pytest.fixture(scope="module")
def tcp() -> Iterator[PasswordServer]:
    """An embedded server on 127.0.0.1 without TLS; its role may create databases."""
    with password_server() as server:
        yield server


def _uses_tls(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.pgconn.ssl_in_use


def test_a_plain_url_migrates_a_server_without_tls(tcp: PasswordServer) -> None:
    url = tcp.url("plain")  # no sslmode: libpq's prefer, which this server answers without TLS
    assert "sslmode" not in url and not _uses_tls(tcp.url("app"))
    migrator = Migrator(url)

    migrator.up()  # creates the database too
    status = migrator.status()
    assert (status.applied, status.pending) == (MIGRATIONS, 0)

    migrator.rollback()
    assert migrator.status().pending == 1


def test_sslmode_disable_is_honoured(tcp: PasswordServer) -> None:
    status = Migrator(tcp.url("app") + "?sslmode=disable").status()
    assert status.pending == MIGRATIONS


def _fails_fast(migrator: Migrator, reason: ConnectFailure) -> ConnectionFailedError:
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError) as caught:
        migrator.up()
    elapsed = time.monotonic() - started
    assert caught.value.reason is reason, str(caught.value)
    assert elapsed < LIMIT_S, f"{reason}: {elapsed:.1f} s"
    for text in (str(caught.value), repr(caught.value)):
        assert PASSWORD not in text
    return caught.value


def test_sslmode_require_fails_fast_saying_tls(tcp: PasswordServer) -> None:
    _fails_fast(Migrator(tcp.url("app") + "?sslmode=require"), ConnectFailure.TLS)


@pytest.mark.parametrize(
    "credentials",
    [{"password": "not-" + PASSWORD}, {"user": "nobody_here"}],
    ids=["wrong password", "unknown role"],
)
def test_wrong_credentials_say_authentication(
    tcp: PasswordServer, credentials: dict[str, str]
) -> None:
    _fails_fast(Migrator(tcp.url("app", **credentials)), ConnectFailure.AUTHENTICATION)


def test_a_host_that_never_answers_times_out_within_connect_timeout() -> None:
    with silent_listener() as port:
        url = f"postgresql://u:{PASSWORD}@127.0.0.1:{port}/app"
        _fails_fast(Migrator(url, connect_timeout=1), ConnectFailure.TIMEOUT)


def test_a_connect_timeout_in_the_url_wins() -> None:
    with silent_listener() as port:
        url = f"postgresql://u:{PASSWORD}@127.0.0.1:{port}/app?connect_timeout=2"
        _fails_fast(Migrator(url, connect_timeout=600), ConnectFailure.TIMEOUT)


def test_dbmates_failure_carries_its_message_without_the_password(
    tcp: PasswordServer, tmp_path: Path
) -> None:
    (tmp_path / "20990101000000_broken.sql").write_text(
        "-- migrate:up\nSELECT no_such_function();\n-- migrate:down\n"
    )
    with pytest.raises(MigrationError) as caught:
        Migrator(tcp.url("app"), migrations_dirs=[tmp_path]).up()
    assert "no_such_function() does not exist" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_the_cli_migrates_with_the_plain_url(tcp: PasswordServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMCP_")}
    env["LLMCP_DATABASE_URL"] = tcp.url("cli")
    result = subprocess.run(
        [sys.executable, "-m", "llmcp.cli", "db", "up"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{MIGRATIONS} applied, 0 pending" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
