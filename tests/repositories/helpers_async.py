"""Builders for the repository tests: rows with unique keys, made through the repositories.

Written once for async; ``llmcp codegen`` derives ``helpers.py`` for the sync tests.
"""

from __future__ import annotations

import datetime
import hashlib
import time
import uuid
from decimal import Decimal
from typing import Any, NamedTuple

import psycopg

from llmcp.factory_async import AsyncRepositories
from llmcp.generated.models import (
    Application,
    AuditAction,
    AuditLog,
    InferenceRequest,
    Organization,
    Policy,
    User,
)
from llmcp.inputs import (
    NewApplication,
    NewAuditLog,
    NewInferenceRequest,
    NewOrganization,
    NewPolicy,
    NewUser,
)
from llmcp.policy_config import PolicyConfig, RateLimitConfig
from llmcp.transactions_async import AsyncTransactionManager
from tests.tenancy import aset_tenant

UTC = datetime.UTC
# A fixed moment in the past: rows created "at" it sort before rows created now.
BASE = datetime.datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime.datetime:
    """``BASE`` plus ``seconds``."""
    return BASE + datetime.timedelta(seconds=seconds)


def token() -> str:
    """A short random word, to make names and keys unique across tests."""
    return uuid.uuid4().hex[:12]


def key_hash() -> str:
    """A valid, unique ``api_key_hash`` (64 lowercase hex digits)."""
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()


def newest_first(rows: list[Any]) -> list[Any]:
    """``rows`` in the order of every listing: created_at, then id, both descending."""
    return sorted(rows, key=lambda row: (row.created_at, row.id), reverse=True)


class Tenant(NamedTuple):
    """An organization with one application and one user."""

    org: Organization
    app: Application
    user: User


async def make_org(arepos: AsyncRepositories, **fields: Any) -> Organization:
    values: dict[str, Any] = {"name": "Acme Corp", "slug": f"acme-{token()}"} | fields
    return await arepos.organizations.create(NewOrganization(**values))


async def make_app(arepos: AsyncRepositories, org_id: uuid.UUID, **fields: Any) -> Application:
    values: dict[str, Any] = {"name": "chat", "api_key_hash": key_hash()} | fields
    return await arepos.applications.create(NewApplication(org_id=org_id, **values))


async def make_user(arepos: AsyncRepositories, org_id: uuid.UUID, **fields: Any) -> User:
    word = token()
    values: dict[str, Any] = {"email": f"u-{word}@example.com", "cognito_sub": f"sub-{word}"}
    return await arepos.users.create(NewUser(org_id=org_id, **values | fields))


async def make_policy(
    arepos: AsyncRepositories,
    org_id: uuid.UUID,
    config: PolicyConfig | None = None,
    **fields: Any,
) -> Policy:
    values: dict[str, Any] = {"name": f"policy-{token()}"} | fields
    return await arepos.policies.create(
        NewPolicy(
            org_id=org_id,
            config=config or RateLimitConfig(requests=100, window_seconds=60),
            **values,
        )
    )


async def make_log(arepos: AsyncRepositories, org_id: uuid.UUID, **fields: Any) -> AuditLog:
    values: dict[str, Any] = {
        "action": AuditAction.POLICY_CREATED,
        "resource_type": "policy",
    } | fields
    return await arepos.audit_logs.insert(NewAuditLog(org_id=org_id, **values))


async def make_request(
    arepos: AsyncRepositories, org_id: uuid.UUID, app_id: uuid.UUID, **fields: Any
) -> InferenceRequest:
    values: dict[str, Any] = {
        "request_id": f"req-{token()}",
        "provider": "openai",
        "model": "gpt-4o",
    } | fields
    return await arepos.inference_requests.create(
        NewInferenceRequest(org_id=org_id, app_id=app_id, **values)
    )


async def make_tenant(arepos: AsyncRepositories) -> Tenant:
    org = await make_org(arepos)
    return Tenant(org, await make_app(arepos, org.id), await make_user(arepos, org.id))


async def count_rows(tm: AsyncTransactionManager, table: str, org_id: uuid.UUID) -> int:
    """Rows of ``table`` (one of ours, never user input) that belong to ``org_id``
    (scoped to it: row-level security shows the application role no other)."""
    async with tm.transaction(), tm.connection() as conn:
        await aset_tenant(conn, org_id)
        cursor = await conn.execute(f"SELECT count(*) FROM {table} WHERE org_id = %s", (org_id,))
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def terminate_backends(url: str, pid: int | None = None) -> None:
    """Terminate backend ``pid`` (all other backends of the database if None), and
    wait until they have exited.

    pg_terminate_backend only signals: the backend says goodbye to its client a
    moment later. Once it has left pg_stat_activity it has exited, so its client's
    socket already holds the goodbye.
    """
    which = "datname = current_database() AND pid <> pg_backend_pid()"
    if pid is not None:
        which += f" AND pid = {int(pid)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {which}")
        deadline = time.monotonic() + 10
        while admin.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {which}").fetchone() != (
            0,
        ):
            assert time.monotonic() < deadline, "terminated backends did not exit"
            time.sleep(0.005)


COST = Decimal("0.000001")  # the smallest amount a cost can hold
