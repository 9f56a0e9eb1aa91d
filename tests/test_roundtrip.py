"""Every PostgreSQL type of the schema survives a trip through the generated queries, NULLs too."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from llmcp.generated import models
from llmcp.generated.applications import ApplicationsQueries
from llmcp.generated.audit_logs import AsyncAuditLogsQueries, AuditLogsQueries
from llmcp.generated.inference_requests import InferenceRequestsQueries
from llmcp.generated.organizations import OrganizationsQueries
from llmcp.generated.policies import PoliciesQueries
from llmcp.generated.users import UsersQueries
from llmcp.policy_config import (
    ContentFilterConfig,
    CostBudgetConfig,
    ModelAllowlistConfig,
    RateLimitConfig,
    TokenBudgetConfig,
)
from llmcp.validation import email_key
from tests.tenancy import aset_tenant, set_tenant

Conn = psycopg.Connection[Any]
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def _org(conn: Conn) -> models.Organization:
    """A new organization, the tenant of ``conn``'s transaction from now on."""
    org = OrganizationsQueries().create(
        conn, id=uuid.uuid4(), name="Acme ☃", slug=f"acme-{uuid.uuid4().hex[:8]}", created_at=T0
    )
    set_tenant(conn, org.id)
    return org


def _app(conn: Conn, org: models.Organization, description: str | None) -> models.Application:
    return ApplicationsQueries().create(
        conn, id=uuid.uuid4(), org_id=org.id, name="App", description=description,
        api_key_hash=uuid.uuid4().hex * 2, created_at=None,
    )  # fmt: skip


def test_organization_uuid_text_int_timestamptz(conn: Conn) -> None:
    org = _org(conn)
    again = OrganizationsQueries().get_by_id(conn, id=org.id)
    assert again == org
    assert isinstance(org.id, uuid.UUID) and org.name == "Acme ☃"
    assert org.created_at == T0 and org.created_at.tzinfo is not None
    assert org.version == 1


@pytest.mark.parametrize("description", [None, "", "multi\nline 'quoted' \"text\""])
def test_nullable_text(conn: Conn, description: str | None) -> None:
    org = _org(conn)
    app = _app(conn, org, description)
    assert ApplicationsQueries().get_by_id(conn, org_id=org.id, id=app.id) == app
    assert app.description == description


@pytest.mark.parametrize("role", list(models.UserRole))
@pytest.mark.parametrize("display_name", [None, "Ada"])
def test_user_role_enum(conn: Conn, role: models.UserRole, display_name: str | None) -> None:
    org = _org(conn)
    email = f"{uuid.uuid4().hex[:8]}@Example.com"
    user = UsersQueries().create(
        conn, id=uuid.uuid4(), org_id=org.id, email=email, email_key=email_key(email),
        cognito_sub=uuid.uuid4().hex, display_name=display_name, role=role, created_at=None,
    )  # fmt: skip
    assert user.role is role and isinstance(user.role, models.UserRole)
    assert user.display_name == display_name
    assert user.email == email and user.email_key == email.lower()
    key = email_key(user.email.upper())
    assert UsersQueries().get_by_email(conn, org_id=org.id, email_key=key) == user


@pytest.mark.parametrize(
    "config",
    [
        RateLimitConfig(requests=100, window_seconds=60, tokens=5000),
        TokenBudgetConfig(max_tokens=1_000_000, period="day"),
        CostBudgetConfig(max_cost=Decimal("1234.567890"), alert_at=0.8),
        ModelAllowlistConfig(models=["gpt-4o", "claude-sonnet"]),
        ContentFilterConfig(categories=["violence"], action="flag", threshold=0.25),
    ],
)
@pytest.mark.parametrize("enabled", [True, False])
def test_policy_typed_jsonb_bool_and_nullable_uuids(conn: Conn, config: Any, enabled: bool) -> None:
    org = _org(conn)
    app = _app(conn, org, None)
    policy = PoliciesQueries().create(
        conn, id=uuid.uuid4(), org_id=org.id, app_id=app.id, user_id=None, name="p",
        policy_type=models.PolicyType(type(config).__struct_config__.tag), config=config,
        priority=-7, enabled=enabled, created_at=None,
    )  # fmt: skip
    assert policy.config == config and type(policy.config) is type(config)
    assert policy.user_id is None and policy.app_id == app.id
    assert policy.enabled is enabled and policy.priority == -7
    assert PoliciesQueries().get_by_id(conn, org_id=org.id, id=policy.id) == policy


@pytest.mark.parametrize(
    ("address", "details"),
    [
        (None, {}),
        ("10.1.2.3", {"n": 1, "nested": {"list": [1, "two", None, True]}}),
        ("2001:db8::1", {"unicode": "ünï ☃", "float": 1.5}),
    ],
)
def test_audit_inet_untyped_jsonb_and_nulls(conn: Conn, address: str | None, details: Any) -> None:
    org = _org(conn)
    log = AuditLogsQueries().insert(
        conn, id=uuid.uuid4(), org_id=org.id, app_id=None, user_id=None,
        action=models.AuditAction.POLICY_CREATED, resource_type="policy", resource_id=None,
        request_id=None, details=details, ip_address=address, user_agent=None, created_at=T0,
    )  # fmt: skip
    assert log.ip_address == address and log.details == details
    assert log.resource_id is None and log.request_id is None and log.user_agent is None
    assert AuditLogsQueries().get_by_id(conn, org_id=org.id, id=log.id) == log


@pytest.mark.parametrize("status", list(models.InferenceStatus))
def test_inference_numeric_and_nullable_times(conn: Conn, status: models.InferenceStatus) -> None:
    org = _org(conn)
    app = _app(conn, org, None)
    done = status is not models.InferenceStatus.PENDING
    request = InferenceRequestsQueries().create(
        conn, id=uuid.uuid4(), org_id=org.id, app_id=app.id, user_id=None,
        request_id=f"req-{uuid.uuid4()}", provider="openai", model="gpt-4o", status=status,
        prompt_tokens=2_000_000_000, completion_tokens=7, cost=Decimal("0.000001"),
        latency_ms=1234 if done else None, error_message=None if done else "waiting",
        created_at=T0, completed_at=T0 + dt.timedelta(seconds=1) if done else None,
    )  # fmt: skip
    assert request.status is status
    assert request.total_tokens == 2_000_000_007
    assert request.cost == Decimal("0.000001") and isinstance(request.cost, Decimal)
    assert request.latency_ms == (1234 if done else None)
    assert request.completed_at == (T0 + dt.timedelta(seconds=1) if done else None)
    fetched = InferenceRequestsQueries().get_by_request_id(
        conn, org_id=org.id, request_id=request.request_id
    )
    assert fetched == request


def test_metrics_scalars_and_empty_range(conn: Conn) -> None:
    org = _org(conn)
    empty = InferenceRequestsQueries().get_metrics(
        conn, org_id=org.id, start_time=T0, end_time=T0 + dt.timedelta(days=1)
    )
    assert empty is not None
    assert (empty.total_requests, empty.total_tokens, empty.total_cost) == (0, 0, Decimal(0))


def test_async_variant_round_trips_the_same_row(shared_db: str) -> None:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(shared_db) as aconn:
            with psycopg.connect(shared_db) as conn:
                org = _org(conn)
                conn.commit()
            queries = AsyncAuditLogsQueries()
            await aset_tenant(aconn, org.id)
            log = await queries.insert(
                aconn, id=uuid.uuid4(), org_id=org.id, app_id=None, user_id=None,
                action=models.AuditAction.INFERENCE_FAILED, resource_type="inference_request",
                resource_id=uuid.uuid4(), request_id="r-1", details={"k": [1, 2]},
                ip_address="::1", user_agent="ua", created_at=T0,
            )  # fmt: skip
            assert await queries.get_by_id(aconn, org_id=org.id, id=log.id) == log
            page = await queries.get_by_org_id(aconn, org_id=org.id, limit=10, offset=0)
            assert page == [log]
            await aconn.rollback()

    asyncio.run(run())
