"""No password reaches any output: reprs, errors, log records (DEBUG included),
the command line, health checks; and keyset cursors have no public secret."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg_pool
import pytest

from llmcp import conninfo
from llmcp.config import DatabaseConfig
from llmcp.errors import LlmcpError
from llmcp.factory import RepositoryFactory
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.inputs import NewOrganization
from llmcp.migrate import Migrator
from tests.servers import PASSWORD, PasswordServer, free_port, password_server


@pytest.fixture(scope="module")
def tcp() -> Iterator[PasswordServer]:
    with password_server() as server:
        Migrator(server.url("app")).up()
        yield server


class Outputs:
    """Everything a run showed: texts added by hand, and every log record."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.texts: list[str] = []

    def add(self, *texts: object) -> None:
        self.texts += [str(t) for t in texts] + [repr(t) for t in texts]

    def error(self, exc: BaseException) -> None:
        self.add(exc)
        for linked in (exc.__cause__, exc.__context__ if not exc.__suppress_context__ else None):
            if linked is not None:
                self.error(linked)

    def everything(self) -> str:
        records = [
            f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}"
            for r in self.caplog.records
        ]
        return "\n".join(self.texts + records)


@pytest.fixture
def outputs(caplog: pytest.LogCaptureFixture) -> Outputs:
    caplog.set_level(logging.DEBUG)
    return Outputs(caplog)


def test_a_working_run_shows_no_password(tcp: PasswordServer, outputs: Outputs) -> None:
    config = DatabaseConfig(url=tcp.url("app"), cursor_secret=b"s" * 32)
    outputs.add(config, DatabaseConfig.from_env({"LLMCP_DATABASE_URL": tcp.url("app")}))
    with RepositoryFactory.connect(config) as factory:
        repos = factory.repositories()
        org = repos.organizations.create(NewOrganization(name="Acme", slug="acme"))
        outputs.add(factory, factory.database, repos, org, factory.database.health_check())
        try:
            repos.organizations.create(NewOrganization(name="Acme", slug="acme"))
        except LlmcpError as exc:
            outputs.error(exc)
    assert "PasswordServer" not in outputs.everything()  # sanity: the texts are ours
    assert config.url in [tcp.url("app")]  # the config itself keeps the real URL
    assert PASSWORD not in outputs.everything()
    assert "***" in repr(config)


def test_async_errors_and_logs_show_no_password(tcp: PasswordServer, outputs: Outputs) -> None:
    async def run() -> None:
        for url in (tcp.url("app"), tcp.url("app", password="wrong-" + PASSWORD)):
            try:
                async with await AsyncRepositoryFactory.connect(DatabaseConfig(url=url)) as f:
                    outputs.add(await f.database.health_check(), f.database.config)
            except LlmcpError as exc:
                outputs.error(exc)

    asyncio.run(run())
    assert PASSWORD not in outputs.everything()


def test_failed_connections_and_migrations_show_no_password(
    tcp: PasswordServer, outputs: Outputs, tmp_path: Path
) -> None:
    broken = tmp_path / "migrations"
    broken.mkdir()
    (broken / "20990101000000_broken.sql").write_text(
        "-- migrate:up\nCREATE TABLE broken (id uuid REFERENCES no_such_table (id));\n"
        "-- migrate:down\nDROP TABLE broken;\n"
    )
    urls = [
        tcp.url("app", password="wrong-" + PASSWORD),
        f"postgresql://u:{PASSWORD} x@127.0.0.1:{tcp.port}/app",
        f"postgresql://u:{PASSWORD}@127.0.0.1:{free_port()}/app",
        tcp.url("nothing_here"),
    ]
    for url in urls:
        with pytest.raises(LlmcpError) as caught:
            RepositoryFactory.connect(DatabaseConfig(url=url, connect_timeout=2))
        outputs.error(caught.value)
        with pytest.raises(LlmcpError) as caught:
            Migrator(url).status()
        outputs.error(caught.value)
    with pytest.raises(LlmcpError) as caught:
        Migrator(tcp.url("app"), migrations_dirs=[broken]).up()
    outputs.error(caught.value)
    assert PASSWORD not in outputs.everything()


def test_the_command_line_shows_no_password(tcp: PasswordServer) -> None:
    shown = []
    for url in (tcp.url("app"), tcp.url("app", password="wrong-" + PASSWORD)):
        for command in (["db", "status"], ["db", "up"]):
            result = subprocess.run(
                [sys.executable, "-m", "llmcp.cli", *command],
                env={"LLMCP_DATABASE_URL": url, "PATH": ""},
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            shown.append(result.stdout + result.stderr)
    assert "applied" in shown[0]  # the good URL worked
    assert PASSWORD not in "\n".join(shown)


def test_psycopg_pool_records_are_masked(outputs: Outputs) -> None:
    conninfo.install_log_filter()
    url = f"postgresql://u:{PASSWORD} x@127.0.0.1:{free_port()}/app"
    pool = psycopg_pool.ConnectionPool(url, min_size=1, open=False)
    with pytest.raises(psycopg_pool.PoolTimeout):
        pool.open(wait=True, timeout=1)
    pool.close()
    records = [r for r in outputs.caplog.records if r.name.startswith("psycopg")]
    assert records, "psycopg_pool logged nothing: the test no longer provokes it"
    assert PASSWORD not in outputs.everything()


def test_cursors_without_a_configured_secret_use_a_random_one_and_warn_once(
    tcp: PasswordServer,
) -> None:
    script = (
        "import logging, sys\n"
        "from llmcp import DatabaseConfig, RepositoryFactory\n"
        "logging.basicConfig(stream=sys.stdout, format='%(levelname)s %(message)s')\n"
        "for _ in range(3):\n"
        f"    RepositoryFactory.connect(DatabaseConfig(url={tcp.url('app')!r})).close()\n"
        "from llmcp.paging import process_secret\n"
        "print(process_secret().hex())\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        for _ in range(2)
    ]
    for out in runs:
        assert out.count("LLMCP_CURSOR_SECRET is not set") == 1, out
    secrets = [out.splitlines()[-1] for out in runs]
    assert secrets[0] != secrets[1]  # random per process, not a public default
    assert len(bytes.fromhex(secrets[0])) >= 16
