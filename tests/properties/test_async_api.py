"""The async API against the same reference models (its own adapter and transactions).

The sync repositories are generated from the async ones and share the SQL; these
properties make sure the async path (``AsyncPsycopgAdapter``, async transactions,
``arolled_back``) gives the same answers: policy precedence, and keyset pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmcp.config import DatabaseConfig
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.testing import arolled_back
from llmcp.testing import strategies as lst
from tests.properties import model
from tests.properties.budget import examples
from tests.properties.test_pagination import CREATED, MISSING, new_row
from tests.properties.test_policy_precedence import hierarchies

Async = tuple[asyncio.Runner, AsyncRepositoryFactory]


@pytest.fixture(scope="module")
def async_factory(llmcp_config: DatabaseConfig) -> Iterator[Async]:
    """An async factory living on one event loop for the whole module."""
    with asyncio.Runner() as runner:
        factory = runner.run(AsyncRepositoryFactory.connect(llmcp_config))
        yield runner, factory
        runner.run(factory.close())


@examples(30)
@given(plans=hierarchies, data=st.data())
def test_async_applicable_policies_follow_the_reference_model(
    async_factory: Async, plans: list[lst.TenantPlan], data: st.DataObject
) -> None:
    runner, factory = async_factory

    async def check() -> None:
        repos = factory.repositories()
        async with arolled_back(factory.transaction_manager()):
            tenants = [await plan.acreate(repos) for plan in plans]
            policies = [p for tenant in tenants for p in tenant.policies]
            tenant = data.draw(st.sampled_from(tenants), label="tenant")
            org_id = tenant.organization.id
            app_id = data.draw(
                st.sampled_from([a.id for a in tenant.applications] or [MISSING]), label="app"
            )
            user_id = data.draw(
                st.none() | st.sampled_from([u.id for u in tenant.users] or [MISSING]),
                label="user",
            )
            got = await repos.policies.get_applicable_policies(org_id, app_id, user_id)
            assert got == model.applicable(policies, org_id, app_id, user_id)
            assert await repos.policies.resolve(org_id, app_id, user_id) == model.resolved(
                policies, org_id, app_id, user_id
            )

    runner.run(check())


@examples(30)
@given(
    plan=lst.tenant_plans(
        applications=(1, 2), users=(1, 2), policies=(0, 0), lean=True, created_at=CREATED
    ),
    data=st.data(),
)
def test_async_keyset_pages_concatenate_to_the_full_ordered_result(
    async_factory: Async, plan: lst.TenantPlan, data: st.DataObject
) -> None:
    runner, factory = async_factory
    table = data.draw(st.sampled_from(["audit_logs", "inference_requests"]), label="table")
    refs = (
        [a.id for a in plan.applications if a.id is not None],
        [u.id for u in plan.users if u.id is not None],
    )
    news = data.draw(
        st.lists(new_row(table, plan.organization.id, refs), max_size=14, unique_by=lambda r: r.id),
        label="rows",
    )

    async def check() -> None:
        repos = factory.repositories()
        async with arolled_back(factory.transaction_manager()):
            await plan.acreate(repos)
            rows: list[Any] = []
            for new in news:
                if table == "audit_logs":
                    rows.append(await repos.audit_logs.insert(new))
                else:
                    rows.append(await repos.inference_requests.create(new))
            listing = getattr(repos, table)
            seen: list[Any] = []
            cursor = None
            while True:
                size = data.draw(st.integers(1, 5), label="page size")
                page = await listing.page_by_org_id(plan.organization.id, size, cursor)
                seen += page.items
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert seen == model.newest_first(rows)
            assert await listing.get_by_org_id(plan.organization.id, 1000) == seen

    runner.run(check())
