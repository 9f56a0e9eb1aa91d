"""Deletes through the repositories: what goes with a row, and what stays."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import ReferenceViolationError
from llmcp.factory_async import AsyncRepositories, AsyncRepositoryFactory
from llmcp.generated.models import AuditAction, AuditLog
from tests.repositories.helpers_async import (
    Tenant,
    at,
    count_rows,
    make_app,
    make_log,
    make_policy,
    make_request,
    make_tenant,
    make_user,
    newest_first,
)

TABLES = ("applications", "users", "policies", "audit_logs", "inference_requests")


class Rows(dict[str, Any]):
    """Every row of a populated tenant, by name."""


async def populate(arepos: AsyncRepositories) -> tuple[Tenant, Rows]:
    tenant = await make_tenant(arepos)
    org, app, user = tenant
    rows = Rows(
        org_policy=await make_policy(arepos, org.id),
        app_policy=await make_policy(arepos, org.id, app_id=app.id),
        user_policy=await make_policy(arepos, org.id, user_id=user.id),
        both_policy=await make_policy(arepos, org.id, app_id=app.id, user_id=user.id),
        app_log=await make_log(arepos, org.id, app_id=app.id),
        user_log=await make_log(arepos, org.id, user_id=user.id),
        both_log=await make_log(arepos, org.id, app_id=app.id, user_id=user.id),
        app_request=await make_request(arepos, org.id, app.id, created_at=at(0)),
        both_request=await make_request(arepos, org.id, app.id, user_id=user.id),
    )
    return tenant, rows


class ByIdLookup(Protocol):
    """What every tenant repository has: one row of an organization by its id, or None."""

    async def get_by_id(self, org_id: uuid.UUID, row_id: uuid.UUID, /) -> object: ...


async def exists(arepos: AsyncRepositories, name: str, row: Any) -> bool:
    repositories: dict[str, ByIdLookup] = {
        "policy": arepos.policies,
        "log": arepos.audit_logs,
        "request": arepos.inference_requests,
        "app": arepos.applications,
        "user": arepos.users,
    }
    repository = repositories[name.rpartition("_")[2]]
    return await repository.get_by_id(row.org_id, row.id) is not None


def logs_of(rows: Rows) -> dict[str, AuditLog]:
    return {name: row for name, row in rows.items() if name.endswith("_log")}


async def test_deleting_an_organization_deletes_all_but_its_audit_trail(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        doomed, doomed_rows = await populate(arepos)
        survivor, survivor_rows = await populate(arepos)
        survivor_counts = [await count_rows(tm, table, survivor.org.id) for table in TABLES]
        assert all([await count_rows(tm, table, doomed.org.id) for table in TABLES])
        # what a service writes just before it deletes an organization
        doomed_rows["deleted_log"] = await make_log(
            arepos,
            doomed.org.id,
            user_id=doomed.user.id,
            action=AuditAction.ORGANIZATION_DELETED,
            resource_type="organization",
            resource_id=doomed.org.id,
            created_at=at(10),
        )

        await arepos.organizations.delete(doomed.org.id)

        assert await arepos.organizations.get_by_id(doomed.org.id) is None
        assert await arepos.applications.get_by_id(doomed.org.id, doomed.app.id) is None
        assert await arepos.users.get_by_id(doomed.org.id, doomed.user.id) is None
        trail = logs_of(doomed_rows)
        for name, row in doomed_rows.items():
            assert await exists(arepos, name, row) is (name in trail), name
        assert [await count_rows(tm, table, doomed.org.id) for table in TABLES] == [
            0,
            0,
            0,
            len(trail),
            0,
        ]
        # the audit trail stays whole, every id as it was (the deletion's own entry too)
        for name, log in trail.items():
            assert await arepos.audit_logs.get_by_id(doomed.org.id, log.id) == log, name
        assert await arepos.audit_logs.get_by_org_id(doomed.org.id) == newest_first(
            list(trail.values())
        )
        assert await arepos.audit_logs.get_by_app_id(doomed.org.id, doomed.app.id) == (
            newest_first([trail["app_log"], trail["both_log"]])
        )
        assert await arepos.audit_logs.get_by_user_id(doomed.org.id, doomed.user.id) == (
            newest_first([trail["user_log"], trail["both_log"], trail["deleted_log"]])
        )
        # ... but a new entry cannot name the organization that is gone
        with pytest.raises(ReferenceViolationError) as caught:
            await make_log(arepos, doomed.org.id)
        assert caught.value.constraint == "audit_logs_org_id_fkey"
        assert await count_rows(tm, "audit_logs", doomed.org.id) == len(trail)
        # nothing of another organization goes
        for name, row in survivor_rows.items():
            assert await exists(arepos, name, row), name
        assert [await count_rows(tm, table, survivor.org.id) for table in TABLES] == survivor_counts
        metrics = await arepos.inference_requests.get_metrics(doomed.org.id, at(-1), at(10**9))
        assert metrics.total_requests == 0


async def test_deleting_an_application_keeps_its_audit_logs(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        (org, app, user), rows = await populate(arepos)
        other_app = await make_app(arepos, org.id)
        kept_request = await make_request(arepos, org.id, other_app.id)

        await arepos.applications.delete(org.id, app.id)

        assert await arepos.applications.get_by_id(org.id, app.id) is None
        # its policies and inference requests go with it
        for name in ("app_policy", "both_policy", "app_request", "both_request"):
            assert not await exists(arepos, name, rows[name]), name
        assert await arepos.inference_requests.get_by_app_id(org.id, app.id) == []
        # the audit trail stays, still naming the application (and the user)
        for name in ("app_log", "both_log"):
            assert await arepos.audit_logs.get_by_id(org.id, rows[name].id) == rows[name], name
        assert await arepos.audit_logs.get_by_app_id(org.id, app.id) == newest_first(
            [rows["app_log"], rows["both_log"]]
        )
        both_log = await arepos.audit_logs.get_by_id(org.id, rows["both_log"].id)
        assert both_log is not None and (both_log.app_id, both_log.user_id) == (app.id, user.id)
        # a new entry cannot name the application that is gone
        with pytest.raises(ReferenceViolationError) as caught:
            await make_log(arepos, org.id, app_id=app.id)
        assert caught.value.constraint == "audit_logs_app_fkey"
        # the rest of the organization stays
        for name in ("org_policy", "user_policy", "user_log"):
            assert await exists(arepos, name, rows[name]), name
        assert await arepos.inference_requests.get_by_id(org.id, kept_request.id) == kept_request
        assert await arepos.organizations.get_by_id(org.id) == org


async def test_deleting_a_user_keeps_logs_and_requests(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        (org, app, user), rows = await populate(arepos)
        other_user = await make_user(arepos, org.id)
        kept_policy = await make_policy(arepos, org.id, user_id=other_user.id)

        await arepos.users.delete(org.id, user.id)

        assert await arepos.users.get_by_id(org.id, user.id) is None
        for name in ("user_policy", "both_policy"):
            assert not await exists(arepos, name, rows[name]), name
        # the audit trail still names the user
        for name in ("user_log", "both_log"):
            assert await arepos.audit_logs.get_by_id(org.id, rows[name].id) == rows[name], name
        assert await arepos.audit_logs.get_by_user_id(org.id, user.id) == newest_first(
            [rows["user_log"], rows["both_log"]]
        )
        with pytest.raises(ReferenceViolationError) as caught:
            await make_log(arepos, org.id, user_id=user.id)
        assert caught.value.constraint == "audit_logs_user_fkey"
        # inference requests stay, without the user
        request = await arepos.inference_requests.get_by_id(org.id, rows["both_request"].id)
        assert request is not None and request.user_id is None and request.app_id == app.id
        assert await arepos.inference_requests.get_by_user_id(org.id, user.id) == []
        assert await arepos.policies.get_by_id(org.id, kept_policy.id) == kept_policy
        for name in ("org_policy", "app_policy", "app_log", "app_request"):
            assert await exists(arepos, name, rows[name]), name
