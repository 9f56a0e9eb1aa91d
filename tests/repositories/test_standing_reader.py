"""The socket reader that stands for a whole checkout (llmcp.waiting): async only, not
derived from a twin.

A connection of llmcp's pool keeps its socket's reader registered on the event
loop from one call to the next, across checkouts, and must never leave it behind
a closed socket: not when the pool closes the connection (its lifetime over, the
pool itself closed), not when psycopg's own statements take the socket over, not
when the server drops the connection, in a call or while it sits in the pool. A
registration left for a closed socket would break the next connection given the
same descriptor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import selectors
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import DatabaseUnavailableError
from llmcp.factory_async import AsyncRepositoryFactory
from tests.repositories.helpers_async import make_org, terminate_backends
from tests.repositories.test_cancellation import renamed, row_locked
from tests.repositories.test_concurrency import await_until_blocked


def _watched(fileno: int) -> bool:
    """Whether the running loop has a reader on ``fileno`` (its selector, read directly)."""
    selector: selectors.BaseSelector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
    try:
        key = selector.get_key(fileno)
    except KeyError:
        return False
    return key.data[0] is not None


async def _until(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.005)


async def test_the_reader_stands_between_calls_and_goes_with_the_checkout(
    one_connection: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        org = await make_org(arepos)
        async with tm.pinned() as conn:
            fileno = conn.pgconn.socket
            assert _watched(fileno)  # make_org's call on this one connection left it standing
            for _ in range(3):
                assert await arepos.organizations.get_by_id(org.id) == org
                assert _watched(fileno)
            # psycopg's own statement takes the socket's reader over, then removes it
            await conn.execute("SELECT 1")
            assert not _watched(fileno)
            assert await arepos.organizations.get_by_id(org.id) == org  # watched again
            assert _watched(fileno)
        assert _watched(fileno)  # back in the pool, idle: it stands until the socket closes
        # a checkout per call: the same connection, still watched
        assert await arepos.organizations.get_by_id(org.id) == org
        assert _watched(fileno)
    assert not _watched(fileno)  # the factory closed its pool: gone with the connection


async def _a_new_connection_works(config: DatabaseConfig) -> None:
    """A new socket, most likely given a closed one's number: nothing stale is in its way."""
    async with await psycopg.AsyncConnection.connect(config.url) as other:
        assert await (await other.execute("SELECT 1")).fetchone() == (1,)


async def test_a_connection_the_pool_closes_leaves_no_reader_behind(
    one_connection: DatabaseConfig,
) -> None:
    """psycopg_pool closes a connection whose lifetime is over when it comes back."""
    config = dataclasses.replace(one_connection, max_lifetime=0.5)
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        org = await make_org(arepos)
        async with tm.pinned() as conn:
            fileno, first = conn.pgconn.socket, conn
            await arepos.organizations.get_by_id(org.id)
            await asyncio.sleep(0.6)  # its lifetime ends while it is out
        assert first.closed and not _watched(fileno)  # closed on its way back
        await _a_new_connection_works(config)
        assert await arepos.organizations.get_by_id(org.id) == org  # the replacement


@pytest.mark.direct_connection("terminates the pooled connection's backend by its pid")
async def test_a_connection_lost_in_the_pool_leaves_no_reader_behind(
    one_connection: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        org = await make_org(arepos)
        async with tm.pinned() as conn:
            fileno, pid = conn.pgconn.socket, conn.info.backend_pid
            await arepos.organizations.get_by_id(org.id)
        assert _watched(fileno)
        terminate_backends(one_connection.url, pid)
        # the server's goodbye, read with no call waiting: the reader stops by itself
        await _until(lambda: not _watched(fileno))
        # the checkout finds the connection dead and the pool replaces it
        assert await arepos.organizations.get_by_id(org.id) == org
        await _a_new_connection_works(one_connection)


@pytest.mark.direct_connection("terminates the pinned connection's backend by its pid")
async def test_a_connection_lost_between_calls_leaves_no_reader_behind(
    one_connection: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        org = await make_org(arepos)
        with pytest.raises(DatabaseUnavailableError):
            async with tm.pinned() as conn:
                fileno = conn.pgconn.socket
                await arepos.organizations.get_by_id(org.id)
                terminate_backends(one_connection.url, conn.info.backend_pid)
                # the server's goodbye makes the socket readable with no call waiting:
                # the reader stops by itself (it would otherwise wake the loop forever)
                await _until(lambda: not _watched(fileno))
                await arepos.organizations.get_by_id(org.id)  # lost
        assert not _watched(fileno)
        # new connections, the pool's replacement first, most likely on the same
        # descriptor number: nothing stale is in their way
        await _a_new_connection_works(one_connection)
        assert await arepos.organizations.get_by_id(org.id) == org


@pytest.mark.direct_connection("terminates the pinned connection's backend by its pid")
async def test_a_connection_lost_during_a_call_leaves_no_reader_behind(
    one_connection: DatabaseConfig, locker: psycopg.Connection[Any]
) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        org = await make_org(arepos)
        async with row_locked(locker, org), tm.pinned() as conn:
            fileno = conn.pgconn.socket
            await arepos.organizations.get_by_id(org.id)
            update = asyncio.create_task(arepos.organizations.update(renamed(org, "Lost")))
            await await_until_blocked(one_connection)  # waiting on the row lock
            assert _watched(fileno)
            terminate_backends(one_connection.url, conn.info.backend_pid)
            with pytest.raises(DatabaseUnavailableError):
                await update
            assert not _watched(fileno)
            # still inside the block: a new socket, most likely given the lost one's
            # number, is registered by psycopg as it connects
            await _a_new_connection_works(one_connection)
        assert not _watched(fileno)
        assert await arepos.organizations.get_by_id(org.id) == org
