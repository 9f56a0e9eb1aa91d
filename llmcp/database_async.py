"""AsyncDatabase: the connection pool, its health check, migrations and shutdown."""

from __future__ import annotations

import asyncio  # async-only
import logging
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg_pool import AsyncConnectionPool

from llmcp import conninfo, pipelined, pooled
from llmcp.config import DatabaseConfig
from llmcp.database_base import (
    REPLICA_HEALTH,
    Health,
    PoolStats,
    ReplicaHealth,
    ReplicaTurns,
    pool_stats,
    server_spoke,
)
from llmcp.error_map import map_error
from llmcp.errors import DatabaseUnavailableError, LlmcpError
from llmcp.migrate import Migrator, refuse_pooler
from llmcp.pool_gate import PoolGate  # async-only
from llmcp.waiting import StandingConnection, forget, hold, let_go  # async-only

logger = logging.getLogger("llmcp.database")

RECONNECT_WINDOW = 1.0
"""How long a pool slot keeps trying to reconnect (psycopg_pool's ``reconnect_timeout``)
before it gives up. Its backoff doubles the wait after each failure (1, 2, 4, 8, ... s),
so a slot that tried for minutes would next try as long after the server's return
(a promotion) as the outage had lasted. Given up, the slot leaves the pool, and the
next checkout grows it again at once (see ``_degraded``): attempts stay about a
second apart however long the server is away."""

REPLICA_WAIT = 0.1
"""How long a stale-tolerant read waits for a replica's connection before it goes to
the primary instead (a replica that is down, or all its connections busy)."""


class AsyncDatabase:
    """A pool of connections to one database; ``async with`` opens and closes it."""

    def __init__(self, config: DatabaseConfig) -> None:
        conninfo.install_log_filter()  # psycopg_pool's warnings may quote the URL
        self.config = config
        self._closed = False
        self._returned_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        # connections made on a caller's path while pool slots wait to reconnect
        self._direct: weakref.WeakSet[Any] = weakref.WeakSet()
        self._out = 0  # pooled connections handed out and not given back (about)
        self._asking = 0  # callers inside the pool's getconn (about)
        # behind a transaction pooler (said by config.pooler, or detected by open())
        self._pooled = config.pooler == "transaction"
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            config.url,
            min_size=config.min_size,
            max_size=config.max_size,
            max_lifetime=config.max_lifetime,
            max_idle=config.max_idle,
            timeout=config.acquire_timeout,
            kwargs=config.connection_kwargs(),
            configure=self._configure,
            name=config.application_name,
            reconnect_timeout=RECONNECT_WINDOW,
            open=False,
            connection_class=StandingConnection,  # async-only
        )
        # callers beyond max_size wait in this line, where waiting costs less  # async-only
        self._gate = PoolGate(self._pool, config.max_size)  # async-only
        # one pool per replica, for stale-tolerant reads (llmcp.routing); opened
        # without waiting: a replica that is down must not keep the service down
        self._replica_pools: list[AsyncConnectionPool[psycopg.AsyncConnection[Any]]] = [
            AsyncConnectionPool(
                replica_url,
                min_size=config.min_size,
                max_size=config.max_size,
                max_lifetime=config.max_lifetime,
                max_idle=config.max_idle,
                timeout=config.acquire_timeout,
                kwargs=config.connection_kwargs(),
                configure=self._configure,
                name=f"{config.application_name}-replica-{index}",
                reconnect_timeout=RECONNECT_WINDOW,
                open=False,
            )
            for index, replica_url in enumerate(config.replica_urls)
        ]
        self._turns = ReplicaTurns(len(self._replica_pools), config.replica_retry_after)

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Apply llmcp's per-connection settings (``DatabaseConfig.connection_settings``)
        with SET, as a transaction-mode pooler allows, not as startup options; behind
        one (:mod:`llmcp.pooled`), every call carries them instead, and statements
        are named only where the pooler keeps them."""
        if not self._pooled:
            await conn.execute(self.config.session_settings())
            pipelined.own_statements(conn)
            return
        await conn.execute(pooled.tracked_settings(self.config.connection_settings()))
        pipelined.settings_in_every_call(conn, self.config.connection_settings())
        if self.config.pooler_prepared_statements:
            pipelined.own_statements(conn)

    @property
    def pooled(self) -> bool:
        """Whether the connections go through a transaction pooler (``config.pooler``, or
        detected when the pool opened): see :mod:`llmcp.pooled`."""
        return self._pooled

    async def _check_if_idle(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Check a connection before handing it out: a ping if it sat unused for a while,
        else a look at its socket.

        A connection used a moment ago mostly works; pinging it on every checkout
        would double the round trips of a point lookup. Its socket still tells
        whether the server has written to it since (see ``server_spoke``): then
        it gets the ping, and the pool replaces it if the ping fails.
        """
        returned = self._returned_at.get(conn)
        if (
            returned is None
            or time.monotonic() - returned > self.config.check_after_idle
            or server_spoke(conn)
        ):
            await AsyncConnectionPool.check_connection(conn)

    @classmethod
    async def connect(cls, config: DatabaseConfig) -> Self:
        """A database whose pool is open and has its first connections."""
        database = cls(config)
        await database.open()
        return database

    async def open(self) -> None:
        """Open the pool and wait for ``min_size`` connections (or fail clearly).

        One connection is made directly first: a failure then says why (wrong
        password, no such database, nothing listening, ...) within
        ``connect_timeout``, where the pool would retry until its timeout and
        say only that it is incomplete.
        """
        try:
            await self._probe()
            await self._pool.open(
                wait=self.config.min_size > 0, timeout=self.config.connect_timeout
            )
            for replica in self._replica_pools:
                await replica.open(wait=False)
        except BaseException as exc:
            await self._close_pools()
            if isinstance(exc, LlmcpError):
                raise
            if not isinstance(exc, Exception):
                raise  # CancelledError, KeyboardInterrupt
            reason = conninfo.redact(str(exc), self.config.url)
            raise DatabaseUnavailableError(f"cannot connect to the database: {reason}") from None

    async def _probe(self) -> None:
        url = self.config.url
        conninfo.parse(url)
        try:
            conn = await psycopg.AsyncConnection.connect(url, **self.config.connection_kwargs())
        except psycopg.Error as exc:
            # not chained: psycopg's message may quote the URL, password and all
            raise conninfo.connection_error(exc, url) from None
        try:
            if self.config.pooler is None:
                cursor = await conn.execute(pooled.SERVER_PID_QUERY)
                row = await cursor.fetchone()
                if pooled.behind_proxy(conn.info.backend_pid, row[0] if row else None):
                    self._pooled = True
                    logger.warning(pooled.DETECTED)
        finally:
            await conn.close()

    async def acquire(self) -> psycopg.AsyncConnection[Any]:
        """Take a pooled connection (autocommit); give it back with :meth:`release`.

        The repositories' hot path: cheaper than the ``connection()`` block. A
        connection found dead (see ``_check_if_idle``) is closed, so that the pool
        replaces it at once, and the next one is tried straight away: after a
        restart or a burst of terminated backends, however many pooled
        connections died, the call goes on as soon as the server accepts new
        ones (psycopg_pool's own check would wait 1, 2, 4, ... s after each dead
        one). ``acquire_timeout`` bounds it all.
        """
        deadline = time.monotonic() + self.config.acquire_timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            degraded = self._degraded()
            timeout = min(remaining, 0.1) if degraded else remaining
            self._asking += 1
            try:
                conn = await self._gate.getconn(timeout)  # sync: conn = self._pool.getconn(timeout)
            except Exception as exc:  # PoolTimeout, PoolClosed, connection failures
                self._asking -= 1
                # asked again after the wait: under load a connection on its way to
                # a waiter looks like a missing slot for a moment
                if degraded and remaining > 0.1 and not self._pool.closed and self._degraded():
                    direct = await self._connect_directly()
                    if direct is not None:
                        return direct
                    continue
                if degraded and remaining > 0.1 and not self._pool.closed:
                    continue  # busy, not degraded: wait for the pool
                raise map_error(exc, operation="pool.getconn") from exc
            except BaseException:
                self._asking -= 1
                raise
            self._asking -= 1
            self._out += 1
            try:
                await self._check_if_idle(conn)
            except Exception:
                self._out -= 1
                await conn.close()  # the pool discards a closed connection and makes another
                await self._gate.putconn(conn)  # sync: self._pool.putconn(conn)
                continue
            except BaseException:  # cancelled: give it back unchecked
                self._out -= 1
                await self._gate.putconn(conn)  # sync: self._pool.putconn(conn)
                raise
            hold(conn)  # async-only
            return conn

    def _degraded(self) -> bool:
        """Whether some pool slots hold no connection: they are being replaced, after
        a failure with psycopg_pool's backoff (1, 2, 4, ... s between attempts), or
        gave up. Then each checkout waits briefly and asks again (each asking grows
        the pool anew) or connects on its own.

        A connection the pool has just handed to a waiting caller is neither
        available nor out yet: callers of ours inside ``getconn`` that the pool no
        longer counts as waiting hold such connections (``_asking``). Without
        them, a busy pool (requests holding connections while others queue) would
        look degraded and make connections of its own."""
        stats = self._pool.get_stats()
        # slots that gave up reconnecting (RECONNECT_WINDOW) left the pool: below min_size
        slots = max(stats.get("pool_size", 0), self.config.min_size)
        waiting = stats.get("requests_waiting", 0)
        waiting += self._gate.waiting  # async-only
        in_transit = max(0, self._asking - waiting)
        return stats.get("pool_available", 0) == 0 and self._out + in_transit < slots

    async def _connect_directly(self) -> psycopg.AsyncConnection[Any] | None:
        """A connection of its own for one caller while the pool waits to reconnect
        (closed by ``release``); None if the server does not accept one yet."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.config.url, **self.config.connection_kwargs()
            )
            await self._configure(conn)
        except psycopg.Error:
            await asyncio.sleep(0.02)  # not yet: look again in a moment
            return None
        self._direct.add(conn)
        return conn

    async def release(self, conn: psycopg.AsyncConnection[Any]) -> None:
        # noted here, not in a pool `reset` callback: that would move every
        # return onto the pool's worker thread
        if conn in self._direct:
            forget(conn)  # async-only
            await conn.close()
            return
        self._out -= 1
        self._returned_at[conn] = time.monotonic()
        let_go(conn)  # async-only
        await self._gate.putconn(conn)  # sync: self._pool.putconn(conn)

    @property
    def has_replicas(self) -> bool:
        return bool(self._replica_pools)

    async def acquire_replica(self) -> tuple[int, psycopg.AsyncConnection[Any]] | None:
        """A connection to a replica for one stale-tolerant read, as ``(index, conn)``;
        give it back with :meth:`release_replica`. None when no replica can serve now
        (none configured, all resting after a failure, or none gave a connection
        within ``REPLICA_WAIT``): the read then goes to the primary."""
        for index in self._turns.order(time.monotonic()):
            replica = self._replica_pools[index]
            try:
                conn = await replica.getconn(REPLICA_WAIT)
            except Exception:  # PoolTimeout, PoolClosed
                stats = replica.get_stats()
                if stats.get("pool_size", 0) < self.config.max_size:  # not busy: unreachable
                    self._turns.failed(index, time.monotonic())
                continue
            try:
                await self._check_if_idle(conn)
            except Exception:
                await conn.close()  # the pool replaces it
                await replica.putconn(conn)
                self._turns.failed(index, time.monotonic())
                continue
            except BaseException:
                await replica.putconn(conn)
                raise
            return index, conn
        return None

    async def release_replica(self, index: int, conn: psycopg.AsyncConnection[Any]) -> None:
        self._returned_at[conn] = time.monotonic()
        await self._replica_pools[index].putconn(conn)

    def replica_failed(self, index: int) -> None:
        """A read on replica ``index`` failed (lost, shut down, a recovery conflict): its
        reads go to the primary for ``replica_retry_after`` seconds."""
        self._turns.failed(index, time.monotonic())

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection (autocommit) for the duration of the block."""
        conn = await self.acquire()
        try:
            yield conn
        except psycopg.Error as exc:
            raise map_error(exc, operation="pool.connection") from exc
        finally:
            await self.release(conn)

    async def health_check(self) -> Health:
        """Round trip to the server; raises DatabaseUnavailableError when it is away."""
        started = time.perf_counter()
        async with self.connection() as conn:
            try:
                cursor = await conn.execute("SELECT current_setting('server_version')")
                row = await cursor.fetchone()
            except psycopg.Error as exc:
                raise map_error(exc, operation="health_check") from exc
        latency_ms = (time.perf_counter() - started) * 1000
        replicas = tuple(
            [await self._replica_health(index) for index in range(len(self._replica_pools))]
        )
        return Health(
            str(row[0]) if row else "?", round(latency_ms, 3), self.pool_stats(), replicas
        )

    async def _replica_health(self, index: int) -> ReplicaHealth:
        """One replica's round trip and replay backlog; a failure marks it resting."""
        started = time.perf_counter()
        replica = self._replica_pools[index]
        try:
            # bounded: a replica that is away must not hold up the health of the service
            conn = await replica.getconn(min(self.config.connect_timeout, 1.0))
        except Exception:
            self.replica_failed(index)
            return ReplicaHealth(index, ok=False)
        try:
            cursor = await conn.execute(REPLICA_HEALTH)
            row = await cursor.fetchone()
        except psycopg.Error:
            self.replica_failed(index)
            return ReplicaHealth(index, ok=False)
        finally:
            await self.release_replica(index, conn)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        lag = None if row is None or row[1] is None else int(row[1])
        return ReplicaHealth(index, ok=True, latency_ms=latency_ms, replay_lag_bytes=lag)

    def pool_stats(self) -> PoolStats:
        return pool_stats(
            self._pool.get_stats(),
            min_size=self.config.min_size,
            max_size=self.config.max_size,
            in_line=self._gate.waiting,  # async-only
        )

    async def migrate(self) -> None:
        """Apply pending migrations with dbmate (:mod:`llmcp.migrate`): llmcp's, then
        the service's own folder if one is configured, each connection bounded by
        ``connect_timeout``, as the owner role of ``config.migration_url`` when it is
        set (else ``config.url``). That must reach the server itself: through a
        transaction-mode pooler (``config.pooler``, or detected) ``MigrationError``
        says to set ``migration_url`` (``LLMCP_MIGRATION_URL``)."""
        if self.config.migration_url is None and self._pooled:
            raise refuse_pooler("up")
        migrator = Migrator(self.config.migrating_url, connect_timeout=self.config.connect_timeout)
        await asyncio.to_thread(migrator.up)

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close the pool; calling it again does nothing."""
        if not self._closed:
            self._closed = True
            await self._close_pools()

    async def _close_pools(self) -> None:
        await self._pool.close()
        for replica in self._replica_pools:
            await replica.close()

    async def __aenter__(self) -> Self:
        if self._pool.closed and not self._closed:
            await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
