"""pytest plugin: a migrated PostgreSQL, a repository factory, a rolled-back transaction.

Enable it in your top-level ``conftest.py``::

    pytest_plugins = ["llmcp.testing.plugin"]

Fixtures (all named ``llmcp_*``, so they do not clash with yours):

``llmcp_scratch`` (session)
    A server with a migrated template database: an embedded PostgreSQL in a
    temporary folder, or the server of ``LLMCP_DATABASE_URL`` (the role needs
    ``CREATEDB`` and ``CREATEROLE``; every ``llmcp_test_*`` database made is
    dropped at the end). Its ``owner_url(name)`` is a database as the owner.
``llmcp_database_url`` (session)
    The URL of a migrated database, a clone of the template, for the whole run,
    as the application role (``llmcp_test_app``, a member of ``llmcp_app`` only):
    your tests run with the privileges your service has.
``llmcp_config`` (session)
    A :class:`~llmcp.config.DatabaseConfig` for it (small pool, short timeouts).
``llmcp_factory`` (session)
    A :class:`~llmcp.factory.RepositoryFactory` on it, closed at the end.
``llmcp_repositories`` (session)
    ``llmcp_factory.repositories()``.
``llmcp_transaction`` (function)
    A transaction every repository call of the test runs in, rolled back when
    the test ends: the test leaves nothing behind.

With hypothesis, a function-scoped fixture is shared by all the examples of a
test: isolate each example with :func:`llmcp.testing.rolled_back` instead
(session fixtures only, so no health check complains).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmcp.config import DatabaseConfig
from llmcp.dev.scratch import ScratchDatabases
from llmcp.factory import Repositories, RepositoryFactory
from llmcp.transactions import Transaction

__all__ = [
    "llmcp_config",
    "llmcp_database_url",
    "llmcp_factory",
    "llmcp_repositories",
    "llmcp_scratch",
    "llmcp_transaction",
]


@pytest.fixture(scope="session")
def llmcp_scratch() -> Iterator[ScratchDatabases]:
    """A server (embedded, or ``LLMCP_DATABASE_URL``'s) with a migrated template."""
    with ScratchDatabases() as databases:
        yield databases


@pytest.fixture(scope="session")
def llmcp_database_url(llmcp_scratch: ScratchDatabases) -> str:
    """A migrated database for the run (a clone of the template)."""
    return llmcp_scratch.url(llmcp_scratch.clone("plugin"))


@pytest.fixture(scope="session")
def llmcp_config(llmcp_database_url: str) -> DatabaseConfig:
    """Settings for a factory on ``llmcp_database_url``."""
    return DatabaseConfig(
        url=llmcp_database_url,
        min_size=1,
        max_size=4,
        acquire_timeout=10.0,
        connect_timeout=10.0,
    )


@pytest.fixture(scope="session")
def llmcp_factory(llmcp_config: DatabaseConfig) -> Iterator[RepositoryFactory]:
    """A repository factory on the migrated database, closed at the end of the run."""
    with RepositoryFactory.connect(llmcp_config) as factory:
        yield factory


@pytest.fixture(scope="session")
def llmcp_repositories(llmcp_factory: RepositoryFactory) -> Repositories:
    """The six repositories of ``llmcp_factory``."""
    return llmcp_factory.repositories()


@pytest.fixture
def llmcp_transaction(llmcp_factory: RepositoryFactory) -> Iterator[Transaction]:
    """A transaction around the test (every repository call uses it), rolled back after."""
    transaction = llmcp_factory.transaction_manager().begin()
    try:
        yield transaction
    finally:
        transaction.rollback()
