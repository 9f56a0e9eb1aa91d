"""Property-based tests: hypothesis profiles, and the fixtures of ``llmcp.testing.plugin``.

Profiles (``HYPOTHESIS_PROFILE``): ``default`` for ``make test``, ``repeat``
(about a third of the examples) for its pass on the system PostgreSQL,
``pooled`` (a tenth) for the pass through PgBouncer, ``thorough`` (ten times
the examples) for ``make test-thorough``. Each test asks for a number
of examples relative to the profile (``budget.examples``). A failure prints the
shrunk example and a ``@reproduce_failure`` blob to replay it.

The plugin's fixtures are imported here rather than enabled with
``pytest_plugins`` (which pytest allows only in the top-level conftest), and its
server fixture is overridden to reuse the suite's server (``databases``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from llmcp.config import DatabaseConfig
from llmcp.factory import RepositoryFactory
from llmcp.testing import TestDatabases
from llmcp.testing.plugin import (  # noqa: F401  (fixtures, found by name)
    llmcp_config,
    llmcp_database_url,
    llmcp_factory,
    llmcp_repositories,
    llmcp_transaction,
)

settings.register_profile(
    "default",
    max_examples=100,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", settings.get_profile("default"), max_examples=1000)
# the passes of `make test` after the first (another server): the same properties,
# a third of the examples, since the first pass has given them their full budget
settings.register_profile("repeat", settings.get_profile("default"), max_examples=30)
# the second pass through PgBouncer (make test-pgbouncer): what the pooler changes is
# the path of each call, not the data, so a tenth of the examples suffices
settings.register_profile("pooled", settings.get_profile("default"), max_examples=10)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "default")


@pytest.fixture(scope="session")
def llmcp_scratch(databases: TestDatabases) -> TestDatabases:
    """The plugin's server fixture, overridden: one embedded server for the whole run."""
    return databases


@pytest.fixture(scope="module")
def private_name(databases: TestDatabases) -> Iterator[str]:
    """A database of this module alone (for tests that commit)."""
    name = databases.clone("properties")
    yield name
    databases.drop(name)


@pytest.fixture(scope="module")
def private_factory(databases: TestDatabases, private_name: str) -> Iterator[RepositoryFactory]:
    """A factory on ``private_name``, as the application role."""
    config = DatabaseConfig(
        url=databases.url(private_name), min_size=1, max_size=4, acquire_timeout=10.0
    )
    with RepositoryFactory.connect(config) as factory:
        yield factory


@pytest.fixture(scope="module")
def private_owner_url(databases: TestDatabases, private_name: str) -> str:
    """``private_name`` as its owner: for emptying it between examples (TRUNCATE)."""
    return databases.owner_url(private_name)
