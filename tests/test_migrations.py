"""Every migration is reversible, the committed schema dump is current, a service's
own folder joins llmcp's, and the migration lock never outlives a run.

Migrating is the owner's work (DDL, dbmate's schema_migrations): every URL here
is ``databases.owner_url``."""

from __future__ import annotations

import re
import shutil
import threading
from importlib import resources
from pathlib import Path

import psycopg
import pytest

from llmcp.errors import ConnectFailure, ConnectionFailedError, MigrationError
from llmcp.migrate import (
    MIGRATION_LOCK_KEY,
    MIGRATIONS_DIR_VARIABLE,
    Migrator,
    dbmate_sslmode,
    dbmate_url,
    default_migrations_dirs,
    packaged_migrations_dir,
    service_migrations_dir,
)
from llmcp.testing import TestDatabases

# dbmate's dump leaves privileges out: they are compared from the catalogs. An ACL
# that grants exactly the default (the owner's own privileges, as after REVOKE ALL
# of every grant) is the default, whether stored or NULL.
_PRIVILEGES = """
SELECT c.relname, NULL, c.relacl::text
FROM pg_class AS c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relacl IS NOT NULL
    AND c.relacl <> acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)
UNION ALL
SELECT c.relname, a.attname, a.attacl::text
FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
WHERE c.relnamespace = current_schema()::regnamespace AND a.attacl IS NOT NULL
    AND NOT a.attisdropped
UNION ALL
SELECT p.proname, NULL, p.proacl::text
FROM pg_proc AS p
WHERE p.pronamespace = current_schema()::regnamespace AND p.proacl IS NOT NULL
    AND p.proacl <> acldefault('f', p.proowner)
ORDER BY 1, 2, 3
"""


def _dump(migrator: Migrator, path: Path) -> str:
    migrator.dump(path)
    text = path.read_text()
    # the version banner and the migrations table contents are not schema
    text = re.sub(r"^-- Dumped (from|by) .*$", "", text, flags=re.M)
    with psycopg.connect(migrator.url) as conn:
        privileges = conn.execute(_PRIVILEGES).fetchall()
    return text.split("--\n-- Dbmate schema migrations")[0] + repr(privileges)


# What a down migration cannot undo: PostgreSQL cannot remove a value from an enum,
# so the value stays (unused) once its migration is rolled back. file -> what it
# leaves in the dump
IRREVERSIBLE = {"20261201000200_add_audit_action_purged.sql": ",\n    'audit_logs_purged'\n"}


def test_each_migration_rolls_back_to_the_schema_before_it(
    databases: TestDatabases, tmp_path: Path
) -> None:
    files = sorted(packaged_migrations_dir().glob("*.sql"))
    assert len(files) >= 6
    db = databases.create_empty("steps")
    url = databases.owner_url(db)
    # Dumps going up one migration at a time: dumps[k] has the first k applied.
    dumps = [_dump(Migrator(url, migrations_dirs=[tmp_path / "none"]), tmp_path / "0.sql")]
    staged = tmp_path / "staged"
    staged.mkdir()
    for k, file in enumerate(files, start=1):
        shutil.copy(file, staged / file.name)
        migrator = Migrator(url, migrations_dirs=[staged])
        migrator.up()
        dumps.append(_dump(migrator, tmp_path / f"{k}.sql"))
        assert dumps[k] != dumps[k - 1], f"{file.name} changed nothing"

    migrator = Migrator(url)
    left: list[str] = []  # what the rolled-back migrations of IRREVERSIBLE left behind
    for k in range(len(files), 0, -1):
        migrator.rollback()
        down = _dump(migrator, tmp_path / "down.sql")
        if files[k - 1].name in IRREVERSIBLE:
            left.append(IRREVERSIBLE[files[k - 1].name])
        for remnant in left:  # until the migration that made the type is rolled back too
            down = down.replace(remnant, "\n")
        assert down == dumps[k - 1], files[k - 1].name
    assert migrator.status().applied == 0

    migrator.up()
    assert _dump(migrator, tmp_path / "again.sql") == dumps[-1]


def test_committed_schema_dump_matches_the_migrations(
    databases: TestDatabases, tmp_path: Path
) -> None:
    committed = resources.files("llmcp.dbmate").joinpath("schema.sql").read_text()
    fresh = tmp_path / "schema.sql"
    Migrator(databases.owner_url(databases.template)).dump(fresh)
    # A dump of another major version differs in its banner only.
    banner = re.compile(r"^-- Dumped from database version .*$", re.M)
    assert banner.sub("", fresh.read_text()) == banner.sub("", committed), (
        "dbmate/schema.sql is stale: run `llmcp db dump`"
    )


def test_status_lists_every_migration_as_applied(databases: TestDatabases) -> None:
    status = Migrator(databases.owner_url(databases.template)).status()
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
    migrator = Migrator(
        databases.owner_url(databases.create_empty("broken")), migrations_dirs=[tmp_path]
    )
    with pytest.raises(MigrationError) as caught:
        migrator.up()
    assert caught.value.exit_code != 0
    assert caught.value.command == "up"
    assert 'relation "no_such_table" does not exist' in str(caught.value)
    assert migrator.status().applied == 0  # the failed migration left nothing behind


def test_unreachable_server_raises_connection_failed_error() -> None:
    migrator = Migrator("postgresql://nobody@127.0.0.1:1/nothing")
    with pytest.raises(ConnectionFailedError) as caught:
        migrator.status()
    assert caught.value.reason is ConnectFailure.REFUSED


def test_new_creates_an_empty_migration_with_both_sections(tmp_path: Path) -> None:
    path = Migrator("postgres://unused", migrations_dirs=[tmp_path]).new("add_widgets")
    assert path.parent == tmp_path
    assert path.name.endswith("_add_widgets.sql")
    text = path.read_text()
    assert "-- migrate:up" in text and "-- migrate:down" in text


def test_new_rejects_a_name_dbmate_would_mangle(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="lowercase"):
        Migrator("postgres://unused", migrations_dirs=[tmp_path]).new("Add Widgets; rm -rf /")
    assert list(tmp_path.iterdir()) == []


# -- where migrations come from ------------------------------------------------


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current directory without pyproject.toml, and no LLMCP_MIGRATIONS_DIR."""
    monkeypatch.delenv(MIGRATIONS_DIR_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_without_a_service_folder_only_llmcps_migrations_run(elsewhere: Path) -> None:
    assert service_migrations_dir() is None
    assert default_migrations_dirs() == (packaged_migrations_dir(),)
    with pytest.raises(MigrationError, match=MIGRATIONS_DIR_VARIABLE):
        Migrator("postgres://unused").new("add_widgets")  # never into llmcp's own folder


def test_pyproject_names_the_service_folder_relative_to_itself(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = elsewhere / "service"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.llmcp]\nmigrations-dir = "db/migrations"\n')
    monkeypatch.chdir(project)
    assert default_migrations_dirs() == (packaged_migrations_dir(), project / "db/migrations")
    path = Migrator("postgres://unused").new("add_widgets")
    assert path.parent == project / "db/migrations"


def test_the_environment_wins_over_pyproject(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (elsewhere / "pyproject.toml").write_text('[tool.llmcp]\nmigrations-dir = "ignored"\n')
    monkeypatch.setenv(MIGRATIONS_DIR_VARIABLE, "from_env")
    assert service_migrations_dir() == elsewhere / "from_env"


def test_a_folder_named_twice_counts_once(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # as in the llmcp checkout, where the service folder is the packaged one
    monkeypatch.setenv(MIGRATIONS_DIR_VARIABLE, str(packaged_migrations_dir()))
    assert default_migrations_dirs() == (packaged_migrations_dir(),)


def _widgets_folder(root: Path) -> Path:
    """A service's migrations folder: one migration, newer than llmcp's."""
    folder = root / "service_migrations"
    folder.mkdir()
    (folder / "20990101000000_create_widgets.sql").write_text(
        "-- migrate:up\n"
        "CREATE TABLE widgets (id bigint PRIMARY KEY, org_id uuid NOT NULL,\n"
        "  application_id uuid NOT NULL,\n"
        "  FOREIGN KEY (org_id, application_id) REFERENCES applications (org_id, id));\n"
        "-- migrate:down\nDROP TABLE widgets;\n"
    )
    return folder


def _has_table(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def test_a_service_folder_is_applied_after_llmcps_and_rolled_back_first(
    databases: TestDatabases, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _widgets_folder(elsewhere)
    monkeypatch.setenv(MIGRATIONS_DIR_VARIABLE, str(folder))
    url = databases.owner_url(databases.create_empty("service"))
    migrator = Migrator(url)
    assert migrator.migrations_dirs == (packaged_migrations_dir(), folder)

    migrator.up()  # the widgets table references llmcp's applications: order matters
    names = [m.name for m in migrator.status().migrations]
    llmcps = sorted(p.name for p in packaged_migrations_dir().glob("*.sql"))
    assert names == [*llmcps, "20990101000000_create_widgets.sql"]
    assert migrator.status().pending == 0
    assert _has_table(url, "widgets")

    migrator.rollback()
    status = migrator.status()
    assert [m.name for m in status.migrations if not m.applied] == [names[-1]]
    assert not _has_table(url, "widgets") and _has_table(url, "applications")


# -- the migration lock --------------------------------------------------------


def _advisory_locks(url: str) -> int:
    """Advisory locks held in the database of ``url``, by anyone."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return int(row[0]) if row else 0


def test_no_advisory_lock_outlives_a_run(databases: TestDatabases, tmp_path: Path) -> None:
    url = databases.owner_url(databases.create_empty("lock"))
    Migrator(url).up()
    assert _advisory_locks(url) == 0

    (tmp_path / "20990101000000_broken.sql").write_text(
        "-- migrate:up\nSELECT no_such_function();\n-- migrate:down\n"
    )
    with pytest.raises(MigrationError):
        Migrator(url, migrations_dirs=[packaged_migrations_dir(), tmp_path]).up()
    assert _advisory_locks(url) == 0


def test_a_run_stopped_by_its_timeout_leaves_no_lock(
    databases: TestDatabases, tmp_path: Path
) -> None:
    (tmp_path / "20990101000000_slow.sql").write_text(
        "-- migrate:up\nSELECT pg_sleep(3);\n-- migrate:down\n"
    )
    url = databases.owner_url(databases.create_empty("slow"))
    with pytest.raises(MigrationError, match="timed out") as caught:
        Migrator(url, migrations_dirs=[tmp_path], timeout_s=1).up()
    assert caught.value.exit_code == 124
    assert _advisory_locks(url) == 0


def test_a_migrator_waits_for_the_lock_up_to_its_timeout(databases: TestDatabases) -> None:
    url = databases.owner_url(databases.create_empty("held"))
    with psycopg.connect(url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        with pytest.raises(MigrationError, match="held the migration lock") as caught:
            Migrator(url, timeout_s=1).up()
    assert caught.value.command == "up"
    assert Migrator(url).status().applied == 0  # it waited: nothing ran


def test_concurrent_migrators_wait_for_each_other(databases: TestDatabases) -> None:
    url = databases.owner_url(databases.create_empty("race"))
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def migrate() -> None:
        start.wait()
        try:
            Migrator(url).up()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    files = sorted(p.name.split("_")[0] for p in packaged_migrations_dir().glob("*.sql"))
    with psycopg.connect(url) as conn:
        applied = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert applied == files  # each once
    assert _advisory_locks(url) == 0


# -- what dbmate is given ------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "ssl_in_use", "expected"),
    [
        ("prefer", True, "require"),
        ("prefer", False, "disable"),
        ("allow", False, "disable"),
        ("allow", True, "require"),
        ("disable", False, "disable"),
        ("require", True, "require"),
        ("verify-ca", True, "verify-ca"),
        ("verify-full", True, "verify-full"),
    ],
)
def test_sslmode_for_dbmate_is_what_the_probe_negotiated_or_as_asked(
    requested: str, ssl_in_use: bool, expected: str
) -> None:
    assert dbmate_sslmode(requested, ssl_in_use=ssl_in_use, over_socket=False) == expected
    assert dbmate_sslmode(requested, ssl_in_use=False, over_socket=True) == "disable"


def test_dbmate_url_names_a_socket_its_way_and_leaves_libpq_only_keys_out() -> None:
    socket = dbmate_url(
        {"host": "/tmp/pg run", "port": "5433", "user": "me", "dbname": "app",
         "sslmode": "disable", "connect_timeout": "3", "keepalives": "1"}
    )  # fmt: skip
    assert socket == (
        "postgres://me@/app?connect_timeout=3&sslmode=disable&socket=%2Ftmp%2Fpg%20run&port=5433"
    )
    tcp = dbmate_url({"host": "::1", "port": "5432", "user": "a b", "dbname": "x"})
    assert tcp == "postgres://a%20b@[::1]:5432/x"
