"""map_error turns real PostgreSQL failures into the llmcp hierarchy, without leaking values."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg_pool
import pytest

from llmcp.error_map import map_error, sqlstate_of
from llmcp.errors import (
    ConflictError,
    DatabaseUnavailableError,
    LlmcpError,
    NotFoundError,
    NotMigratedError,
    ReferenceViolationError,
    TransactionError,
    ValidationError,
)
from llmcp.validation import email_key
from tests.test_constraints import _app, _org, _user

Conn = psycopg.Connection[tuple[Any, ...]]


def _fails(conn: Conn, statement: str, params: tuple[Any, ...] = ()) -> psycopg.Error:
    """The error ``statement`` raises; ``conn`` stays usable (a savepoint is rolled back)."""
    with pytest.raises(psycopg.Error) as caught, conn.transaction():
        conn.execute(statement, params)
    return caught.value


def _mapped(conn: Conn, operation: str, statement: str, *params: Any) -> LlmcpError:
    return map_error(_fails(conn, statement, params), operation=operation)


# -- unique ------------------------------------------------------------------


def test_duplicate_slug_is_a_conflict_naming_slug(conn: Conn) -> None:
    slug = f"secret-slug-{uuid.uuid4().hex[:8]}"
    _org(conn, slug)
    raw = _fails(conn, "INSERT INTO organizations (name, slug) VALUES ('x', %s)", (slug,))
    assert slug in (raw.diag.message_detail or "")  # the server does quote it...
    err = map_error(raw, operation="organizations.create")
    assert type(err) is ConflictError
    assert err.constraint == "organizations_slug_key"
    assert str(err) == (
        "organizations.create: slug already exists (constraint organizations_slug_key)"
    )
    assert slug not in str(err)  # ...we do not


def test_duplicate_email_in_another_case_is_a_conflict_naming_email(owner_conn: Conn) -> None:
    conn = owner_conn  # tenant rows in raw SQL (several tenants): row-level security
    email = f"Ada.Secret.{uuid.uuid4().hex[:6]}@Example.com"
    org = _org(conn)  # e-mail addresses are unique within their organization
    _user(conn, org, email)
    err = _mapped(
        conn,
        "users.create",
        "INSERT INTO users (org_id, email, email_key, cognito_sub) VALUES (%s, %s, %s, 'other-sub')",
        org,
        email.upper(),
        email_key(email.upper()),
    )
    assert isinstance(err, ConflictError)
    assert err.constraint == "users_org_id_email_key"
    assert "users.create: email already exists" in str(err)
    assert "ada.secret" not in str(err).lower()


def test_duplicate_request_id_names_request_id(owner_conn: Conn) -> None:
    conn = owner_conn  # tenant rows in raw SQL (several tenants): row-level security
    org = _org(conn)
    app = _app(conn, org)
    insert = (
        "INSERT INTO inference_requests (org_id, app_id, request_id, provider, model) "
        "VALUES (%s, %s, 'req-secret-1', 'openai', 'gpt')"
    )
    conn.execute(insert, (org, app))
    err = _mapped(conn, "inference_requests.create", insert, org, app)
    assert isinstance(err, ConflictError)
    assert err.constraint == "inference_requests_org_id_request_id_key"
    assert "request_id already exists" in str(err)
    assert "req-secret-1" not in str(err)


def test_unknown_unique_constraint_falls_back_to_parsing_its_name(conn: Conn) -> None:
    conn.execute("CREATE TEMP TABLE widgets (serial_code text UNIQUE)")
    conn.execute("INSERT INTO widgets VALUES ('w-secret')")
    err = _mapped(conn, "widgets.create", "INSERT INTO widgets VALUES ('w-secret')")
    assert isinstance(err, ConflictError)
    assert err.constraint == "widgets_serial_code_key"
    assert str(err).startswith("widgets.create: serial_code already exists")
    assert "w-secret" not in str(err)


def test_duplicate_primary_key_names_id(conn: Conn) -> None:
    org = _org(conn)
    err = _mapped(
        conn, "organizations.create", "INSERT INTO organizations (id, name, slug) "
        "VALUES (%s, 'x', 'another-slug-for-pk')", org,
    )  # fmt: skip
    assert isinstance(err, ConflictError)
    assert err.constraint == "organizations_pkey"
    assert "id already exists" in str(err)
    assert str(org) not in str(err)


def test_exclusion_violation_is_a_conflict(conn: Conn) -> None:
    conn.execute("CREATE TEMP TABLE slots (n int, CONSTRAINT slots_n_excl EXCLUDE (n WITH =))")
    conn.execute("INSERT INTO slots VALUES (7)")
    err = _mapped(conn, "slots.create", "INSERT INTO slots VALUES (7)")
    assert isinstance(err, ConflictError)
    assert err.constraint == "slots_n_excl"
    assert "slots.create: n conflicts" in str(err)


# -- foreign keys ------------------------------------------------------------


def test_policy_with_an_app_of_another_org_is_a_reference_violation(owner_conn: Conn) -> None:
    conn = owner_conn  # tenant rows in raw SQL (several tenants): row-level security
    mine, theirs = _org(conn), _org(conn)
    their_app = _app(conn, theirs)
    err = _mapped(
        conn,
        "policies.create",
        "INSERT INTO policies (org_id, app_id, name, policy_type, config) "
        "VALUES (%s, %s, 'p', 'rate_limit', '{\"type\": \"rate_limit\"}')",
        mine,
        their_app,
    )
    assert type(err) is ReferenceViolationError
    assert err.constraint == "policies_app_fkey"
    assert str(err) == (
        "policies.create: app_id does not reference an application of this organization"
        " (constraint policies_app_fkey)"
    )
    assert str(their_app) not in str(err) and str(mine) not in str(err)


def test_user_of_another_org_is_named(owner_conn: Conn) -> None:
    conn = owner_conn  # tenant rows in raw SQL (several tenants): row-level security
    mine, theirs = _org(conn), _org(conn)
    app, their_user = _app(conn, mine), _user(conn, theirs)
    err = _mapped(
        conn,
        "inference_requests.create",
        "INSERT INTO inference_requests (org_id, app_id, user_id, request_id, provider, model) "
        "VALUES (%s, %s, %s, 'r', 'openai', 'gpt')",
        mine,
        app,
        their_user,
    )
    assert isinstance(err, ReferenceViolationError)
    assert err.constraint == "inference_requests_user_fkey"
    assert "user_id does not reference a user of this organization" in str(err)


def test_missing_organization_is_a_reference_violation(owner_conn: Conn) -> None:
    conn = owner_conn  # tenant rows in raw SQL (several tenants): row-level security
    ghost = uuid.uuid4()
    err = _mapped(
        conn, "applications.create",
        "INSERT INTO applications (org_id, name, api_key_hash) VALUES (%s, 'a', %s)",
        ghost, "b" * 64,
    )  # fmt: skip
    assert isinstance(err, ReferenceViolationError)
    assert err.constraint == "applications_org_id_fkey"
    assert "org_id does not reference an existing organization" in str(err)
    assert str(ghost) not in str(err)


def test_unknown_foreign_key_falls_back_to_parsing_its_name(conn: Conn) -> None:
    # Temporary tables may reference only temporary tables.
    conn.execute("CREATE TEMP TABLE owners (id int PRIMARY KEY)")
    conn.execute("CREATE TEMP TABLE gadgets (owner_id int REFERENCES owners (id))")
    err = _mapped(conn, "gadgets.create", "INSERT INTO gadgets VALUES (4242)")
    assert isinstance(err, ReferenceViolationError)
    assert err.constraint == "gadgets_owner_id_fkey"
    assert "gadgets.create: owner_id does not reference an existing row" in str(err)
    assert "4242" not in str(err)


@pytest.mark.parametrize(("action", "sqlstate"), [("RESTRICT", "23001"), ("NO ACTION", "23503")])
def test_deleting_a_referenced_row_says_it_is_still_referenced(
    conn: Conn, action: str, sqlstate: str
) -> None:
    conn.execute("CREATE TEMP TABLE parents (id int PRIMARY KEY)")
    conn.execute(
        "CREATE TEMP TABLE children (parent_id int CONSTRAINT children_parent_fkey "
        f"REFERENCES parents (id) ON DELETE {action})"
    )
    conn.execute("INSERT INTO parents VALUES (4242); INSERT INTO children VALUES (4242)")
    raw = _fails(conn, "DELETE FROM parents WHERE id = 4242")
    if conn.info.server_version < 180000:  # before 18, RESTRICT also reported 23503
        sqlstate = "23503"
    assert sqlstate_of(raw) == sqlstate
    err = map_error(raw, operation="parents.delete")
    assert isinstance(err, ReferenceViolationError)
    assert err.constraint == "children_parent_fkey"
    assert str(err) == (
        "parents.delete: the row is still referenced (constraint children_parent_fkey)"
    )


# -- checks, not null, bad data ------------------------------------------------


def test_bad_slug_is_a_validation_error_naming_slug(conn: Conn) -> None:
    err = _mapped(
        conn,
        "organizations.create",
        "INSERT INTO organizations (name, slug) VALUES ('x', %s)",
        "Secret Slug!",
    )
    assert type(err) is ValidationError
    assert str(err) == (
        "organizations.create: slug is not valid (constraint organizations_slug_check)"
    )


def test_inconsistent_tokens_name_both_fields(owner_conn: Conn) -> None:
    conn = owner_conn  # tenant rows in raw SQL (several tenants): row-level security
    org = _org(conn)
    err = _mapped(
        conn,
        "inference_requests.create",
        "INSERT INTO inference_requests (org_id, app_id, request_id, provider, model, "
        "prompt_tokens, total_tokens) VALUES (%s, %s, 'r', 'openai', 'gpt', -5, -5)",
        org,
        _app(conn, org),
    )
    assert isinstance(err, ValidationError)
    assert "prompt_tokens/completion_tokens is not valid" in str(err)
    assert "inference_requests_tokens_check" in str(err)


def test_null_in_a_required_column_names_the_column(conn: Conn) -> None:
    err = _mapped(
        conn, "organizations.create",
        "INSERT INTO organizations (name, slug) VALUES (NULL, 'null-name')",
    )  # fmt: skip
    assert isinstance(err, ValidationError)
    assert str(err) == "organizations.create: name is required (column organizations.name)"


@pytest.mark.parametrize(
    ("statement", "value", "sqlstate", "expected"),
    [
        ("SELECT %s::uuid", "not-a-uuid-secret", "22P02", "has an invalid syntax for type uuid"),
        ("SELECT %s::policy_type", "secret_type", "22P02", "for enum policy_type"),
        ("SELECT %s::jsonb", '{"secret', "22P02", "for type json"),
        ("SELECT %s::integer", "98765432109", "22003", "is out of range for type integer"),
        ("SELECT %s::numeric(14,6)", "987654321", "22003", "is out of range"),
        ("SELECT %s::timestamptz", "secret-time", "22007", "for type timestamp with time zone"),
        ("SELECT %s::timestamptz", "2020-13-45", "22008", "out-of-range date/time"),
        ("SELECT convert_from(%s::bytea, 'UTF8')", "\\xdeadbeefff", "22021", "byte sequence"),
        ("SELECT convert_to(%s, 'LATIN1')", "secret €", "22P05", "no equivalent"),
        ("SELECT 1 / %s::int", "0", "22012", "division by zero"),
    ],
)
def test_bad_data_is_a_validation_error_without_the_value(
    conn: Conn, statement: str, value: str, sqlstate: str, expected: str
) -> None:
    raw = _fails(conn, statement, (value,))
    assert sqlstate_of(raw) == sqlstate
    err = map_error(raw, operation="things.check")
    assert type(err) is ValidationError
    assert str(err).startswith("things.check: a value ")
    assert expected in str(err)
    assert f"SQLSTATE {sqlstate}" in str(err)
    for secret in (value, "secret", "deadbeef", "0xff", "0xe2"):
        if secret != "0":
            assert secret not in str(err)


def test_string_too_long_for_varchar(conn: Conn) -> None:
    # An explicit cast ('abc'::varchar(2)) truncates silently; storing into the column fails.
    conn.execute("CREATE TEMP TABLE codes (code varchar(2))")
    err = _mapped(conn, "codes.create", "INSERT INTO codes VALUES (%s)", "abc-secret")
    assert isinstance(err, ValidationError)
    assert "is too long for type character varying(2)" in str(err)
    assert "abc" not in str(err)


# -- transactions ------------------------------------------------------------


def test_invalid_transaction_state_is_not_retryable(conn: Conn) -> None:
    conn.execute("SELECT 1")
    err = _mapped(conn, "tx.begin", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
    assert type(err) is TransactionError
    assert err.retryable is False
    assert "SQLSTATE 25001" in str(err)


def test_statement_timeout_says_so(conn: Conn) -> None:
    started = time.monotonic()
    with pytest.raises(psycopg.Error) as caught, conn.transaction():
        conn.execute("SET LOCAL statement_timeout = 50")
        conn.execute("SELECT pg_sleep(2)")
    assert time.monotonic() - started < 1.5
    err = map_error(caught.value, operation="audit_logs.get_by_org_id")
    assert type(err) is TransactionError
    assert err.retryable is False
    assert "audit_logs.get_by_org_id: the statement timed out" in str(err)
    conn.execute("SELECT 1")  # the savepoint undid the timeout and the error


@pytest.fixture
def two_orgs(fresh_db: str) -> Iterator[tuple[str, uuid.UUID, uuid.UUID]]:
    """``fresh_db`` with two committed organizations."""
    with psycopg.connect(fresh_db, autocommit=True) as setup:
        first, second = (_org(setup) for _ in range(2))
    yield fresh_db, first, second


def test_serialization_failure_is_retryable(two_orgs: tuple[str, uuid.UUID, uuid.UUID]) -> None:
    url, org, _ = two_orgs
    rename = "UPDATE organizations SET name = %s WHERE id = %s"
    with psycopg.connect(url) as first, psycopg.connect(url, autocommit=True) as second:
        first.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        first.execute("SELECT name FROM organizations WHERE id = %s", (org,))  # the snapshot
        second.execute(rename, ("by second", org))
        with pytest.raises(psycopg.Error) as caught:
            first.execute(rename, ("by first", org))
        first.rollback()
    err = map_error(caught.value, operation="organizations.update")
    assert type(err) is TransactionError
    assert err.retryable is True
    assert "serialization failure" in str(err) and "40001" in str(err)


def test_deadlock_is_retryable(two_orgs: tuple[str, uuid.UUID, uuid.UUID]) -> None:
    url, row_a, row_b = two_orgs
    touch = "UPDATE organizations SET name = name WHERE id = %s"
    failures: list[BaseException] = []

    def settle(connection: Conn, row: uuid.UUID) -> None:
        try:
            connection.execute(touch, (row,))
        except psycopg.Error as exc:
            failures.append(exc)
            connection.rollback()  # releases the victim's locks, so the other side goes on
        else:
            connection.commit()

    with (
        psycopg.connect(url) as first,
        psycopg.connect(url) as second,
        psycopg.connect(url, autocommit=True) as observer,
    ):
        for connection in (first, second):
            connection.execute("SET lock_timeout = '10s'")  # a bound if detection never came
            connection.commit()
            _fast_deadlock_detection(connection)
        first_pid = first.info.backend_pid
        first.execute(touch, (row_a,))
        second.execute(touch, (row_b,))
        waiter = threading.Thread(target=settle, args=(first, row_b))
        waiter.start()
        _wait_until_blocked(observer, first_pid)
        settle(second, row_a)  # closes the cycle
        waiter.join(timeout=15)
        assert not waiter.is_alive()
    assert len(failures) == 1
    err = map_error(failures[0], operation="organizations.update")
    assert type(err) is TransactionError
    assert err.retryable is True
    assert "deadlock detected" in str(err) and "40P01" in str(err)


def _fast_deadlock_detection(connection: Conn) -> None:
    """deadlock_timeout = 20ms when the role may set it (a superuser); else the 1 s default."""
    try:
        connection.execute("SET deadlock_timeout = '20ms'")
        connection.commit()
    except psycopg.errors.InsufficientPrivilege:
        connection.rollback()


def _wait_until_blocked(observer: Conn, pid: int) -> None:
    """Until backend ``pid`` waits for a lock (asked live, outside any snapshot)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = observer.execute("SELECT cardinality(pg_blocking_pids(%s))", (pid,)).fetchone()
        if row is not None and row[0] > 0:
            return
        time.sleep(0.002)
    raise AssertionError("the first connection never waited for the lock")


# -- availability ------------------------------------------------------------


def test_lost_connection_is_unavailable(conn: Conn, shared_db: str) -> None:
    with psycopg.connect(shared_db, autocommit=True) as victim:
        killed = conn.execute(
            "SELECT pg_terminate_backend(%s, 5000)", (victim.info.backend_pid,)
        ).fetchone()
        assert killed == (True,)
        with pytest.raises(psycopg.OperationalError) as caught:
            victim.execute("SELECT 1")
        err = map_error(caught.value, operation="organizations.get_by_id")
        assert type(err) is DatabaseUnavailableError
        assert str(err).startswith("organizations.get_by_id: database unavailable")

        with pytest.raises(psycopg.OperationalError) as closed:
            victim.execute("SELECT 1")  # now a client-side "the connection is closed"
        assert sqlstate_of(closed.value) is None
        assert type(map_error(closed.value, operation="x")) is DatabaseUnavailableError


def test_unreachable_server_is_unavailable(tmp_path: Any) -> None:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(host=str(tmp_path), port=1, dbname="x", connect_timeout=2)
    assert type(map_error(caught.value, operation="db.connect")) is DatabaseUnavailableError


def test_pool_timeout_and_closed_pool_are_unavailable(shared_db: str) -> None:
    pool = psycopg_pool.ConnectionPool(shared_db, min_size=1, max_size=1, timeout=0.05, open=True)
    try:
        with pool.connection(), pytest.raises(psycopg_pool.PoolTimeout) as timed_out:
            pool.getconn()
    finally:
        pool.close()
    err = map_error(timed_out.value, operation="users.get_by_id")
    assert type(err) is DatabaseUnavailableError
    assert "no pooled connection free in time" in str(err)

    with pytest.raises(psycopg_pool.PoolClosed) as closed:
        pool.getconn()
    err = map_error(closed.value, operation="users.get_by_id")
    assert type(err) is DatabaseUnavailableError
    assert "pool is closed" in str(err)


@pytest.mark.parametrize("sqlstate", ["08006", "57P01", "57P02", "57P03"])
def test_connection_sqlstates_are_unavailable(sqlstate: str) -> None:
    # These come with the server going away; the class psycopg raises carries the code.
    exc = psycopg.errors.lookup(sqlstate)("server went away")
    assert sqlstate_of(exc) == sqlstate
    err = map_error(exc, operation="db.query")
    assert type(err) is DatabaseUnavailableError
    assert f"SQLSTATE {sqlstate}" in str(err)


# -- everything else ---------------------------------------------------------


def test_a_missing_table_or_column_says_to_migrate(conn: Conn) -> None:
    table = _mapped(conn, "reports.run", "SELECT * FROM no_such_table_here")
    assert type(table) is NotMigratedError
    assert str(table) == (
        'reports.run: the database is not migrated (relation "no_such_table_here" does not '
        "exist): run `llmcp db up`"
    )
    column = _mapped(conn, "reports.run", "SELECT no_such_column FROM organizations")
    assert type(column) is NotMigratedError


def test_other_database_errors_keep_operation_and_sqlstate(conn: Conn) -> None:
    err = _mapped(conn, "reports.run", "SELEC 1")
    assert type(err) is LlmcpError
    assert str(err) == "reports.run: database error 42601 (SyntaxError)"


def test_an_llmcp_error_comes_back_unchanged() -> None:
    original = NotFoundError("organization not found")
    assert map_error(original, operation="organizations.update") is original


def test_a_foreign_exception_becomes_a_plain_llmcp_error() -> None:
    err = map_error(KeyError("secret-key"), operation="x.y")
    assert type(err) is LlmcpError
    assert str(err) == "x.y: unexpected error (KeyError)"
    assert sqlstate_of(KeyError("k")) is None


def test_a_client_side_psycopg_error_is_not_mistaken_for_a_lost_connection() -> None:
    err = map_error(psycopg.ProgrammingError("bad query"), operation="x.y")
    assert type(err) is LlmcpError
    assert "ProgrammingError" in str(err)


def test_a_unique_violation_without_diagnostics_still_maps() -> None:
    err = map_error(psycopg.errors.UniqueViolation("dup"), operation="x.create")
    assert isinstance(err, ConflictError)
    assert err.constraint is None
    assert str(err) == "x.create: a value already exists"
