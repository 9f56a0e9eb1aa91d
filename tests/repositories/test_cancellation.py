"""Cancelled tasks (a request timeout, a client gone): async only, not derived from a twin.

A call cancelled while its statement runs must be cancelled on the server too
(an UPDATE abandoned only by the client would still happen later), the
connection must come back to the pool clean, a cancelled transaction must roll
back, and the next call must work. Every factory here has a pool of one
connection (``one_connection``), so a connection that did not come back would
fail the next call.

Statements are held up by a row lock that the test holds from another
connection; nothing sleeps to wait (pg_stat_activity is polled, with a deadline).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import psycopg
import pytest

from llmcp.config import DatabaseConfig
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import Organization
from tests.repositories.helpers_async import make_app, make_org
from tests.repositories.test_concurrency import DEADLINE_S, await_until_blocked

_BUSY = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = %s AND state <> 'idle'
  AND pid <> pg_backend_pid()  -- through a pooler, this backend may carry that name too
"""


@asynccontextmanager
async def row_locked(locker: psycopg.Connection[Any], org: Organization) -> AsyncIterator[None]:
    """Hold ``org``'s row lock for the block: updates of it wait, inserts naming it do not."""
    locker.execute("SELECT 1 FROM organizations WHERE id = %s FOR NO KEY UPDATE", (org.id,))
    try:
        yield
    finally:
        locker.rollback()


def renamed(org: Organization, name: str) -> Organization:
    return msgspec.structs.replace(org, name=name)


async def assert_server_idle(config: DatabaseConfig) -> None:
    """No backend of ``config`` runs a statement or sits in a transaction."""
    async with await psycopg.AsyncConnection.connect(config.url, autocommit=True) as conn:
        row = await (await conn.execute(_BUSY, (config.application_name,))).fetchone()
    assert row == (0,)


async def test_a_cancelled_write_is_cancelled_on_the_server(
    one_connection: DatabaseConfig, locker: psycopg.Connection[Any]
) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        async with row_locked(locker, org):
            update = asyncio.create_task(arepos.organizations.update(renamed(org, "Cancelled")))
            await await_until_blocked(one_connection)
            update.cancel()
            with pytest.raises(asyncio.CancelledError):
                await update
        # the lock is gone: an UPDATE still waiting on the server would happen now
        await assert_server_idle(one_connection)
        assert await arepos.organizations.get_by_id(org.id) == org
        assert (await arepos.organizations.update(renamed(org, "Next"))).name == "Next"


async def test_a_cancelled_transaction_rolls_back(
    one_connection: DatabaseConfig, locker: psycopg.Connection[Any]
) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        org = await make_org(arepos)
        made: list[Any] = []

        async def work() -> None:
            async with tm.transaction():
                made.append(await make_app(arepos, org.id))
                await arepos.organizations.update(renamed(org, "Cancelled"))  # waits

        async with row_locked(locker, org):
            task = asyncio.create_task(work())
            await await_until_blocked(one_connection)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert tm.current() is None
        await assert_server_idle(one_connection)
        assert await arepos.applications.get_by_id(org.id, made[0].id) is None
        assert await arepos.organizations.get_by_id(org.id) == org
        async with tm.transaction():  # the connection takes a new transaction
            app = await make_app(arepos, org.id)
        assert await arepos.applications.get_by_id(org.id, app.id) == app


async def test_a_timeout_around_a_pinned_block_gives_the_connection_back(
    one_connection: DatabaseConfig, locker: psycopg.Connection[Any]
) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        org = await make_org(arepos)

        async def handler() -> None:
            async with tm.pinned():
                await arepos.organizations.get_by_id(org.id)
                await arepos.organizations.update(renamed(org, "Too late"))  # waits

        async with row_locked(locker, org):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(handler(), timeout=0.3)
        await assert_server_idle(one_connection)
        assert await arepos.organizations.get_by_id(org.id) == org


async def test_a_cancelled_request_gives_its_connection_back_and_rolls_back(
    one_connection: DatabaseConfig, locker: psycopg.Connection[Any]
) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        for transaction in (False, True):

            async def handler(transaction: bool = transaction) -> None:
                async with afactory.request(transaction=transaction) as repos:
                    await make_app(repos, org.id)
                    await repos.organizations.update(renamed(org, "Too late"))  # waits

            async with row_locked(locker, org):
                task = asyncio.create_task(handler())
                await await_until_blocked(one_connection)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            await assert_server_idle(one_connection)
            assert afactory.transaction_manager().bound_connection() is None
            # the pool's one connection came back: the next call gets it
            assert await arepos.organizations.get_by_id(org.id) == org
        apps = await arepos.applications.get_by_org_id(org.id)
        assert len(apps) == 1  # the autocommitted call stayed, the transaction's went


async def test_a_call_cancelled_while_waiting_for_the_pool_leaves_the_pool_working(
    one_connection: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        database = afactory.database
        org = await make_org(arepos)
        holding, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:  # keeps the only connection in a transaction
            async with tm.transaction():
                holding.set()
                await release.wait()

        held = asyncio.create_task(holder())
        await asyncio.wait_for(holding.wait(), DEADLINE_S)
        waiting = asyncio.create_task(arepos.organizations.get_by_id(org.id))
        async with asyncio.timeout(DEADLINE_S):
            while database.pool_stats().waiting == 0:
                await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()
        await held
        assert await arepos.organizations.get_by_id(org.id) == org
        stats = database.pool_stats()
        assert (stats.size, stats.available, stats.waiting) == (1, 1, 0)
