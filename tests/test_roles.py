"""The security model: the application role runs the service's queries and nothing else.

Every test here works on a fresh database as the application role the suite runs
as (``fresh_db``: the login role ``llmcp_test_app``, a member of ``llmcp_app``
only), with the owner (``fresh_owner_db``, who migrated it) for the setup the
service may not do. A login role of a test's own (``login_role``, dropped at
the end: roles belong to the whole server) shows what ``llmcp db grant`` gives.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

import llmcp
from llmcp.cli import main
from llmcp.config import DatabaseConfig
from llmcp.dev.scratch import TEST_APP_ROLE, ensure_app_login_role, with_role
from llmcp.error_map import map_error
from llmcp.errors import PermissionDeniedError, RoleNotFoundError, ValidationError
from llmcp.migrate import GroupRole, Migrator
from llmcp.testing import TestDatabases

Connection = psycopg.Connection[tuple[object, ...]]

# what llmcp's migrations create, the tables the service's queries use
TABLES = (
    "organizations", "applications", "users", "policies", "audit_logs",
    "inference_requests", "inference_hourly_metrics",
)  # fmt: skip


@pytest.fixture
def app(fresh_db: str) -> Iterator[Connection]:
    """A connection to the fresh database as the application role (autocommit)."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        yield conn


@pytest.fixture
def owner(fresh_owner_db: str) -> Iterator[Connection]:
    """The same database as its owner (autocommit)."""
    with psycopg.connect(fresh_owner_db, autocommit=True) as conn:
        yield conn


@pytest.fixture
def org_id(owner: Connection) -> uuid.UUID:
    """An organization with one audit log entry, made by the owner."""
    org = uuid.uuid4()
    owner.execute(
        "INSERT INTO organizations (id, name, slug) VALUES (%s, 'Acme', %s)",
        (org, f"acme-{org.hex[:8]}"),
    )
    owner.execute(
        "INSERT INTO audit_logs (org_id, action, resource_type, created_at)"
        " VALUES (%s, 'organization_created', 'organization', now() - interval '400 days')",
        (org,),
    )
    return org


def refused(conn: Connection, statement: str, params: tuple[object, ...] = ()) -> str:
    """Run ``statement`` and expect SQLSTATE 42501; returns the server's message."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(statement, params)
    return caught.value.diag.message_primary or ""


# -- what the application role is ----------------------------------------------


def test_the_suite_runs_as_a_login_role_that_is_a_member_of_llmcp_app_only(app: Connection) -> None:
    row = app.execute(
        "SELECT current_user, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
        " FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == (TEST_APP_ROLE, False, False, False, False, False)
    groups = app.execute(
        "SELECT g.rolname FROM pg_auth_members AS m JOIN pg_roles AS g ON g.oid = m.roleid"
        " WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
    ).fetchall()
    assert groups == [(GroupRole.APP.value,)]
    # and llmcp_app itself: no login, no special power, a member of nothing
    row = app.execute(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls,"
        " (SELECT count(*) FROM pg_auth_members WHERE member = r.oid)"
        " FROM pg_roles AS r WHERE rolname = 'llmcp_app'"
    ).fetchone()
    assert row == (False, False, False, False, False, 0)


@pytest.mark.parametrize("role", [TEST_APP_ROLE, GroupRole.APP.value])
def test_the_application_role_owns_nothing(app: Connection, role: str) -> None:
    # pg_shdepend holds the owner of every object of every database (deptype 'o')
    owned = app.execute(
        "SELECT count(*) FROM pg_shdepend"
        " WHERE refclassid = 'pg_authid'::regclass AND deptype = 'o'"
        " AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = %s)",
        (role,),
    ).fetchone()
    assert owned == (0,)
    owners = app.execute(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE tablename = ANY(%s)", (list(TABLES),)
    ).fetchall()
    assert len(owners) == 1 and owners[0][0] not in (TEST_APP_ROLE, GroupRole.APP.value)


def test_the_application_role_reads_and_writes_what_its_queries_need(
    app: Connection, org_id: uuid.UUID
) -> None:
    # organizations are not a tenant table: listed and resolved before a tenant is known
    assert app.execute("SELECT id FROM organizations WHERE id = %s", (org_id,)).fetchone()
    app.execute("UPDATE organizations SET name = 'Acme 2' WHERE id = %s", (org_id,))
    with app.transaction():  # a tenant-scoped call: the tenant's rows, and only those
        app.execute("SELECT set_config('llmcp.org_id', %s, true)", (str(org_id),))
        app.execute(
            "INSERT INTO users (org_id, email, email_key, cognito_sub)"
            " VALUES (%s, 'a@x.io', 'a@x.io', %s)",
            (org_id, f"sub-{uuid.uuid4()}"),
        )
        assert app.execute("SELECT count(*) FROM audit_logs").fetchone() == (1,)
        app.execute("UPDATE users SET display_name = 'A' WHERE org_id = %s", (org_id,))
    assert app.execute("SELECT count(*) FROM users").fetchone() == (0,)  # no tenant: nothing


def test_runs_sharing_a_server_create_the_login_role_race_free(databases: TestDatabases) -> None:
    """Roles belong to the server: runs starting at once each ensure the role, none fails."""
    name = f"llmcp_t_{uuid.uuid4().hex[:10]}"
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def ensure() -> None:
        start.wait()
        try:
            ensure_app_login_role(databases.admin_url, name, "pw-" + uuid.uuid4().hex)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=ensure) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        with psycopg.connect(databases.admin_url) as admin:
            groups = admin.execute(
                "SELECT g.rolname FROM pg_auth_members AS m"
                " JOIN pg_roles AS g ON g.oid = m.roleid JOIN pg_roles AS r ON r.oid = m.member"
                " WHERE r.rolname = %s",
                (name,),
            ).fetchall()
        assert groups == [(GroupRole.APP.value,)]
    finally:
        with psycopg.connect(databases.admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


# -- what it may not do -----------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE widgets (id bigint PRIMARY KEY)",
        "CREATE TABLE public.widgets (id bigint PRIMARY KEY)",
        "ALTER TABLE organizations ADD COLUMN note text",
        "ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only",
        "ALTER TABLE users DISABLE ROW LEVEL SECURITY",
        "DROP TABLE inference_requests",
        "CREATE INDEX ON organizations (name)",
        "CREATE SCHEMA elsewhere",
        "CREATE FUNCTION public.one() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE VIEW every_user AS SELECT * FROM users",
        "DROP FUNCTION llmcp_purge_audit_logs(uuid, timestamptz, text)",
        "CREATE POLICY everything ON users TO llmcp_app USING (true)",
    ],
)
def test_the_application_role_cannot_run_ddl(app: Connection, statement: str) -> None:
    refused(app, statement)


@pytest.mark.parametrize("table", TABLES)
def test_the_application_role_cannot_truncate(app: Connection, table: str) -> None:
    refused(app, sql.SQL("TRUNCATE {}").format(sql.Identifier(table)).as_string(app))


def test_the_audit_trail_is_append_only_for_the_application_role(
    app: Connection, org_id: uuid.UUID
) -> None:
    refused(app, "UPDATE audit_logs SET details = '{}' WHERE org_id = %s", (org_id,))
    refused(app, "DELETE FROM audit_logs WHERE org_id = %s", (org_id,))
    refused(app, "TRUNCATE audit_logs")
    refused(app, "SELECT llmcp_purge_audit_logs(%s, now(), 'retention')", (org_id,))
    with app.transaction():
        app.execute("SELECT set_config('llmcp.org_id', %s, true)", (str(org_id),))
        assert app.execute("SELECT count(*) FROM audit_logs").fetchone() == (1,)


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("organizations", "id"),
        ("organizations", "created_at"),
        ("organizations", "version"),
        ("applications", "org_id"),
        ("applications", "created_at"),
        ("users", "org_id"),
        ("users", "created_at"),
        ("users", "updated_at"),
        ("policies", "org_id"),
        ("policies", "created_at"),
        ("inference_requests", "org_id"),
        ("inference_requests", "created_at"),
        ("inference_requests", "app_id"),
        ("inference_hourly_metrics", "org_id"),
    ],
)
def test_a_rows_identity_and_history_cannot_be_updated(
    app: Connection, table: str, column: str
) -> None:
    """Column privileges: refused before any row is looked at (no tenant is even set)."""
    statement = sql.SQL("UPDATE {table} SET {column} = {column} WHERE false").format(
        table=sql.Identifier(table), column=sql.Identifier(column)
    )
    refused(app, statement.as_string(app))


def test_tables_outside_llmcp_are_out_of_reach(app: Connection, owner: Connection) -> None:
    owner.execute("CREATE TABLE billing_secrets (id bigint PRIMARY KEY, note text)")
    owner.execute("CREATE SCHEMA reporting")
    owner.execute("CREATE TABLE reporting.totals (n bigint)")
    owner.execute("INSERT INTO billing_secrets VALUES (1, 'x')")
    refused(app, "SELECT * FROM billing_secrets")
    refused(app, "INSERT INTO billing_secrets VALUES (2, 'y')")
    refused(app, "SELECT * FROM reporting.totals")
    refused(app, "CREATE TABLE reporting.mine (n bigint)")
    # dbmate's own table too: only the owner migrates
    refused(app, "SELECT * FROM schema_migrations")


def test_a_permission_error_is_a_typed_llmcp_error(app: Connection) -> None:
    with pytest.raises(psycopg.Error) as caught:
        app.execute("TRUNCATE audit_logs")
    mapped = map_error(caught.value, operation="audit_logs.truncate")
    assert isinstance(mapped, PermissionDeniedError)
    assert str(mapped).startswith("audit_logs.truncate: permission denied (")
    assert "42501" in str(mapped)
    assert llmcp.PermissionDeniedError is PermissionDeniedError
    assert "PermissionDeniedError" in llmcp.__all__ and "RoleNotFoundError" in llmcp.__all__


# -- the other group roles and `llmcp db grant` -----------------------------------------


@dataclass(frozen=True)
class LoginRole:
    """A login role of one test, with no privileges of its own."""

    name: str
    url: str  # the fresh database, as this role


@pytest.fixture
def login_role(databases: TestDatabases, fresh_name: str) -> Iterator[LoginRole]:
    name = f"llmcp_t_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    with psycopg.connect(databases.admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    try:
        yield LoginRole(name, with_role(databases.owner_url(fresh_name), name, password))
    finally:
        databases.drop(fresh_name)  # its connections go first
        with psycopg.connect(databases.admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_llmcp_readonly_reads_every_table_and_writes_none(
    login_role: LoginRole, fresh_owner_db: str, org_id: uuid.UUID
) -> None:
    assert Migrator(fresh_owner_db).grant(login_role.name, GroupRole.READONLY)
    with psycopg.connect(login_role.url, autocommit=True) as conn:
        for table in TABLES:  # every tenant's rows: reporting sees the whole database
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        assert conn.execute(
            "SELECT count(*) FROM audit_logs WHERE org_id = %s", (org_id,)
        ).fetchone() == (1,)
        refused(conn, "INSERT INTO organizations (name, slug) VALUES ('x', 'x')")
        refused(conn, "UPDATE organizations SET name = 'x' WHERE id = %s", (org_id,))
        refused(conn, "DELETE FROM users")
        refused(conn, "SELECT llmcp_purge_audit_logs(%s, now(), 'retention')", (org_id,))


def test_llmcp_audit_admin_purges_and_nothing_else(
    login_role: LoginRole, fresh_owner_db: str, org_id: uuid.UUID
) -> None:
    assert Migrator(fresh_owner_db).grant(login_role.name, GroupRole.AUDIT_ADMIN)
    with psycopg.connect(login_role.url, autocommit=True) as conn:
        refused(conn, "SELECT count(*) FROM audit_logs")
        purged = conn.execute(
            "SELECT llmcp_purge_audit_logs(%s, now() - interval '1 day', 'retention')", (org_id,)
        ).fetchone()
        assert purged == (1,)
    with psycopg.connect(fresh_owner_db) as owner:
        rows = owner.execute(
            "SELECT action::text, details ->> 'by' FROM audit_logs WHERE org_id = %s", (org_id,)
        ).fetchall()
    assert rows == [("audit_logs_purged", login_role.name)]


def test_llmcp_db_grant_makes_a_login_role_read_as_the_application(
    login_role: LoginRole,
    fresh_owner_db: str,
    org_id: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    query = "SELECT count(*) FROM organizations WHERE id = %s"
    with psycopg.connect(login_role.url, autocommit=True) as conn:
        refused(conn, query, (org_id,))
    monkeypatch.delenv("LLMCP_DATABASE_URL", raising=False)
    monkeypatch.setenv("LLMCP_MIGRATION_URL", fresh_owner_db)

    assert main(["db", "grant", login_role.name, "--app"]) == 0
    assert capsys.readouterr().out == f"llmcp_app granted to {login_role.name}\n"
    with psycopg.connect(login_role.url, autocommit=True) as conn:
        assert conn.execute(query, (org_id,)).fetchone() == (1,)
        refused(conn, "TRUNCATE organizations")
    assert main(["db", "grant", login_role.name, "--app"]) == 0
    assert capsys.readouterr().out == f"llmcp_app was already granted to {login_role.name}\n"

    assert main(["db", "grant", login_role.name, "--app", "--revoke"]) == 0
    assert capsys.readouterr().out == f"llmcp_app revoked from {login_role.name}\n"
    with psycopg.connect(login_role.url, autocommit=True) as conn:
        refused(conn, query, (org_id,))


def test_llmcp_db_grant_fails_in_one_line_naming_the_missing_role(
    fresh_owner_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMCP_MIGRATION_URL", fresh_owner_db)
    assert main(["db", "grant", "no_such_role_here", "--readonly"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("llmcp: db grant: the role 'no_such_role_here' does not exist")
    assert err.count("\n") == 1
    with pytest.raises(RoleNotFoundError) as caught:
        Migrator(fresh_owner_db).grant("no_such_role_here", "llmcp_app")
    assert caught.value.role == "no_such_role_here"
    with pytest.raises(ValidationError):
        Migrator(fresh_owner_db).grant(TEST_APP_ROLE, "pg_read_all_data")


def test_the_application_role_cannot_grant(
    login_role: LoginRole,
    fresh_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(PermissionDeniedError):
        Migrator(fresh_db).grant(login_role.name, GroupRole.APP)
    with pytest.raises(PermissionDeniedError):  # nor give itself more
        Migrator(fresh_db).grant(TEST_APP_ROLE, GroupRole.AUDIT_ADMIN)
    monkeypatch.setenv("LLMCP_MIGRATION_URL", fresh_db)
    assert main(["db", "grant", login_role.name, "--audit-admin"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("llmcp: db grant: this role may not grant llmcp_audit_admin")
    assert "llmcp-test-app-pw" not in err  # the password of fresh_db's role


# -- the migration URL -------------------------------------------------------------------


def test_llmcp_db_migrates_through_the_migration_url(
    fresh_db: str,
    fresh_owner_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LLMCP_DATABASE_URL", fresh_db)
    monkeypatch.delenv("LLMCP_MIGRATION_URL", raising=False)
    # the application role may not read schema_migrations: to dbmate, nothing is applied
    assert main(["db", "status", "--exit-code"]) == 1
    assert "applied: 0\n" in capsys.readouterr().out
    monkeypatch.setenv("LLMCP_MIGRATION_URL", fresh_owner_db)
    assert main(["db", "status", "--exit-code"]) == 0
    assert "pending: 0" in capsys.readouterr().out


def test_database_config_carries_a_migration_url_masked_like_url() -> None:
    app_url = "postgresql://svc:app-secret-1@db.internal/llmcp"
    owner_url = "postgresql://owner:owner-secret-2@db.internal/llmcp"
    config = DatabaseConfig.from_env(
        {"LLMCP_DATABASE_URL": app_url, "LLMCP_MIGRATION_URL": owner_url}
    )
    assert (config.url, config.migration_url, config.migrating_url) == (
        app_url,
        owner_url,
        owner_url,
    )
    shown = repr(config)
    assert "app-secret-1" not in shown and "owner-secret-2" not in shown
    assert "migration_url='postgresql://owner:***@db.internal/llmcp'" in shown
    alone = DatabaseConfig.from_env({"LLMCP_DATABASE_URL": app_url})
    assert alone.migration_url is None and alone.migrating_url == app_url
