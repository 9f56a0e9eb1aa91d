"""The pytest plugin and strategies, as a service using llmcp would use them.

``test_a_user_project`` writes a small project (the README's example) and runs
pytest on it in a subprocess, with ``pytest_plugins = ["llmcp.testing.plugin"]``
and ``LLMCP_DATABASE_URL`` pointing at this run's server, so the plugin makes
its own migrated databases there. The other tests use the plugin's fixtures
in-process (imported by ``tests/properties/conftest.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

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


def test_a_user_project(databases: TestDatabases, tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_service.py").write_text(USER_TESTS)
    env = os.environ | {"LLMCP_DATABASE_URL": databases.admin_url}
    env.pop("HYPOTHESIS_PROFILE", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, textwrap.indent(done.stdout + done.stderr, "    ")
    assert "3 passed" in done.stdout


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
