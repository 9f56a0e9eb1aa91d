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

The async fixtures, for ``async def`` tests run by anyio's pytest plugin
(``@pytest.mark.anyio``) or by pytest-asyncio (strict mode, the default, with
``@pytest.mark.asyncio``, or auto mode):

``llmcp_async_factory`` (function)
    An :class:`~llmcp.factory_async.AsyncRepositoryFactory` on
    ``llmcp_database_url``, opened on the test's own event loop and closed (its
    audit writer drained) when the test ends. A pool belongs to the loop that
    opened it, so a factory per test is what lets every test run on whichever
    loop its plugin gives it, with no loop scope to configure; it costs about
    40 ms per test (a pool opened and closed), the migrated database being the
    session's.
``llmcp_async_repositories`` (function)
    ``llmcp_async_factory.repositories()``.
``llmcp_async_transaction`` (function)
    An async transaction every repository call of the test runs in, rolled back
    when the test ends (the test and its fixtures share one context, as both
    plugins run them). Per hypothesis example: :func:`llmcp.testing.arolled_back`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar, cast

import pytest

from llmcp.config import DatabaseConfig
from llmcp.dev.scratch import ScratchDatabases
from llmcp.factory import Repositories, RepositoryFactory
from llmcp.factory_async import AsyncRepositories, AsyncRepositoryFactory
from llmcp.transactions import Transaction
from llmcp.transactions_async import AsyncTransaction

__all__ = [
    "llmcp_async_factory",
    "llmcp_async_repositories",
    "llmcp_async_transaction",
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


# -- async fixtures -----------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., AsyncIterator[Any]])
_FOR_ANYIO: dict[Any, Callable[..., AsyncIterator[Any]]] = {}
"""Each async fixture's function as pytest-asyncio marked it -> the same, unmarked."""


def _async_fixture(function: F) -> F:
    """A function-scoped async fixture that both plugins run on the test's loop.

    pytest-asyncio (strict mode) runs only the fixtures it marked, and once marked
    it runs them on its own loop even for an anyio test. So the fixture is marked
    (when pytest-asyncio is installed), and :func:`pytest_fixture_setup` hands an
    anyio test the unmarked twin, which anyio's plugin runs on that test's loop.
    """
    try:
        import pytest_asyncio
    except ImportError:  # anyio's plugin alone
        return cast(F, pytest.fixture(function))

    @functools.wraps(function)
    async def marked(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async for value in function(*args, **kwargs):
            yield value

    _FOR_ANYIO[marked] = function
    return cast(F, pytest_asyncio.fixture(marked))


@pytest.hookimpl(tryfirst=True, wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Any:
    """For an anyio test (it has the ``anyio_backend`` fixture), set up llmcp's async
    fixtures from their unmarked twins, before pytest-asyncio's hook could take them."""
    unmarked = _FOR_ANYIO.get(fixturedef.func)
    if unmarked is None or "anyio_backend" not in request.fixturenames:
        return (yield)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fixturedef, "func", unmarked)
        return (yield)


@_async_fixture
async def llmcp_async_factory(
    llmcp_config: DatabaseConfig,
) -> AsyncIterator[AsyncRepositoryFactory]:
    """An async repository factory on the migrated database, for this test's event loop."""
    factory = await AsyncRepositoryFactory.connect(llmcp_config)
    try:
        yield factory
    finally:
        await factory.close(timeout=30)


@pytest.fixture
def llmcp_async_repositories(llmcp_async_factory: AsyncRepositoryFactory) -> AsyncRepositories:
    """The six repositories of ``llmcp_async_factory``."""
    return llmcp_async_factory.repositories()


@_async_fixture
async def llmcp_async_transaction(
    llmcp_async_factory: AsyncRepositoryFactory,
) -> AsyncIterator[AsyncTransaction]:
    """An async transaction around the test (every repository call uses it), rolled back."""
    transaction = await llmcp_async_factory.transaction_manager().begin()
    try:
        yield transaction
    finally:
        await transaction.rollback()
