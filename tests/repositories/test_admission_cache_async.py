"""The admission cache through the repositories: answers kept, and dropped when a
change's notice arrives, when the listener is lost, and beyond its size."""

from __future__ import annotations

import asyncio  # async-only
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import psycopg
import pytest

from llmcp.cache_async import AsyncAdmissionCache
from llmcp.config import DatabaseConfig
from llmcp.errors import ValidationError
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.testing import TestDatabases
from tests.repositories.helpers_async import (
    key_hash,
    make_policy,
    make_tenant,
    terminate_backends,
    token,
)


@pytest.fixture
def cache_config(
    shared_config: DatabaseConfig, databases: TestDatabases, repositories_name: str
) -> DatabaseConfig:
    """A small cache whose listener goes to the server itself (also in the pooled pass),
    under an application name of its own (to find the listener's backend)."""
    return dataclasses.replace(
        shared_config,
        admission_cache_size=100,
        listen_url=databases.direct_url(repositories_name),
        application_name=f"cache-{token()}",
    )


async def settle(predicate: Callable[[], bool]) -> None:
    """Wait until ``predicate()`` holds (a notice arrives a moment after its commit)."""
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "the cache did not get there in 10 s"
        await asyncio.sleep(0.005)


def cache_of(afactory: AsyncRepositoryFactory) -> AsyncAdmissionCache:
    assert afactory.admission_cache is not None
    return afactory.admission_cache


async def test_off_by_default(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        assert afactory.admission_cache is None


async def test_a_second_lookup_is_answered_from_memory(cache_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(cache_config) as afactory:
        arepos, cache = afactory.repositories(), cache_of(afactory)
        assert cache.stats().listening
        tenant = await make_tenant(arepos)
        policy = await make_policy(arepos, tenant.org.id, app_id=tenant.app.id)
        # the policy's notice first: arriving after the first lookups, it would drop
        # their answer (rightly), and the second lookup would check a connection out
        await settle(lambda: cache.stats().notices >= 1)
        for _ in range(2):
            requests = afactory.database.pool_stats().requests
            app = await arepos.applications.get_by_api_key_hash(tenant.app.api_key_hash)
            user = await arepos.users.get_by_cognito_sub(tenant.user.cognito_sub)
            policies = await arepos.policies.get_applicable_policies(
                tenant.org.id, tenant.app.id, tenant.user.id
            )
            assert (app, user, policies) == (tenant.app, tenant.user, [policy])
        assert afactory.database.pool_stats().requests == requests  # no checkout the 2nd time
        assert cache.stats().hits == 3 and cache.stats().entries == 3
        # a caller's change to the list it got stays its own
        policies.clear()
        assert await arepos.policies.get_applicable_policies(
            tenant.org.id, tenant.app.id, tenant.user.id
        ) == [policy]
        # not found is never kept
        assert await arepos.applications.get_by_api_key_hash(key_hash()) is None
        assert cache.stats().entries == 3


async def test_a_change_is_served_once_its_notice_arrives(cache_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(cache_config) as afactory:
        arepos, cache = afactory.repositories(), cache_of(afactory)
        tenant = await make_tenant(arepos)
        org, app, user = tenant.org.id, tenant.app.id, tenant.user.id
        assert await arepos.policies.get_applicable_policies(org, app, user) == []
        seen = cache.stats().notices
        policy = await make_policy(arepos, org)  # an org-level policy applies to everyone
        await settle(lambda: cache.stats().notices > seen)
        assert await arepos.policies.get_applicable_policies(org, app, user) == [policy]

        assert await arepos.applications.get_by_api_key_hash(tenant.app.api_key_hash) == tenant.app
        renamed = msgspec.structs.replace(tenant.app, name="renamed", api_key_hash=key_hash())
        seen = cache.stats().notices
        renamed = await arepos.applications.update(renamed)
        await settle(lambda: cache.stats().notices > seen)
        assert await arepos.applications.get_by_api_key_hash(tenant.app.api_key_hash) is None
        assert await arepos.applications.get_by_api_key_hash(renamed.api_key_hash) == renamed

        assert await arepos.users.get_by_cognito_sub(tenant.user.cognito_sub) == tenant.user
        seen = cache.stats().notices
        await arepos.users.delete(org, user)  # and its policies, by cascade: notices too
        await settle(lambda: cache.stats().notices > seen)
        assert await arepos.users.get_by_cognito_sub(tenant.user.cognito_sub) is None

        seen = cache.stats().notices
        await arepos.organizations.delete(org)  # cascades: every row of it is noticed
        await settle(lambda: cache.stats().notices > seen)
        assert await arepos.applications.get_by_api_key_hash(renamed.api_key_hash) is None
        assert await arepos.policies.get_applicable_policies(org, app, None) == []


async def test_a_transaction_reads_the_database(cache_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(cache_config) as afactory:
        arepos, tx = afactory.repositories(), afactory.transaction_manager()
        tenant = await make_tenant(arepos)
        org, app = tenant.org.id, tenant.app.id
        assert await arepos.policies.get_applicable_policies(org, app) == []
        async with tx.transaction():
            policy = await make_policy(arepos, org)
            # its own write, before any notice: the transaction sees it
            assert await arepos.policies.get_applicable_policies(org, app) == [policy]


async def test_the_size_is_bounded_least_recently_used_first(
    cache_config: DatabaseConfig,
) -> None:
    config = dataclasses.replace(cache_config, admission_cache_size=2)
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        arepos, cache = afactory.repositories(), cache_of(afactory)
        tenants = [await make_tenant(arepos) for _ in range(3)]
        first, second, third = (t.app.api_key_hash for t in tenants)
        await arepos.applications.get_by_api_key_hash(first)
        await arepos.applications.get_by_api_key_hash(second)
        await arepos.applications.get_by_api_key_hash(first)  # second is now the oldest
        await arepos.applications.get_by_api_key_hash(third)
        assert cache.stats().entries == 2
        hits = cache.stats().hits
        await arepos.applications.get_by_api_key_hash(first)
        await arepos.applications.get_by_api_key_hash(second)
        assert cache.stats().hits == hits + 1


async def test_while_the_listener_is_down_nothing_is_kept(
    cache_config: DatabaseConfig, databases: TestDatabases, repositories_name: str
) -> None:
    async with await AsyncRepositoryFactory.connect(cache_config) as afactory:
        arepos, cache = afactory.repositories(), cache_of(afactory)
        tenant = await make_tenant(arepos)
        await arepos.applications.get_by_api_key_hash(tenant.app.api_key_hash)
        assert cache.stats().entries == 1
        url = databases.direct_url(repositories_name)  # the listener's server, even pooled
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                (f"{cache_config.application_name}-cache",),
            ).fetchone()
        assert row is not None
        subscriptions = cache.stats().subscriptions
        terminate_backends(url, row[0])
        # dropped as soon as the loss is seen; subscribed again within the backoff
        await settle(lambda: cache.stats().subscriptions > subscriptions)
        assert cache.stats().entries == 0
        assert await arepos.applications.get_by_api_key_hash(tenant.app.api_key_hash)
        assert cache.stats().entries == 1


async def test_a_listener_that_cannot_connect_serves_nothing(
    cache_config: DatabaseConfig, private_dir: Path
) -> None:
    # a unix socket folder where nothing listens
    config = dataclasses.replace(
        cache_config, listen_url=f"postgresql:///nowhere?host={private_dir}", connect_timeout=1
    )
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        arepos, cache = afactory.repositories(), cache_of(afactory)
        tenant = await make_tenant(arepos)
        for _ in range(2):
            assert await arepos.applications.get_by_api_key_hash(tenant.app.api_key_hash)
        stats = cache.stats()
        assert (stats.listening, stats.entries, stats.hits) == (False, 0, 0)


def test_behind_a_pooler_it_needs_a_direct_url(shared_config: DatabaseConfig) -> None:
    with pytest.raises(ValidationError, match="listen_url"):
        dataclasses.replace(shared_config, admission_cache_size=10, pooler="transaction")
    with pytest.raises(ValidationError, match="admission_cache_size"):
        dataclasses.replace(shared_config, admission_cache_size=-1)


def test_settings_from_the_environment_and_the_password_masked() -> None:
    config = DatabaseConfig.from_env(
        {
            "LLMCP_DATABASE_URL": "postgresql://app:pw1@localhost/db",
            "LLMCP_ADMISSION_CACHE_SIZE": "5000",
            "LLMCP_LISTEN_URL": "postgresql://app:s3cret-listen@primary/db",
        }
    )
    assert (config.admission_cache_size, config.listen_url) == (
        5000,
        "postgresql://app:s3cret-listen@primary/db",
    )
    assert "s3cret-listen" not in repr(config)
