"""Every migration is reversible, and the committed schema dump is current."""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from llmcp.errors import MigrationError
from llmcp.migrate import Migrator, packaged_migrations_dir
from llmcp.testing import TestDatabases


def _dump(migrator: Migrator, path: Path) -> str:
    migrator.dump(path)
    text = path.read_text()
    # the version banner and the migrations table contents are not schema
    text = re.sub(r"^-- Dumped (from|by) .*$", "", text, flags=re.M)
    return text.split("--\n-- Dbmate schema migrations")[0]


def test_each_migration_rolls_back_to_the_schema_before_it(
    databases: TestDatabases, tmp_path: Path
) -> None:
    files = sorted(packaged_migrations_dir().glob("*.sql"))
    assert len(files) >= 6
    db = databases.create_empty("steps")
    url = databases.url(db)
    # Dumps going up one migration at a time: dumps[k] has the first k applied.
    dumps = [_dump(Migrator(url, migrations_dir=tmp_path / "none"), tmp_path / "0.sql")]
    staged = tmp_path / "staged"
    staged.mkdir()
    for k, file in enumerate(files, start=1):
        shutil.copy(file, staged / file.name)
        migrator = Migrator(url, migrations_dir=staged)
        migrator.up()
        dumps.append(_dump(migrator, tmp_path / f"{k}.sql"))
        assert dumps[k] != dumps[k - 1], f"{file.name} changed nothing"

    migrator = Migrator(url)
    for k in range(len(files), 0, -1):
        migrator.rollback()
        assert _dump(migrator, tmp_path / "down.sql") == dumps[k - 1], files[k - 1].name
    assert migrator.status().applied == 0

    migrator.up()
    assert _dump(migrator, tmp_path / "again.sql") == dumps[-1]


def test_committed_schema_dump_matches_the_migrations(
    databases: TestDatabases, tmp_path: Path
) -> None:
    committed = resources.files("llmcp.dbmate").joinpath("schema.sql").read_text()
    fresh = tmp_path / "schema.sql"
    Migrator(databases.url(databases.template)).dump(fresh)
    # A dump of another major version differs in its banner only.
    banner = re.compile(r"^-- Dumped from database version .*$", re.M)
    assert banner.sub("", fresh.read_text()) == banner.sub("", committed), (
        "dbmate/schema.sql is stale: run `llmcp db dump`"
    )


def test_status_lists_every_migration_as_applied(databases: TestDatabases) -> None:
    status = Migrator(databases.url(databases.template)).status()
    names = [m.name for m in status.migrations]
    assert names == sorted(p.name for p in packaged_migrations_dir().glob("*.sql"))
    assert status.pending == 0
    assert status.applied == len(names)


def test_a_broken_migration_raises_migration_error_with_dbmates_message(
    databases: TestDatabases, tmp_path: Path
) -> None:
    (tmp_path / "20990101000000_broken.sql").write_text(
        "-- migrate:up\nCREATE TABLE broken (id uuid REFERENCES no_such_table (id));\n"
        "-- migrate:down\nDROP TABLE broken;\n"
    )
    migrator = Migrator(databases.url(databases.create_empty("broken")), migrations_dir=tmp_path)
    with pytest.raises(MigrationError) as caught:
        migrator.up()
    assert caught.value.exit_code != 0
    assert caught.value.command == "up"
    assert 'relation "no_such_table" does not exist' in str(caught.value)
    assert migrator.status().applied == 0  # the failed migration left nothing behind


def test_unreachable_server_raises_migration_error() -> None:
    migrator = Migrator("postgresql://nobody@127.0.0.1:1/nothing?sslmode=disable")
    with pytest.raises(MigrationError, match="connection refused"):
        migrator.status()


def test_new_creates_an_empty_migration_with_both_sections(tmp_path: Path) -> None:
    path = Migrator("postgres://unused", migrations_dir=tmp_path).new("add_widgets")
    assert path.parent == tmp_path
    assert path.name.endswith("_add_widgets.sql")
    text = path.read_text()
    assert "-- migrate:up" in text and "-- migrate:down" in text


def test_new_rejects_a_name_dbmate_would_mangle(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="lowercase"):
        Migrator("postgres://unused", migrations_dir=tmp_path).new("Add Widgets; rm -rf /")
    assert list(tmp_path.iterdir()) == []
