"""A connection that cannot be made says why, quickly, and never shows the password.

Each cause is produced for real: a TCP server that asks for passwords and has
no TLS, a port nobody listens on, a socket that never answers, a host name
that does not resolve, a malformed URL, an empty database.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from llmcp.config import DatabaseConfig
from llmcp.database import Database
from llmcp.database_async import AsyncDatabase
from llmcp.errors import ConnectFailure, ConnectionFailedError, NotMigratedError
from llmcp.factory import RepositoryFactory
from tests.servers import PASSWORD, PasswordServer, free_port, password_server, silent_listener

TIMEOUT = 2.0
# the whole failure, from the call to the error, in at most this
LIMIT = TIMEOUT + 2.0


@pytest.fixture(scope="module")
def tcp() -> Iterator[PasswordServer]:
    with password_server() as server:
        yield server


def _connect_sync(url: str) -> None:
    Database.connect(DatabaseConfig(url=url, connect_timeout=TIMEOUT)).close()


def _connect_async(url: str) -> None:
    async def run() -> None:
        database = await AsyncDatabase.connect(DatabaseConfig(url=url, connect_timeout=TIMEOUT))
        await database.close()

    asyncio.run(run())


CONNECTS = {"sync": _connect_sync, "async": _connect_async}


def _cases(tcp: PasswordServer) -> Iterator[tuple[str, str, ConnectFailure]]:
    yield (
        "wrong password",
        tcp.url("app", password="not-" + PASSWORD),
        ConnectFailure.AUTHENTICATION,
    )
    yield "unknown role", tcp.url("app", user="nobody_here"), ConnectFailure.AUTHENTICATION
    yield "no such database", tcp.url("no_such_db"), ConnectFailure.DATABASE_MISSING
    yield (
        "host not found",
        f"postgresql://u:{PASSWORD}@llmcp-no-such-host.invalid:5432/app",
        ConnectFailure.HOST_NOT_FOUND,
    )
    yield (
        "nothing listening",
        f"postgresql://u:{PASSWORD}@127.0.0.1:{free_port()}/app",
        ConnectFailure.REFUSED,
    )
    yield "TLS required, server has none", tcp.url("app") + "?sslmode=require", ConnectFailure.TLS
    yield (
        "malformed URL",
        f"postgresql://u:{PASSWORD} x@127.0.0.1:{tcp.port}/app",
        ConnectFailure.MALFORMED_URL,
    )
    yield (
        "malformed port",
        f"postgresql://u:{PASSWORD}@127.0.0.1:port/app",
        ConnectFailure.MALFORMED_URL,
    )


def _assert_fails_with(
    connect: Callable[[str], None], url: str, reason: ConnectFailure
) -> ConnectionFailedError:
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError) as caught:
        connect(url)
    elapsed = time.monotonic() - started
    error = caught.value
    assert error.reason is reason, str(error)
    assert elapsed < LIMIT, f"{reason}: {elapsed:.1f} s"
    assert reason.value in str(error)
    for text in (str(error), repr(error)):
        assert PASSWORD not in text
    assert error.__cause__ is None  # psycopg's message (which may quote the URL) is not chained
    return error


@pytest.mark.parametrize("kind", sorted(CONNECTS))
def test_each_cause_is_named_within_the_timeout(tcp: PasswordServer, kind: str) -> None:
    for label, url, reason in _cases(tcp):
        error = _assert_fails_with(CONNECTS[kind], url, reason)
        assert str(error).startswith("cannot connect to the database: "), label


@pytest.mark.parametrize("kind", sorted(CONNECTS))
def test_a_host_that_never_answers_times_out(kind: str) -> None:
    with silent_listener() as port:
        url = f"postgresql://u:{PASSWORD}@127.0.0.1:{port}/app"
        _assert_fails_with(CONNECTS[kind], url, ConnectFailure.TIMEOUT)


def test_the_right_password_connects(tcp: PasswordServer) -> None:
    _connect_sync(tcp.url("app"))
    _connect_async(tcp.url("app"))


def test_an_unmigrated_database_says_to_run_db_up(tcp: PasswordServer) -> None:
    config = DatabaseConfig(url=tcp.url("app"), connect_timeout=TIMEOUT)
    with (
        RepositoryFactory.connect(config) as factory,
        pytest.raises(NotMigratedError, match=r"run `llmcp db up`"),
    ):
        factory.repositories().organizations.get_by_slug("acme")


def test_the_cli_names_the_cause_in_one_line(tcp: PasswordServer) -> None:
    for label, url, reason in _cases(tcp):
        env = {"LLMCP_DATABASE_URL": url, "LLMCP_CONNECT_TIMEOUT": str(TIMEOUT), "PATH": ""}
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "llmcp.cli", "db", "status"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        assert result.returncode == 1, label
        assert result.stderr.count("\n") == 1, (label, result.stderr)
        assert reason.value in result.stderr, (label, result.stderr)
        assert PASSWORD not in result.stdout + result.stderr, label
        # the interpreter's start and dbmate's own are included here
        assert elapsed < LIMIT + 3, (label, elapsed)
