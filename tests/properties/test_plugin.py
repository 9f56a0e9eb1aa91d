"""The pytest plugin and strategies, as a service using llmcp would use them.

``test_a_user_project`` writes a small project (the README's example) and runs
pytest on it in a subprocess, with ``pytest_plugins = ["llmcp.testing.plugin"]``
and ``LLMCP_DATABASE_URL`` pointing at this run's server, so the plugin makes
its own migrated databases there; ``test_an_async_user_project`` does the same
with the async fixtures, under anyio's plugin and pytest-asyncio's (strict and
auto modes, and anyio's alone). ``test_two_runs_that_commit_do_not_collide``
runs a project whose hypothesis test commits what it draws twice into one
database: unique ids let the second run pass, plain ``st.uuids()`` do not. The
other tests use the plugin's fixtures in-process (imported by
``tests/properties/conftest.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psycopg
import pytest
from hypothesis import given

from llmcp.factory import Repositories, RepositoryFactory
from llmcp.inputs import NewOrganization
from llmcp.testing import TestDatabases, rolled_back
from llmcp.testing import strategies as lst
from llmcp.transactions import Transaction
from tests.properties.budget import examples

CONFTEST = """\
pytest_plugins = ["llmcp.testing.plugin"]
"""

USER_TESTS = """\
from hypothesis import given, settings

from llmcp.inputs import NewOrganization
from llmcp.testing import rolled_back
from llmcp.testing import strategies as lst


def test_a_transaction_rolled_back_after_the_test(llmcp_repositories, llmcp_transaction):
    org = llmcp_repositories.organizations.create(NewOrganization(name="Acme", slug="acme"))
    assert llmcp_repositories.organizations.get_by_slug("acme") == org


def test_nothing_was_left_behind(llmcp_repositories):
    assert llmcp_repositories.organizations.get_by_slug("acme") is None


@settings(max_examples=20, deadline=None)
@given(plan=lst.tenant_plans(policies=(1, 6)))
def test_every_applicable_policy_belongs_to_the_tenant(llmcp_factory, plan):
    repos = llmcp_factory.repositories()
    with rolled_back(llmcp_factory.transaction_manager()):  # one transaction per example
        tenant = plan.create(repos)
        for app in tenant.applications:
            for policy in repos.policies.get_applicable_policies(tenant.organization.id, app.id):
                assert policy.org_id == tenant.organization.id and policy.enabled
"""


def _pytest(
    project: Path, url: str, *options: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """pytest on ``project`` in a subprocess, its server (or database) ``url``."""
    environment = os.environ | {"LLMCP_DATABASE_URL": url} | (env or {})
    environment.pop("HYPOTHESIS_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, str(project)],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _passed(done: subprocess.CompletedProcess[str], count: int) -> None:
    assert done.returncode == 0, textwrap.indent(done.stdout + done.stderr, "    ")
    assert f"{count} passed" in done.stdout, done.stdout


def test_a_user_project(databases: TestDatabases, tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_service.py").write_text(USER_TESTS)
    _passed(_pytest(tmp_path, databases.admin_url), 3)


ASYNC_USER_TESTS = """\
import pytest
from hypothesis import HealthCheck, given, settings

from llmcp.generated.models import AuditAction
from llmcp.inputs import NewAuditLog, NewOrganization
from llmcp.testing import arolled_back
from llmcp.testing import strategies as lst

# one factory per test, shared by its examples (each rolled back on its own)
per_test = settings(max_examples=10, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


async def create_and_read(repos, transaction, factory, slug):
    assert factory.transaction_manager().current() is transaction
    org = await repos.organizations.create(NewOrganization(name="Acme", slug=slug))
    assert await repos.organizations.get_by_slug(slug) == org


@pytest.mark.anyio
async def test_anyio_rolled_back(llmcp_async_repositories, llmcp_async_transaction,
                                 llmcp_async_factory):
    await create_and_read(llmcp_async_repositories, llmcp_async_transaction,
                          llmcp_async_factory, "acme-anyio")


@pytest.mark.asyncio
async def test_asyncio_rolled_back(llmcp_async_repositories, llmcp_async_transaction,
                                   llmcp_async_factory):
    await create_and_read(llmcp_async_repositories, llmcp_async_transaction,
                          llmcp_async_factory, "acme-asyncio")


@pytest.mark.anyio
async def test_nothing_was_left_behind(llmcp_async_repositories):
    for slug in ("acme-anyio", "acme-asyncio"):
        assert await llmcp_async_repositories.organizations.get_by_slug(slug) is None


async def applicable_policies_stay_in_the_tenant(factory, plan):
    repos = factory.repositories()
    async with arolled_back(factory.transaction_manager()):  # one transaction per example
        tenant = await plan.acreate(repos)
        for app in tenant.applications:
            for policy in await repos.policies.get_applicable_policies(
                tenant.organization.id, app.id
            ):
                assert policy.org_id == tenant.organization.id and policy.enabled
    assert await repos.organizations.get_by_id(tenant.organization.id) is None


@pytest.mark.anyio
@per_test
@given(plan=lst.tenant_plans(policies=(1, 6)))
async def test_anyio_hypothesis(llmcp_async_factory, plan):
    await applicable_policies_stay_in_the_tenant(llmcp_async_factory, plan)


@pytest.mark.asyncio
@per_test
@given(plan=lst.tenant_plans(policies=(1, 6)))
async def test_asyncio_hypothesis(llmcp_async_factory, plan):
    await applicable_policies_stay_in_the_tenant(llmcp_async_factory, plan)


@pytest.mark.asyncio
async def test_audit_rows_are_stored_before_the_factory_closes(llmcp_async_factory):
    repos = llmcp_async_factory.repositories()
    org = await repos.organizations.create(NewOrganization(name="W", slug="writer"))
    await repos.audit_logs.async_insert(NewAuditLog(
        org_id=org.id, action=AuditAction.USER_CREATED, resource_type="user",
        ip_address="192.0.2.7",
    ))
    await llmcp_async_factory.audit_writer.flush(timeout=30)
    [log] = await repos.audit_logs.get_by_org_id(org.id)
    assert log.ip_address == "192.0.2.7"
"""
ASYNC_TESTS = 6


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param((), ASYNC_TESTS, id="strict"),  # pytest-asyncio's default mode
        # anyio's plugin alone: the asyncio-marked tests are not its
        pytest.param(("-p", "no:asyncio", "-m", "anyio"), 3, id="anyio-only"),
        # auto mode takes every async test: run the asyncio ones
        pytest.param(("-o", "asyncio_mode=auto", "-m", "not anyio"), 3, id="auto"),
    ],
)
def test_an_async_user_project(
    databases: TestDatabases, tmp_path: Path, options: tuple[str, ...], expected: int
) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_service.py").write_text(ASYNC_USER_TESTS)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error::pytest.PytestDeprecationWarning\n"
    )
    _passed(_pytest(tmp_path, databases.admin_url, *options), expected)


COMMITTING_TESTS = """\
import os

import pytest
from hypothesis import Phase, given, settings

from llmcp import DatabaseConfig, RepositoryFactory
from llmcp.testing import strategies as lst


@pytest.fixture(scope="session")
def factory():
    config = DatabaseConfig(url=os.environ["SHARED_URL"], min_size=1, max_size=1)
    with RepositoryFactory.connect(config) as factory:
        yield factory


# the same examples on every run; a failure is reported as found (no shrinking)
@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          phases=[Phase.generate])
@given(plan=lst.tenant_plans(unique_ids={unique}))
def test_commits_what_it_draws(factory, plan):
    plan.create(factory.repositories())  # committed: nothing rolls it back
"""


def _organizations(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM organizations").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("unique", [True, False])
def test_two_runs_that_commit_do_not_collide(
    databases: TestDatabases, tmp_path: Path, unique: bool
) -> None:
    """Each run draws the very same examples (derandomized): with unique ids, two runs
    commit side by side; with plain ``st.uuids()``, the second collides."""
    name = databases.clone("commits")
    try:
        (tmp_path / "test_commits.py").write_text(COMMITTING_TESTS.format(unique=unique))
        shared = {"SHARED_URL": databases.url(name)}
        first = _pytest(tmp_path, databases.admin_url, env=shared)
        after_first = _organizations(databases.owner_url(name))
        second = _pytest(tmp_path, databases.admin_url, env=shared)
        if unique:
            _passed(first, 1)
            _passed(second, 1)
            assert after_first > 0
            assert _organizations(databases.owner_url(name)) == 2 * after_first
        else:
            assert second.returncode != 0 and "ConflictError" in second.stdout, second.stdout
    finally:
        databases.drop(name)


SLUG = f"plugin-{uuid.uuid4().hex[:12]}"


def test_llmcp_transaction_is_used_by_every_repository_call(
    llmcp_repositories: Repositories,
    llmcp_factory: RepositoryFactory,
    llmcp_transaction: Transaction,
) -> None:
    assert llmcp_factory.transaction_manager().current() is llmcp_transaction
    org = llmcp_repositories.organizations.create(NewOrganization(name="p", slug=SLUG))
    assert llmcp_repositories.organizations.get_by_slug(SLUG) == org


def test_llmcp_transaction_was_rolled_back(
    llmcp_repositories: Repositories, llmcp_factory: RepositoryFactory
) -> None:
    assert llmcp_factory.transaction_manager().current() is None
    assert llmcp_repositories.organizations.get_by_slug(SLUG) is None


@examples(15)
@given(plan=lst.tenant_plans())
def test_tenant_plans_are_valid_and_rolled_back(
    llmcp_factory: RepositoryFactory, plan: lst.TenantPlan
) -> None:
    """Rich (not lean) tenants: every drawn row is accepted; rolled_back leaves nothing."""
    repos = llmcp_factory.repositories()
    with rolled_back(llmcp_factory.transaction_manager()):
        tenant = plan.create(repos)
        assert len(tenant.policies) == len(plan.policies)
    assert repos.organizations.get_by_id(tenant.organization.id) is None
