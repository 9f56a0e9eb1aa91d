"""Deleting an organization removes everything that belongs to it, and nothing else,
except its audit trail: audit log entries outlive what they record (append-only)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.test_constraints import _app, _inference, _org, _user

Conn = psycopg.Connection[tuple[Any, ...]]
CONFIG = """'{"type": "rate_limit"}'"""
TABLES = ("applications", "users", "policies", "audit_logs", "inference_requests")


@pytest.fixture
def conn(owner_conn: Conn) -> Conn:
    """As the owner: the schema's own cascades, tried with raw rows of several tenants, which row-level
    security would refuse the application role before any constraint is checked."""
    return owner_conn


def _populate(conn: Conn) -> Any:
    org = _org(conn)
    app, user = _app(conn, org), _user(conn, org)
    conn.execute(
        "INSERT INTO policies (org_id, app_id, user_id, name, policy_type, config) VALUES "
        f"(%s, NULL, NULL, 'o', 'rate_limit', {CONFIG}), (%s, %s, NULL, 'a', 'rate_limit', {CONFIG}), "
        f"(%s, %s, %s, 'u', 'rate_limit', {CONFIG})",
        (org, org, app, org, app, user),
    )
    conn.execute(
        "INSERT INTO audit_logs (org_id, app_id, user_id, action, resource_type) "
        "VALUES (%s, %s, %s, 'policy_created', 'policy')",
        (org, app, user),
    )
    conn.execute(*_inference(conn, org, app, user))
    return org, app, user


def _counts(conn: Conn, org: Any) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        row = conn.execute(f"SELECT count(*) FROM {table} WHERE org_id = %s", (org,)).fetchone()
        assert row is not None
        counts[table] = row[0]
    return counts


def test_deleting_an_organization_cascades_to_all_its_rows_but_the_audit_trail(
    conn: Conn,
) -> None:
    doomed, _, _ = _populate(conn)
    survivor, _, _ = _populate(conn)
    before = _counts(conn, survivor)
    doomed_before = _counts(conn, doomed)
    assert all(n > 0 for n in doomed_before.values())

    conn.execute("DELETE FROM organizations WHERE id = %s", (doomed,))

    assert _counts(conn, doomed) == {
        **dict.fromkeys(TABLES, 0),
        "audit_logs": doomed_before["audit_logs"],
    }
    assert _counts(conn, survivor) == before


def test_deleting_an_app_or_user_keeps_the_audit_trail(conn: Conn) -> None:
    org, app, user = _populate(conn)
    conn.execute("DELETE FROM applications WHERE id = %s", (app,))
    conn.execute("DELETE FROM users WHERE id = %s", (user,))
    row = conn.execute(
        "SELECT org_id, app_id, user_id FROM audit_logs WHERE org_id = %s", (org,)
    ).fetchone()
    assert row is not None and row[1:] == (app, user)  # the ids stay as they were
    # app-level and user-level policies went with their app and user; org-level stays
    names = conn.execute("SELECT name FROM policies WHERE org_id = %s", (org,)).fetchall()
    assert names == [("o",)]
