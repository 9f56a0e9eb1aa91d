"""The schema itself rejects what it must: each constraint is tried with a violating row."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors

from llmcp.validation import email_key

Conn = psycopg.Connection[tuple[Any, ...]]
HASH = "a" * 64


@pytest.fixture
def conn(owner_conn: Conn) -> Conn:
    """As the owner: the schema's own constraints, tried with raw rows of several tenants, which row-level
    security would refuse the application role before any constraint is checked."""
    return owner_conn


def _hash(n: int) -> str:
    return f"{n:064x}"


def _org(conn: Conn, slug: str | None = None) -> uuid.UUID:
    slug = slug or f"org-{uuid.uuid4().hex[:12]}"
    row = conn.execute(
        "INSERT INTO organizations (name, slug) VALUES (%s, %s) RETURNING id", ("Org", slug)
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _app(conn: Conn, org: uuid.UUID, key_hash: str | None = None) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO applications (org_id, name, api_key_hash) VALUES (%s, 'App', %s) RETURNING id",
        (org, key_hash or uuid.uuid4().hex * 2),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _user(conn: Conn, org: uuid.UUID, email: str | None = None) -> uuid.UUID:
    email = email or f"{uuid.uuid4().hex[:10]}@example.com"
    row = conn.execute(
        "INSERT INTO users (org_id, email, email_key, cognito_sub) VALUES (%s, %s, %s, %s)"
        " RETURNING id",
        (org, email, email_key(email), uuid.uuid4().hex),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _rejects(
    conn: Conn, error: type[psycopg.Error], constraint: str, statement: str, params: tuple[Any, ...]
) -> None:
    """``statement`` fails with ``error`` naming ``constraint``; the test goes on afterwards."""
    with pytest.raises(error) as caught, conn.transaction():
        conn.execute(statement, params)
    assert caught.value.diag.constraint_name == constraint


def _inference(
    conn: Conn, org: uuid.UUID, app: uuid.UUID, user: uuid.UUID | None = None, **over: Any
) -> tuple[str, tuple[Any, ...]]:
    values: dict[str, Any] = {
        "org_id": org, "app_id": app, "user_id": user, "request_id": uuid.uuid4().hex,
        "provider": "openai", "model": "gpt-4o", "prompt_tokens": 10, "completion_tokens": 5,
        "total_tokens": 15, "cost": "0.01",
    }  # fmt: skip
    values.update(over)
    columns = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    return f"INSERT INTO inference_requests ({columns}) VALUES ({marks})", tuple(values.values())


# -- cross-tenant references ------------------------------------------------


@pytest.mark.parametrize(
    ("table", "column", "constraint"),
    [
        ("policies", "app_id", "policies_app_fkey"),
        ("policies", "user_id", "policies_user_fkey"),
        ("audit_logs", "app_id", "audit_logs_app_fkey"),
        ("audit_logs", "user_id", "audit_logs_user_fkey"),
        ("inference_requests", "app_id", "inference_requests_app_fkey"),
        ("inference_requests", "user_id", "inference_requests_user_fkey"),
    ],
)
def test_children_cannot_point_at_another_organizations_app_or_user(
    conn: Conn, table: str, column: str, constraint: str
) -> None:
    mine, theirs = _org(conn), _org(conn)
    my_app, their_app = _app(conn, mine), _app(conn, theirs)
    their_target = their_app if column == "app_id" else _user(conn, theirs)
    rows: dict[str, Callable[[], tuple[str, tuple[Any, ...]]]] = {
        "policies": lambda: (
            f"INSERT INTO policies (org_id, {column}, name, policy_type, config) "
            "VALUES (%s, %s, 'p', 'rate_limit', '{\"type\": \"rate_limit\"}')",
            (mine, their_target),
        ),
        "audit_logs": lambda: (
            f"INSERT INTO audit_logs (org_id, {column}, action, resource_type) "
            "VALUES (%s, %s, 'policy_created', 'policy')",
            (mine, their_target),
        ),
        "inference_requests": lambda: _inference(conn, mine, my_app, **{column: their_target}),
    }
    statement, params = rows[table]()
    _rejects(conn, errors.ForeignKeyViolation, constraint, statement, params)


def test_same_organization_references_are_accepted(conn: Conn) -> None:
    org = _org(conn)
    app, user = _app(conn, org), _user(conn, org)
    conn.execute(
        "INSERT INTO policies (org_id, app_id, user_id, name, policy_type, config) "
        "VALUES (%s, %s, %s, 'p', 'rate_limit', '{\"type\": \"rate_limit\"}')",
        (org, app, user),
    )
    conn.execute(*_inference(conn, org, app, user))
    conn.execute(
        "INSERT INTO audit_logs (org_id, app_id, user_id, action, resource_type, ip_address) "
        "VALUES (%s, %s, %s, 'inference_requested', 'inference_request', '10.0.0.1')",
        (org, app, user),
    )


# -- formats ---------------------------------------------------------------


@pytest.mark.parametrize(
    "slug", ["", "Acme", "acme corp", "-acme", "acme-", "acme--corp", "acmé", "a" * 64, "acme_corp"]
)
def test_bad_slug_is_rejected(conn: Conn, slug: str) -> None:
    _rejects(
        conn, errors.CheckViolation, "organizations_slug_check",
        "INSERT INTO organizations (name, slug) VALUES ('x', %s)", (slug,),
    )  # fmt: skip


@pytest.mark.parametrize("slug", ["acme", "acme-corp", "a1-b2-c3", "a" * 63])
def test_good_slug_is_accepted(conn: Conn, slug: str) -> None:
    conn.execute("INSERT INTO organizations (name, slug) VALUES ('x', %s)", (slug,))


@pytest.mark.parametrize(
    "email",
    ["", "plain", "a@b", "@example.com", "a@@example.com", "a b@example.com", "a@ex ample.com"],
)
def test_bad_email_is_rejected(conn: Conn, email: str) -> None:
    org = _org(conn)
    _rejects(
        conn, errors.CheckViolation, "users_email_check",
        "INSERT INTO users (org_id, email, email_key, cognito_sub) VALUES (%s, %s, %s, 'sub')",
        (org, email, email_key(email) or "x"),
    )  # fmt: skip


@pytest.mark.parametrize("key_hash", ["a" * 63, "a" * 65, "A" * 64, "g" * 64, ""])
def test_bad_api_key_hash_is_rejected(conn: Conn, key_hash: str) -> None:
    org = _org(conn)
    _rejects(
        conn, errors.CheckViolation, "applications_api_key_hash_check",
        "INSERT INTO applications (org_id, name, api_key_hash) VALUES (%s, 'a', %s)",
        (org, key_hash),
    )  # fmt: skip


# -- numbers and times -----------------------------------------------------


@pytest.mark.parametrize(
    ("override", "constraint"),
    [
        ({"prompt_tokens": -1, "total_tokens": 4}, "inference_requests_tokens_check"),
        ({"completion_tokens": -1, "total_tokens": 9}, "inference_requests_tokens_check"),
        ({"total_tokens": 16}, "inference_requests_total_tokens_check"),
        ({"cost": "-0.000001"}, "inference_requests_cost_check"),
        ({"latency_ms": -1}, "inference_requests_latency_ms_check"),
        ({"completed_at": "2000-01-01T00:00:00Z"}, "inference_requests_completed_at_check"),
    ],
)
def test_inconsistent_inference_numbers_are_rejected(
    conn: Conn, override: dict[str, Any], constraint: str
) -> None:
    org = _org(conn)
    app = _app(conn, org)
    statement, params = _inference(conn, org, app, **override)
    _rejects(conn, errors.CheckViolation, constraint, statement, params)


# -- uniqueness ------------------------------------------------------------


def test_duplicate_slug_is_rejected(conn: Conn) -> None:
    _org(conn, "acme")
    _rejects(
        conn, errors.UniqueViolation, "organizations_slug_key",
        "INSERT INTO organizations (name, slug) VALUES ('x', 'acme')", (),
    )  # fmt: skip


def test_duplicate_email_in_another_case_is_rejected(conn: Conn) -> None:
    """Within one organization; another organization may hold the same address."""
    org = _org(conn)
    _user(conn, org, "Ada@Example.com")
    _rejects(
        conn, errors.UniqueViolation, "users_org_id_email_key",
        "INSERT INTO users (org_id, email, email_key, cognito_sub) VALUES (%s, %s, %s, 'other')",
        (org, "ada@EXAMPLE.com", email_key("ada@EXAMPLE.com")),
    )  # fmt: skip
    _user(conn, _org(conn), "ada@EXAMPLE.com")


def test_duplicate_cognito_sub_is_rejected(conn: Conn) -> None:
    org = _org(conn)
    conn.execute(
        "INSERT INTO users (org_id, email, email_key, cognito_sub)"
        " VALUES (%s, 'a@example.com', 'a@example.com', 'sub-1')",
        (org,),
    )
    _rejects(
        conn, errors.UniqueViolation, "users_cognito_sub_key",
        "INSERT INTO users (org_id, email, email_key, cognito_sub)"
        " VALUES (%s, 'b@example.com', 'b@example.com', 'sub-1')",
        (_org(conn),),
    )  # fmt: skip


def test_duplicate_api_key_hash_is_rejected(conn: Conn) -> None:
    org = _org(conn)
    _app(conn, org, HASH)
    _rejects(
        conn, errors.UniqueViolation, "applications_api_key_hash_key",
        "INSERT INTO applications (org_id, name, api_key_hash) VALUES (%s, 'b', %s)",
        (_org(conn), HASH),
    )  # fmt: skip


def test_duplicate_inference_request_id_is_rejected(conn: Conn) -> None:
    """Within one organization; another organization may use the same request id."""
    org = _org(conn)
    app = _app(conn, org)
    conn.execute(*_inference(conn, org, app, request_id="req-1"))
    statement, params = _inference(conn, org, app, request_id="req-1")
    _rejects(
        conn, errors.UniqueViolation, "inference_requests_org_id_request_id_key", statement, params
    )
    other = _org(conn)
    conn.execute(*_inference(conn, other, _app(conn, other), request_id="req-1"))


# -- maintained columns ----------------------------------------------------


def test_update_bumps_version_and_updated_at(conn: Conn) -> None:
    org = _org(conn)
    conn.execute("UPDATE organizations SET updated_at = '2000-01-01Z' WHERE id = %s", (org,))
    row = conn.execute(
        "SELECT version, updated_at > '2000-01-01Z' FROM organizations WHERE id = %s", (org,)
    ).fetchone()
    assert row == (2, True)


def test_policy_config_must_carry_the_policy_type(conn: Conn) -> None:
    org = _org(conn)
    _rejects(
        conn, errors.CheckViolation, "policies_config_type_check",
        "INSERT INTO policies (org_id, name, policy_type, config) "
        "VALUES (%s, 'p', 'token_budget', '{\"type\": \"rate_limit\"}')", (org,),
    )  # fmt: skip
    _rejects(
        conn, errors.CheckViolation, "policies_config_type_check",
        "INSERT INTO policies (org_id, name, policy_type, config) VALUES (%s, 'p', 'rate_limit', '{}')",
        (org,),
    )  # fmt: skip
