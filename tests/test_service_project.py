"""A service built on the installed wheel keeps its own migrations and queries:
``llmcp db up`` applies them after llmcp's (as the owner, ``LLMCP_MIGRATION_URL``),
granting its queries' privileges to ``llmcp_app``; ``llmcp codegen`` types its
query (a join of its table to ``applications``) in its own package, and the
generated code runs, as the application role, inside llmcp's transactions through
``connection()``. And which migrations codegen describes on, per configuration."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from llmcp.dev.codegen import CodegenConfig
from llmcp.migrate import MIGRATIONS_DIR_VARIABLE, packaged_migrations_dir
from llmcp.testing import TestDatabases
from tests.test_packaging import (
    ROOT,
    build_wheel,
    clean_env,
    install_with_this_environment,
    make_venv,
    run,
)

PYPROJECT = """
[project]
name = "svc"
version = "0.1.0"

[tool.llmcp]
migrations-dir = "migrations"

[tool.llmcp.codegen]
sql-dir = "svc/sql"
out-dir = "svc/generated"
package = "svc.generated"
sql-package = "svc.sql"
"""

# after every llmcp migration; its foreign key keeps a label inside its organization,
# the grant gives the service (llmcp_app) what its queries need and no more, and
# row-level security shows it the current tenant's labels only, as llmcp's tables do
MIGRATION = """
-- migrate:up
CREATE TABLE app_labels (
    org_id uuid NOT NULL,
    app_id uuid NOT NULL,
    label text NOT NULL,
    note text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, app_id, label),
    CONSTRAINT app_labels_app_fkey FOREIGN KEY (org_id, app_id)
        REFERENCES applications (org_id, id) ON DELETE CASCADE
);
GRANT SELECT, INSERT ON app_labels TO llmcp_app;
GRANT SELECT ON app_labels TO llmcp_readonly;
ALTER TABLE app_labels ENABLE ROW LEVEL SECURITY;
CREATE POLICY app_labels_tenant ON app_labels TO llmcp_app
USING (org_id = llmcp_current_org()) WITH CHECK (org_id = llmcp_current_org());
CREATE POLICY app_labels_readonly ON app_labels FOR SELECT TO llmcp_readonly USING (true);

-- migrate:down
DROP TABLE app_labels;
"""

QUERIES = """
-- name: add_label(org_id, app_id, label, note)<!
-- Label one application of an organization.
INSERT INTO app_labels (org_id, app_id, label, note)
VALUES (:org_id, :app_id, :label, :note)
RETURNING org_id, app_id, label, note, created_at;

-- name: labels_of_org(org_id)
-- Every label of an organization's applications, with the application's name.
SELECT a.name AS app_name, l.label, l.note
FROM app_labels AS l
JOIN applications AS a ON a.org_id = l.org_id AND a.id = l.app_id
WHERE l.org_id = :org_id
ORDER BY a.name, l.label;
"""

# The service: llmcp's repositories make the tenant, its own generated queries
# run on the transaction's connection; a rollback undoes them with the rest.
APP = '''
"""A service using llmcp's repositories and its own generated queries."""

import asyncio
import typing
import uuid

from llmcp import (
    AsyncRepositoryFactory,
    NewApplication,
    NewOrganization,
    ReferenceViolationError,
    RepositoryFactory,
    hash_api_key,
)
from llmcp.tenancy import tenant
from svc.generated import models
from svc.generated.labels import AsyncLabelsQueries, LabelsQueries

LABELS = LabelsQueries()


def labels(factory: RepositoryFactory, org_id: uuid.UUID) -> list[tuple[str, str]]:
    with tenant(org_id), factory.transaction_manager().connection() as conn:
        return [(row.app_name, row.label) for row in LABELS.labels_of_org(conn, org_id=org_id)]


def main() -> None:
    hints = typing.get_type_hints(models.LabelsOfOrgRow).items()
    print("row:", ", ".join(f"{name}: {getattr(hint, '__name__', hint)}" for name, hint in hints))
    with RepositoryFactory.connect() as factory:
        repos, tx = factory.repositories(), factory.transaction_manager()
        org = repos.organizations.create(NewOrganization(name="Acme", slug="acme"))
        key = hash_api_key("sk-chat")
        app = repos.applications.create(NewApplication(org_id=org.id, name="chat", api_key_hash=key))
        with tx.transaction(), tenant(org.id):
            with tx.connection() as conn:
                added = LABELS.add_label(conn, org_id=org.id, app_id=app.id, label="beta", note=None)
                rows = LABELS.labels_of_org(conn, org_id=org.id)
            assert repos.applications.get_by_id(org.id, app.id) == app  # the same transaction
        assert isinstance(added, models.AppLabel) and added.label == "beta"
        assert [(r.app_name, r.label, r.note) for r in rows] == [("chat", "beta", None)]
        print("committed:", labels(factory, org.id))

        try:
            with tx.transaction():
                with tenant(org.id), tx.connection() as conn:
                    LABELS.add_label(conn, org_id=org.id, app_id=app.id, label="undone", note="x")
                repos.organizations.create(NewOrganization(name="Gone", slug="gone"))
                raise RuntimeError("give up")
        except RuntimeError:
            pass
        assert repos.organizations.get_by_slug("gone") is None
        print("after rollback:", labels(factory, org.id))

        other = repos.organizations.create(NewOrganization(name="Other", slug="other"))
        try:
            with tenant(other.id), tx.connection(operation="labels.add") as conn:
                LABELS.add_label(conn, org_id=other.id, app_id=app.id, label="x", note=None)
        except ReferenceViolationError as exc:  # mapped like the repositories' errors
            print("cross-tenant:", exc)
    asyncio.run(main_async(org.id, app.id))


async def main_async(org_id: uuid.UUID, app_id: uuid.UUID) -> None:
    queries = AsyncLabelsQueries()
    async with await AsyncRepositoryFactory.connect() as factory:
        tx = factory.transaction_manager()
        async with tx.transaction(), tx.connection() as conn:
            with tenant(org_id):
                await queries.add_label(conn, org_id=org_id, app_id=app_id, label="async", note="a")
                rows = await queries.labels_of_org(conn, org_id=org_id)
    print("async:", [(row.app_name, row.label) for row in rows])


main()
'''


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the venv with the wheel and this environment's packages, the service project)."""
    root = tmp_path_factory.mktemp("service")
    target = root / "venv"
    install_with_this_environment(make_venv(target), build_wheel(root / "dist"))
    project = root / "project"
    files = {
        "pyproject.toml": PYPROJECT,
        "migrations/20300101000000_create_app_labels.sql": MIGRATION,
        "svc/__init__.py": '"""A service built on llmcp."""\n',
        "svc/sql/labels.sql": QUERIES,
        "app.py": APP,
    }
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(textwrap.dedent(text).lstrip())
    return target, project


def test_a_service_migrates_generates_and_runs_its_queries_in_llmcp_transactions(
    service: tuple[Path, Path], databases: TestDatabases
) -> None:
    target, project = service
    name = databases.create_empty("svc")
    # migrations as the owner (they create tables), the service as the application role
    env = clean_env(
        target,
        LLMCP_DATABASE_URL=databases.url(name),
        LLMCP_MIGRATION_URL=databases.owner_url(name),
    )

    up = run(target, ["llmcp", "db", "up"], project, env)
    assert up.returncode == 0, up.stderr
    status = run(target, ["llmcp", "db", "status", "--exit-code"], project, env)
    assert status.returncode == 0, status.stdout + status.stderr
    applied = [line for line in status.stdout.splitlines() if line.startswith("[X] ")]
    assert len(applied) == len(list(packaged_migrations_dir().glob("*.sql"))) + 1
    assert applied[-1] == "[X] 20300101000000_create_app_labels.sql"  # after llmcp's

    # codegen migrates a scratch database of its own on the server that
    # LLMCP_DATABASE_URL names (so it starts no embedded one)
    codegen_env = clean_env(target, LLMCP_DATABASE_URL=databases.admin_url)
    codegen = run(target, ["llmcp", "codegen"], project, codegen_env)
    assert codegen.returncode == 0, codegen.stderr
    assert_typed(project / "svc" / "generated", target / "bin" / "python")
    check = run(target, ["llmcp", "codegen", "--check"], project, codegen_env)
    assert check.returncode == 0, check.stderr

    app = run(target, ["python", "app.py"], project, env)
    assert app.returncode == 0, app.stderr
    lines = app.stdout.splitlines()
    assert lines[0] == "row: app_name: str, label: str, note: str | None"
    assert lines[1:3] == ["committed: [('chat', 'beta')]", "after rollback: [('chat', 'beta')]"]
    assert lines[3] == (
        "cross-tenant: labels.add: app does not reference an existing row "
        "(constraint app_labels_app_fkey)"
    )
    assert lines[4] == "async: [('chat', 'async'), ('chat', 'beta')]"


def assert_typed(generated: Path, python: Path) -> None:
    """The insert's parameters and both row structs carry the column types, a NOT
    NULL column not Optional; and the package and its user pass ``mypy --strict``."""
    labels = (generated / "labels.py").read_text()
    models = (generated / "models.py").read_text()
    assert "# Code generated by `llmcp codegen` from svc/sql/labels.sql. DO NOT EDIT." in labels
    assert 'SOURCE = sql_file("svc.sql", "labels.sql")' in labels
    signature = "*, org_id: uuid.UUID, app_id: uuid.UUID, label: str, note: str | None,"
    assert signature in " ".join(labels.split()), labels
    assert "-> models.AppLabel:" in labels and "builtins.list[models.LabelsOfOrgRow]" in labels
    assert struct_fields(models, "LabelsOfOrgRow") == [
        "app_name: str", "label: str", "note: str | None"
    ]  # fmt: skip
    assert struct_fields(models, "AppLabel") == [
        "org_id: uuid.UUID", "app_id: uuid.UUID", "label: str", "note: str | None",
        "created_at: datetime.datetime",
    ]  # fmt: skip
    # the venv's python: mypy checks against the installed wheel's types
    mypy = subprocess.run(
        [str(python), "-m", "mypy", "--strict", "--no-incremental", "svc", "app.py"],
        cwd=generated.parents[1], capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr


def struct_fields(models: str, name: str) -> list[str]:
    """The field lines of ``class name`` in a generated models module."""
    body = models.partition(f"\nclass {name}(")[2].partition("\n\n\n")[0]
    return [line.strip() for line in body.splitlines()[1:] if ": " in line and '"""' not in line]


# -- which migrations codegen describes on ------------------------------------


def write_pyproject(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(textwrap.dedent(text))
    return folder / "pyproject.toml"


def test_codegen_migrates_llmcps_folder_then_the_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MIGRATIONS_DIR_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)  # not the project's folder: --config names it
    ours = packaged_migrations_dir()
    service = write_pyproject(tmp_path / "svc", PYPROJECT)
    assert CodegenConfig.load(service).migrations_dirs == (ours, tmp_path / "svc" / "migrations")
    older = write_pyproject(tmp_path / "older", '[tool.llmcp.codegen]\nmigrations-dir = "m"\n')
    assert CodegenConfig.load(older).migrations_dirs == (ours, tmp_path / "older" / "m")
    bare = write_pyproject(tmp_path / "bare", "[tool.llmcp.codegen]\n")
    assert CodegenConfig.load(bare).migrations_dirs == (ours,)
    # llmcp's checkout: its folder is the packaged one, named once
    assert CodegenConfig.load(ROOT / "pyproject.toml").migrations_dirs == (ours,)

    monkeypatch.setenv(MIGRATIONS_DIR_VARIABLE, str(tmp_path / "from-env"))
    assert CodegenConfig.load(service).migrations_dirs == (ours, tmp_path / "from-env")
    assert CodegenConfig.load(older).migrations_dirs == (ours, tmp_path / "older" / "m")
