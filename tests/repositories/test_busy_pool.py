"""A busy pool is not a degraded one: async only, not derived from a twin.

When every pooled connection is held (requests in ``factory.request()`` scopes,
more requests than connections), a caller waits for the pool. It must not take
a connection handed to a waiting caller, for a moment neither available nor
out, for a missing slot and connect on its own (``AsyncDatabase._degraded``):
that made about one request in three open and close a connection of its own
under the gateway benchmark's load.
"""

from __future__ import annotations

import asyncio
import dataclasses

import psycopg
import pytest

from llmcp.config import DatabaseConfig
from llmcp.factory_async import AsyncRepositoryFactory
from tests.repositories.helpers_async import make_org, token

_BACKENDS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()
"""

POOL = 2
REQUESTS = 8
HOLD_S = 0.15  # longer than the 0.1 s after which a degraded pool connects on its own


@pytest.mark.direct_connection(reason="counts the server backends of the pool's client connections")
async def test_requests_queued_on_a_busy_pool_wait_for_it_and_connect_nothing(
    shared_config: DatabaseConfig,
) -> None:
    config = dataclasses.replace(
        shared_config, min_size=POOL, max_size=POOL, application_name=f"llmcp-busy-{token()}"
    )
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        org = await make_org(afactory.repositories())
        seen: list[int] = []
        done = asyncio.Event()

        async def watch() -> None:  # the server's count of this pool's backends
            async with await psycopg.AsyncConnection.connect(config.url, autocommit=True) as conn:
                while not done.is_set():
                    row = await (
                        await conn.execute(_BACKENDS, (config.application_name,))
                    ).fetchone()
                    seen.append(row[0] if row else 0)
                    await asyncio.sleep(0.01)

        async def request() -> None:
            async with afactory.request() as arepos:
                assert await arepos.organizations.get_by_id(org.id) == org
                await asyncio.sleep(HOLD_S)  # the handler's own work, holding the connection

        watcher = asyncio.create_task(watch())
        try:
            for _ in range(2):
                await asyncio.gather(*(request() for _ in range(REQUESTS)))
        finally:
            done.set()
            await watcher
        assert seen and max(seen) <= POOL, seen
        assert afactory.database.pool_stats().size == POOL
