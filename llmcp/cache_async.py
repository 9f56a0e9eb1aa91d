"""The admission cache: what a request path reads on every request, kept in the process.

Optional (``DatabaseConfig.admission_cache_size``, 0 by default: off). When on,
``applications.get_by_api_key_hash``, ``users.get_by_cognito_sub`` and
``policies.get_applicable_policies`` (so ``resolve``) answer from memory when
they can, outside a transaction only (a transaction reads the database: it may
have written, or hold an older snapshot). Answers found are kept (not "not
found": an unknown key costs a query every time, and fills nothing), at most
``admission_cache_size`` of them, the least recently used going first.

Kept correct by ``LISTEN llmcp_cache`` on a connection of its own to the server
itself (``DatabaseConfig.listen_url``, else ``url``: a transaction-mode pooler cannot
carry LISTEN): the triggers of dbmate/migrations/*_notify_admission_cache.sql
name, at each commit, what changed; the listener drops it. While that
connection is down nothing is served or kept, and everything is dropped; once
it is back (re-subscribed, with backoff) the cache fills again. What this
guarantees, and what the reader accepts by turning it on: an answer is never
older than a notice that has arrived (see :mod:`llmcp.cache_base`), but a
change is seen only when its notice arrives, a moment after its commit
(README, "Admission cache", has the measured delay), even by the process that
made it.
"""

from __future__ import annotations

import asyncio  # sync: import threading
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Self, TypeVar, cast

import psycopg

from llmcp.cache_base import (
    MISS,
    CacheState,
    CacheStats,
    Key,
    MaybeApplication,
    MaybeUser,
    RowKey,
    application_key,
    logger,
    policies_key,
    user_key,
)
from llmcp.concurrency import AsyncCondition, spawn_async, stop_async, wait_for_async
from llmcp.database_async import AsyncDatabase
from llmcp.errors import ValidationError
from llmcp.generated.models import Policy

T = TypeVar("T")
Worker = asyncio.Task[None]  # sync: Worker = threading.Thread

POLL = 0.25
"""The listener looks up from its socket this often (the sync one's way to stop)."""
HEARTBEAT = 5.0
"""After this long without a word from the server, the listener pings it: a silently
dead connection is then found within about this long (and everything dropped)."""
MIN_BACKOFF, MAX_BACKOFF = 0.05, 2.0


class AsyncAdmissionCache:
    """The entries of :class:`~llmcp.cache_base.CacheState` and the listener that
    keeps them; ``start()`` makes one, ``close()`` stops it."""

    def __init__(
        self,
        listen_url: str,
        *,
        max_entries: int,
        connect_timeout: float = 10.0,
        application_name: str = "llmcp",
    ) -> None:
        if max_entries < 1:
            raise ValidationError("max_entries: must be positive")
        self._url = listen_url
        self._state = CacheState(max_entries)
        self._connect_kwargs: dict[str, Any] = {
            "autocommit": True,
            "prepare_threshold": None,
            "connect_timeout": max(1, round(connect_timeout)),
            "application_name": f"{application_name}-cache",
        }
        self._closing = False
        self._attempted = False  # the first connection attempt ended (up or not)
        self._condition = AsyncCondition()
        self._worker: Worker | None = None

    @classmethod
    async def start(cls, database: AsyncDatabase) -> Self:
        """The cache of ``database.config`` (its size and listening URL), listening:
        returns once the first subscription succeeded or failed (then it keeps trying,
        and serves nothing meanwhile)."""
        config = database.config
        url = config.listen_url
        if url is None:
            if database.pooled:
                raise ValidationError(
                    "listen_url: behind a transaction pooler LISTEN does not reach the "
                    "server; set listen_url (LLMCP_LISTEN_URL) to a direct URL"
                )
            url = config.url
        cache = cls(
            url,
            max_entries=config.admission_cache_size,
            connect_timeout=config.connect_timeout,
            application_name=config.application_name,
        )
        cache._worker = spawn_async(cache._listen, "llmcp-admission-cache")
        async with cache._condition:
            await wait_for_async(
                cache._condition, lambda: cache._attempted, config.connect_timeout + 1.0
            )
        return cache

    @property
    def state(self) -> CacheState:
        """The entries and counters (for tests and benchmarks)."""
        return self._state

    def stats(self) -> CacheStats:
        return self._state.stats()

    async def wait_listening(self, timeout: float) -> bool:
        """Wait until the listener is subscribed; False after ``timeout`` seconds."""
        async with self._condition:
            return await wait_for_async(self._condition, lambda: self._state.listening, timeout)

    async def application(
        self, key_hash: str, load: Callable[[], Awaitable[MaybeApplication]]
    ) -> MaybeApplication:
        """The application of ``key_hash``: cached, or ``load()``-ed and kept."""
        return await self._through(
            application_key(key_hash), load, lambda app: ("a", app.org_id, app.id)
        )

    async def user(self, cognito_sub: str, load: Callable[[], Awaitable[MaybeUser]]) -> MaybeUser:
        """The user of ``cognito_sub``: cached, or ``load()``-ed and kept."""
        return await self._through(
            user_key(cognito_sub), load, lambda user: ("u", user.org_id, user.id)
        )

    async def policies(
        self,
        org_id: uuid.UUID,
        app_id: uuid.UUID,
        user_id: uuid.UUID | None,
        load: Callable[[], Awaitable[list[Policy]]],
    ) -> list[Policy]:
        """The applicable policies of (org, app, user): cached, or ``load()``-ed and kept
        (a new list each time: the caller may change it)."""
        key = policies_key(org_id, app_id, user_id)
        found = self._state.get(key)
        if found is not MISS:
            return list(cast(tuple[Policy, ...], found))
        ticket = self._state.ticket()
        policies = await load()
        self._state.store(ticket, key, tuple(policies), ("p", org_id, None))
        return policies

    async def _through(
        self, key: Key, load: Callable[[], Awaitable[T]], row: Callable[[Any], RowKey]
    ) -> T:
        found = self._state.get(key)
        if found is not MISS:
            return cast(T, found)
        ticket = self._state.ticket()
        value = await load()
        if value is not None:
            self._state.store(ticket, key, value, row(value))
        return value

    async def _listen(self) -> None:
        """Subscribe, apply notices, and on any loss drop everything and subscribe again."""
        backoff = MIN_BACKOFF
        while not self._closing:
            try:
                conn = await psycopg.AsyncConnection.connect(self._url, **self._connect_kwargs)
            except psycopg.Error as exc:
                logger.warning("admission cache: cannot connect its listener (%s); retrying",
                               type(exc).__name__)  # fmt: skip
            else:
                subscriptions = self._state.subscriptions
                try:
                    await self._serve(conn)
                except Exception as exc:  # lost, or anything else: never serve unnoticed
                    logger.warning("admission cache: the listener's connection failed (%s); "
                                   "everything cached is dropped until it is back",
                                   type(exc).__name__)  # fmt: skip
                finally:
                    self._state.unsubscribed()
                    await conn.close()
                if self._state.subscriptions > subscriptions:
                    backoff = MIN_BACKOFF  # it was up: try again soon
            await self._attempt_ended()
            async with self._condition:  # close() wakes it
                delay = backoff * (0.5 + random.random())
                await wait_for_async(self._condition, lambda: self._closing, delay)
            backoff = min(MAX_BACKOFF, backoff * 2)

    async def _serve(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute("LISTEN llmcp_cache")  # cache_base.CHANNEL
        self._state.subscribed()
        await self._attempt_ended()
        heard = time.monotonic()
        while not self._closing:
            async for notice in conn.notifies(timeout=POLL):
                self._state.apply(notice.payload)
                heard = time.monotonic()
            if time.monotonic() - heard > HEARTBEAT:
                await conn.execute("SELECT 1")
                heard = time.monotonic()

    async def _attempt_ended(self) -> None:
        async with self._condition:
            self._attempted = True
            self._condition.notify_all()

    async def close(self) -> None:
        """Stop listening; nothing is served from then on (idempotent)."""
        async with self._condition:
            self._closing = True
            self._condition.notify_all()
        if self._worker is not None:
            await stop_async(self._worker)
            self._worker = None
        self._state.unsubscribed()
