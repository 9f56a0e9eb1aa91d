"""A line in front of an AsyncConnectionPool: callers beyond its size wait here (async only).

With more callers than connections, psycopg_pool queues each caller that finds no
connection free as a ``WaitingClient``: an ``asyncio.Condition`` waited on with
``asyncio.wait_for``, which on Python 3.11 runs the wait as a task of its own,
and a second Condition round when the connection is handed over. An async
gateway keeps more requests in flight than it has connections (32 on 10 in
``make bench``), so most of its checkouts took that path, at a client CPU cost
comparable to a round trip's. Behind the gate at most ``max_size`` callers are
inside ``getconn`` at once; the others wait on a semaphore (a future each, a
timer only for those that wait) and reach ``getconn`` when a connection has just
been given back. The pool itself is unchanged: every checkout still goes through
its ``getconn`` and ``putconn`` (its checks, growth, lifetimes, statistics).

The sync pool's waiting is a ``threading.Condition`` with no such cost, and the
sync ``Database`` has no gate.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout


class PoolGate:
    """``getconn`` and ``putconn`` of one pool, at most ``size`` connections out through it.

    A slot is held exactly while a connection taken with :meth:`getconn` is out:
    :meth:`putconn` gives it back, as does a ``getconn`` that fails."""

    __slots__ = ("_pool", "_slots", "waiting")

    def __init__(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]], size: int) -> None:
        self._pool = pool
        self._slots = asyncio.Semaphore(size)
        self.waiting = 0
        """Callers waiting for a slot (not yet counted in the pool's ``requests_waiting``)."""

    async def getconn(self, timeout: float) -> psycopg.AsyncConnection[Any]:
        """A connection from the pool within ``timeout`` seconds, the wait for a slot
        included; psycopg_pool's own errors (``PoolTimeout``, ``PoolClosed``, ...)."""
        slots = self._slots
        if slots.locked():
            started = time.monotonic()
            self.waiting += 1
            try:
                async with asyncio.timeout(timeout):
                    await slots.acquire()
            except TimeoutError:
                raise PoolTimeout(f"couldn't get a connection after {timeout:.2f} sec") from None
            finally:
                self.waiting -= 1
            timeout = max(0.0, timeout - (time.monotonic() - started))
        else:
            await slots.acquire()  # a slot is free: returns without yielding
        try:
            return await self._pool.getconn(timeout)
        except BaseException:
            slots.release()
            raise

    async def putconn(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Give ``conn`` back to the pool, and its slot to the next caller in line."""
        # the slot first, so that nothing can keep it; the woken caller runs only
        # at the loop's next turn, after the connection is back in the pool
        self._slots.release()
        await self._pool.putconn(conn)
