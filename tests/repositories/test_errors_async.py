"""Errors through the repositories: bad input never reaches the database, and whatever
the database refuses comes back as an llmcp error, never as a psycopg one."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import msgspec
import psycopg
import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import (
    ConflictError,
    DatabaseUnavailableError,
    LlmcpError,
    ReferenceViolationError,
    TransactionError,
    ValidationError,
)
from llmcp.factory_async import AsyncRepositories, AsyncRepositoryFactory
from llmcp.generated.models import AuditAction, Organization
from llmcp.inputs import (
    NewApplication,
    NewAuditLog,
    NewInferenceRequest,
    NewOrganization,
    NewPolicy,
    NewUser,
)
from llmcp.policy_config import RateLimitConfig
from tests.repositories.helpers_async import at, key_hash, make_org, make_request, make_tenant

ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
NAIVE = datetime.datetime(2024, 1, 1, 12, 0)
SECRET = "s3cr3t-personal-value"
ORG = Organization(ID, "Acme", "acme", 1, at(0), at(0))
RATE = RateLimitConfig(requests=1, window_seconds=1)

Call = Callable[[AsyncRepositories], Awaitable[Any]]


def _request(**fields: Any) -> NewInferenceRequest:
    values: dict[str, Any] = {"request_id": "r", "provider": "p", "model": "m"} | fields
    return NewInferenceRequest(org_id=ID, app_id=ID, **values)


# (what is wrong, the call, a word the message must contain)
REJECTED_BEFORE_THE_DATABASE: list[tuple[str, Call, str]] = [
    ("NUL in a name", lambda r: r.organizations.create(
        NewOrganization(name=f"{SECRET}\x00", slug="acme")), "name"),
    ("lone surrogate", lambda r: r.organizations.create(
        NewOrganization(name="\ud800", slug="acme")), "name"),
    ("NUL in a lookup", lambda r: r.users.get_by_email(ID, f"{SECRET}\x00@x.io"), "email"),
    ("NUL in JSON", lambda r: r.audit_logs.insert(NewAuditLog(
        org_id=ID, action=AuditAction.USER_CREATED, resource_type="user", details={"k": "\x00"})), "details"),
    ("naive created_at", lambda r: r.organizations.create(
        NewOrganization(name="Acme", slug="acme", created_at=NAIVE)), "created_at"),
    ("naive created_at", lambda r: r.users.create(NewUser(
        org_id=ID, email="a@b.co", cognito_sub="s", created_at=NAIVE)), "created_at"),
    ("naive created_at", lambda r: r.audit_logs.insert(NewAuditLog(
        org_id=ID, action=AuditAction.USER_CREATED, resource_type="user", created_at=NAIVE)), "created_at"),
    ("naive completed_at", lambda r: r.inference_requests.create(
        _request(completed_at=NAIVE)), "completed_at"),
    ("naive range", lambda r: r.audit_logs.get_by_date_range(ID, NAIVE, at(0)), "start"),
    ("naive range", lambda r: r.inference_requests.page_by_date_range(ID, at(0), NAIVE), "end"),
    ("naive range", lambda r: r.inference_requests.get_metrics(ID, NAIVE, NAIVE), "start"),
    ("long slug", lambda r: r.organizations.create(
        NewOrganization(name="Acme", slug="a" * 64)), "slug"),
    ("long lookup", lambda r: r.organizations.get_by_slug("a" * 201), "slug"),
    ("long name", lambda r: r.applications.create(NewApplication(
        org_id=ID, name="n" * 201, api_key_hash=key_hash())), "name"),
    ("long request id", lambda r: r.inference_requests.get_by_request_id(ID, "r" * 201),
     "request_id"),
    ("long email", lambda r: r.users.get_by_email(ID, "e" * 321), "email"),
    ("priority > int4", lambda r: r.policies.create(NewPolicy(
        org_id=ID, name="p", config=RATE, priority=2**31)), "priority"),
    ("tokens > int4", lambda r: r.inference_requests.create(
        _request(prompt_tokens=2**31)), "prompt_tokens"),
    ("negative latency", lambda r: r.inference_requests.create(_request(latency_ms=-1)),
     "latency_ms"),
    ("cost > numeric(14,6)", lambda r: r.inference_requests.create(
        _request(cost=Decimal("1e8"))), "cost"),
    ("version 0", lambda r: r.organizations.update(
        msgspec.structs.replace(ORG, version=0)), "version"),
    ("version > int4", lambda r: r.organizations.update(
        msgspec.structs.replace(ORG, version=2**31)), "version"),
    ("offset > int8", lambda r: r.audit_logs.get_by_org_id(ID, 10, 2**63), "offset"),
    ("not a uuid", lambda r: r.policies.get_by_id(ID, "policy-1"), "policy_id"),  # type: ignore[arg-type]
    ("not a uuid", lambda r: r.applications.get_by_id("acme", ID), "org_id"),  # type: ignore[arg-type]
    ("not a uuid", lambda r: r.audit_logs.get_by_request_id(None, "r"), "org_id"),  # type: ignore[arg-type]
    ("not a uuid", lambda r: r.users.create(NewUser(
        org_id="acme", email="a@b.co", cognito_sub="s")), "org_id"),  # type: ignore[arg-type]
    ("bad config", lambda r: r.policies.create(NewPolicy(
        org_id=ID, name="p", config=RateLimitConfig(requests=0, window_seconds=1))), "config"),
    ("bad cursor", lambda r: r.audit_logs.page_by_org_id(ID, 10, "bogus"), "cursor"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "word"),
    [pytest.param(call, word, id=what) for what, call, word in REJECTED_BEFORE_THE_DATABASE],
)
async def test_bad_input_is_rejected_before_the_database(
    shared_config: DatabaseConfig, call: Call, word: str
) -> None:
    afactory = await AsyncRepositoryFactory.connect(shared_config)
    arepos = afactory.repositories()
    with pytest.raises(ValidationError, match=word) as caught:
        await call(arepos)
    assert caught.value.__cause__ is None
    assert SECRET not in str(caught.value)  # the value is never quoted
    # the same call on a closed pool: had it reached the database, it would fail otherwise
    await afactory.close()
    with pytest.raises(ValidationError, match=word):
        await call(arepos)


async def test_a_closed_factory_is_unavailable_and_close_is_idempotent(
    shared_config: DatabaseConfig,
) -> None:
    afactory = await AsyncRepositoryFactory.connect(shared_config)
    arepos = afactory.repositories()
    await afactory.close()
    await afactory.close()
    with pytest.raises(DatabaseUnavailableError, match="closed"):
        await arepos.organizations.get_by_id(ID)
    with pytest.raises(DatabaseUnavailableError):
        await afactory.database.health_check()
    with pytest.raises(DatabaseUnavailableError):
        block = afactory.transaction_manager().transaction()
        async with block:
            pass


async def test_database_refusals_are_mapped(shared_config: DatabaseConfig) -> None:
    """One of each: unique, foreign key, check. Each keeps the psycopg error as its cause."""
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, _ = await make_tenant(arepos)
        stranger = await make_tenant(arepos)
        calls: list[tuple[type[LlmcpError], Call]] = [
            (ConflictError, lambda r: make_org(r, slug=org.slug)),
            (ReferenceViolationError, lambda r: make_request(r, org.id, stranger.app.id)),
            (ReferenceViolationError, lambda r: make_request(r, ID, app.id)),
            (ValidationError, lambda r: make_request(
                r, org.id, app.id, created_at=at(1), completed_at=at(0))),
        ]  # fmt: skip
        for kind, call in calls:
            with pytest.raises(LlmcpError) as caught:
                await call(arepos)
            assert type(caught.value) is kind
            assert isinstance(caught.value.__cause__, psycopg.Error)
            assert not isinstance(caught.value, psycopg.Error)


async def test_an_error_aborts_the_transaction_and_later_calls_say_so(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        taken = await make_org(arepos)
        transaction = await afactory.transaction_manager().begin()
        created = await make_org(arepos)
        with pytest.raises(ConflictError):
            await make_org(arepos, slug=taken.slug)
        with pytest.raises(TransactionError, match="InFailedSqlTransaction") as caught:
            await arepos.organizations.get_by_id(created.id)
        assert not caught.value.retryable
        await transaction.rollback()
        assert await arepos.organizations.get_by_id(created.id) is None
