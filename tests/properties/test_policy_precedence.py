"""Policy precedence: ``get_applicable_policies`` and ``resolve`` against a reference model.

Random hierarchies (two or three organizations, applications, users, policies
at every level with random priorities, enabled flags, types and many equal
``created_at``) are compared with ``model.applicable`` / ``model.resolved``,
written from DESIGN.md's rule. Queries also name applications and users of
other organizations, and ids that exist nowhere.
"""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from llmcp.factory import RepositoryFactory
from llmcp.testing import rolled_back
from llmcp.testing import strategies as lst
from tests.properties import model, planner
from tests.properties.budget import examples

MISSING = uuid.UUID("00000000-0000-4000-8000-00000000dead")
PRIORITIES = st.integers(-2, 2) | st.sampled_from([-(2**31), 2**31 - 1])
ENABLED = st.sampled_from([True, True, True, False])
CREATED = lst.clustered_datetimes(3) | st.none()  # None: now(), equal within a transaction


def _distinct(plans: list[lst.TenantPlan]) -> bool:
    found = [i for plan in plans for i in plan.ids()]
    return len(found) == len(set(found)) and MISSING not in found


hierarchies = st.lists(
    lst.tenant_plans(
        applications=(0, 2),
        users=(0, 2),
        policies=(0, 14),
        lean=True,
        created_at=CREATED,
        priority=PRIORITIES,
        enabled=ENABLED,
    ),
    min_size=2,
    max_size=3,
).filter(_distinct)


Query = tuple[uuid.UUID, uuid.UUID, uuid.UUID | None]


def queries(tenants: list[lst.Tenant], data: st.DataObject) -> list[Query]:
    """Every request a tenant can make (each of its applications, with each of its users
    or none), the same with an application and a user of another tenant or of nobody,
    and a few drawn at random, also naming an organization that does not exist."""
    every_app = [app.id for tenant in tenants for app in tenant.applications] + [MISSING]
    every_user = [user.id for tenant in tenants for user in tenant.users] + [MISSING]
    found: list[Query] = []
    for tenant in tenants:
        org_id = tenant.organization.id
        apps = [app.id for app in tenant.applications]
        users = [user.id for user in tenant.users]
        foreign_app = data.draw(st.sampled_from(every_app), label="foreign app")
        foreign_user = data.draw(st.sampled_from(every_user), label="foreign user")
        for app_id in [*apps, foreign_app]:
            for user_id in [*users, None, foreign_user]:
                found.append((org_id, app_id, user_id))
    for _ in range(data.draw(st.integers(0, 3), label="random queries")):
        org_id = data.draw(
            st.sampled_from([t.organization.id for t in tenants] + [MISSING]), label="org"
        )
        app_id = data.draw(st.sampled_from(every_app), label="app")
        user_id = data.draw(st.none() | st.sampled_from(every_user), label="user")
        found.append((org_id, app_id, user_id))
    return found


@examples(100)
@given(plans=hierarchies, data=st.data())
def test_applicable_policies_and_resolution_follow_the_reference_model(
    llmcp_factory: RepositoryFactory, plans: list[lst.TenantPlan], data: st.DataObject
) -> None:
    repos = llmcp_factory.repositories()
    with rolled_back(llmcp_factory.transaction_manager()) as transaction:
        planner.use(transaction, data.draw(planner.MODES, label="planner"))
        tenants = [plan.create(repos) for plan in plans]
        policies = [policy for tenant in tenants for policy in tenant.policies]
        for org_id, app_id, user_id in queries(tenants, data):
            got = repos.policies.get_applicable_policies(org_id, app_id, user_id)
            want = model.applicable(policies, org_id, app_id, user_id)
            # nothing of another organization, application or user, and only enabled ones
            for policy in got:
                assert policy.enabled
                assert policy.org_id == org_id
                assert policy.app_id in (None, app_id)
                assert policy.user_id in (None, user_id)
            assert model.ids(got) == model.ids(want)
            assert got == want  # the stored rows themselves
            assert repos.policies.resolve(org_id, app_id, user_id) == model.resolved(
                policies, org_id, app_id, user_id
            )
