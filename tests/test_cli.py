"""The ``llmcp`` command: db subcommands on the embedded server and on
``LLMCP_DATABASE_URL``, a service's own migrations folder, clear failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmcp.errors import ConnectFailure
from llmcp.migrate import packaged_migrations_dir
from llmcp.testing import TestDatabases


def _llmcp(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmcp.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMCP_")}
    env.update(extra)
    return env


@pytest.fixture
def data_dir(private_dir: Path) -> Path:
    """A data folder for the embedded server that llmcp creates itself."""
    return private_dir / "pg"


def test_up_status_rollback_on_the_embedded_server(tmp_path: Path, data_dir: Path) -> None:
    env = _env(LLMCP_DATA_DIR=str(data_dir))
    count = len(list(packaged_migrations_dir().glob("*.sql")))

    up = _llmcp("db", "up", cwd=tmp_path, env=env)
    assert up.returncode == 0, up.stderr
    assert f"{count} applied, 0 pending" in up.stdout

    status = _llmcp("db", "status", "--exit-code", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("[X]") == count

    back = _llmcp("db", "rollback", cwd=tmp_path, env=env)
    assert back.returncode == 0, back.stderr
    pending = _llmcp("db", "status", "--exit-code", cwd=tmp_path, env=env)
    assert pending.returncode == 1
    assert pending.stdout.count("[ ]") == 1


def test_commands_use_llmcp_database_url_when_set(databases: TestDatabases, tmp_path: Path) -> None:
    # the owner: only it may read dbmate's schema_migrations
    env = _env(LLMCP_DATABASE_URL=databases.owner_url(databases.template))
    status = _llmcp("db", "status", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    assert "pending: 0" in status.stdout
    assert not (tmp_path / ".llmcp").exists()  # no embedded server was started


def test_unreachable_server_prints_one_line_and_fails(tmp_path: Path) -> None:
    env = _env(LLMCP_DATABASE_URL="postgresql://nobody@127.0.0.1:1/x")
    result = _llmcp("db", "status", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("llmcp: ") and ConnectFailure.REFUSED in result.stderr
    assert "Traceback" not in result.stderr


def test_dump_writes_the_schema_file(databases: TestDatabases, tmp_path: Path) -> None:
    env = _env(LLMCP_DATABASE_URL=databases.owner_url(databases.template))  # pg_dump: the owner
    out = tmp_path / "schema.sql"
    result = _llmcp("db", "dump", "--schema-file", str(out), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE public.inference_requests" in out.read_text()


def test_new_creates_a_migration_file(tmp_path: Path) -> None:
    result = _llmcp(
        "db", "new", "add_widgets", "--migrations-dir", str(tmp_path), cwd=tmp_path, env=_env()
    )
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("*_add_widgets.sql"))) == 1


def test_new_writes_into_the_folder_llmcp_migrations_dir_names(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    result = _llmcp(
        "db", "new", "add_widgets", cwd=tmp_path, env=_env(LLMCP_MIGRATIONS_DIR="migrations")
    )
    assert result.returncode == 0, result.stderr
    assert len(list(folder.glob("*_add_widgets.sql"))) == 1


def test_new_writes_into_the_folder_pyproject_names(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.llmcp]\nmigrations-dir = "db/migrations"\n')
    result = _llmcp("db", "new", "add_widgets", cwd=tmp_path, env=_env())
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "db/migrations").glob("*_add_widgets.sql"))) == 1


def test_new_without_a_service_folder_says_how_to_configure_one(tmp_path: Path) -> None:
    result = _llmcp("db", "new", "add_widgets", cwd=tmp_path, env=_env())
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "LLMCP_MIGRATIONS_DIR" in result.stderr and "[tool.llmcp]" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_up_status_rollback_see_the_service_folder_too(
    databases: TestDatabases, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20990101000000_create_widgets.sql").write_text(
        "-- migrate:up\nCREATE TABLE widgets (id bigint PRIMARY KEY);\n"
        "-- migrate:down\nDROP TABLE widgets;\n"
    )
    name = databases.create_empty("cli_service")
    env = _env(  # migrating (DDL) as the owner, through the variable made for it
        LLMCP_DATABASE_URL=databases.url(name),
        LLMCP_MIGRATION_URL=databases.owner_url(name),
        LLMCP_MIGRATIONS_DIR=str(folder),
    )
    count = len(list(packaged_migrations_dir().glob("*.sql"))) + 1

    up = _llmcp("db", "up", cwd=tmp_path, env=env)
    assert up.returncode == 0, up.stderr
    assert f"{count} applied, 0 pending" in up.stdout

    back = _llmcp("db", "rollback", cwd=tmp_path, env=env)
    assert back.returncode == 0, back.stderr
    status = _llmcp("db", "status", cwd=tmp_path, env=env)
    assert "[ ] 20990101000000_create_widgets.sql" in status.stdout
    assert status.stdout.count("[X]") == count - 1
