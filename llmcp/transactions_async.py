"""Transactions propagated through a context variable (the Go layer's ``ctx``).

Inside ``async with manager.transaction():`` every repository call of that
manager runs on the transaction's connection; the block commits when it ends
normally and rolls back when it raises. A nested block is a savepoint: its
failure rolls back only itself. ``begin()`` hands out a transaction to commit
or roll back by hand. Outside any transaction each call takes a pooled
connection of its own (autocommit), unless a ``pinned()`` block holds one for
all the calls in it. ``connection()`` hands out the same connection to queries
of one's own (a service's generated queries), so they join those transactions.
"""

from __future__ import annotations

import asyncio  # sync: import time
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import psycopg

from llmcp import pipelined, routing
from llmcp.database_async import AsyncDatabase
from llmcp.error_map import map_error
from llmcp.errors import (
    LlmcpError,
    TransactionError,
    ValidationError,
)
from llmcp.transactions_base import (
    IsolationLevel,
    commit_error,
    refuse_uncommittable,
    transaction_modes,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Active:
    """One link of the context's chain: a connection a manager's calls run on."""

    manager: AsyncTransactionManager
    connection: psycopg.AsyncConnection[Any]
    transaction: AsyncTransaction | None  # None: a pinned() block, no transaction open
    outer: _Active | None = None  # links of other managers, and outer blocks


def _without(active: _Active | None, link: _Active) -> _Active | None:
    """The chain ``active`` without ``link`` (which may sit anywhere in it; the links
    in front of it are rebuilt, so they are matched by what they hold)."""
    if active is None:
        return None
    if (active.manager, active.connection, active.transaction) == (
        link.manager, link.connection, link.transaction
    ):  # fmt: skip
        return active.outer
    return _Active(
        active.manager, active.connection, active.transaction, _without(active.outer, link)
    )


_current: ContextVar[_Active | None] = ContextVar("llmcp_async_transaction", default=None)


class AsyncTransaction:
    """An open transaction. From ``begin()``: finish it with ``commit()`` or ``rollback()``."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection
        self._finish: Callable[[bool], Awaitable[None]] | None = None

    async def commit(self) -> None:
        """Commit a transaction from ``begin()`` and release its connection.

        Raises ``TransactionError`` if a statement failed in it, and
        ``DatabaseUnavailableError`` if its connection was lost (nothing was
        committed), or ``CommitOutcomeUnknownError`` if it was lost during COMMIT.
        """
        await self._end(commit=True)

    async def rollback(self) -> None:
        """Roll back a transaction from ``begin()`` and release its connection."""
        await self._end(commit=False)

    async def _end(self, *, commit: bool) -> None:
        if self._finish is None:
            raise TransactionError(
                "only a transaction from begin() is committed or rolled back by hand"
            )
        finish, self._finish = self._finish, None
        await finish(commit)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._finish is not None:
            await self._end(commit=exc is None)


class _Pinned:
    """``pinned()``: a plain class rather than a generator context manager, since a
    request takes one and it should cost next to nothing beyond the checkout."""

    __slots__ = ("_link", "_manager")

    def __init__(self, manager: AsyncTransactionManager) -> None:
        self._manager = manager
        self._link: _Active | None = None

    async def __aenter__(self) -> psycopg.AsyncConnection[Any]:
        manager = self._manager
        outer = manager._link()
        if outer is not None:  # inside a transaction or a pinned block: that connection
            return outer.connection
        conn = await manager.database.acquire()
        self._link = link = _Active(manager, conn, None, _current.get())
        _current.set(link)
        return conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        manager, conn = link.manager, link.connection
        try:
            left_open = manager.current()  # from begin(), never ended
            try:
                if left_open is not None:
                    with contextlib.suppress(LlmcpError):
                        await left_open.rollback()
            finally:
                active = _current.get()
                _current.set(link.outer if active is link else _without(active, link))
        finally:
            await manager.database.release(conn)
        if left_open is not None:
            raise TransactionError(
                "pinned(): a transaction from begin() was still open when the block "
                "ended; it was rolled back"
            )
        if isinstance(exc, psycopg.Error):  # a service's own query on the pinned connection
            raise map_error(exc, operation="pool.connection") from exc


class AsyncTransactionManager:
    """Transactions on one database, visible to every repository of the same factory."""

    def __init__(self, database: AsyncDatabase) -> None:
        self.database = database

    def _link(self) -> _Active | None:
        """This manager's innermost link in the context: a transaction or a pinned block."""
        active = _current.get()
        while active is not None and active.manager is not self:
            active = active.outer
        return active

    def current(self) -> AsyncTransaction | None:
        """The transaction active in this context, if any."""
        link = self._link()
        return None if link is None else link.transaction

    def bound_connection(self) -> psycopg.AsyncConnection[Any] | None:
        """The connection this context's calls run on (a transaction's or a pinned one), if any."""
        link = self._link()
        return None if link is None else link.connection

    @asynccontextmanager
    async def connection(
        self, *, operation: str = "connection"
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The connection this context's calls run on, for queries of your own (a
        service's generated queries, say), so that they share llmcp's transactions.

        Inside ``transaction()`` or a transaction from ``begin()`` it is the
        transaction's connection; inside ``pinned()``, the pinned one; elsewhere a
        pooled connection (autocommit) held for the block, not bound to the
        context (repository calls in the block take their own: wrap both in
        ``transaction()`` or ``pinned()`` to share one). A psycopg error raised in
        the block comes out as the llmcp error ``map_error`` makes of it, its
        message led by ``operation``, as the repositories' errors are.
        """
        routing.note_write()  # llmcp cannot tell what the block runs: count it a write
        async with self._connection() as conn:
            try:
                yield conn
            except psycopg.Error as exc:
                raise map_error(exc, operation=operation) from exc

    def stale_ok(self, enabled: bool = True) -> contextlib.AbstractContextManager[None]:
        """Let the block's stale-tolerant reads (README, Replicas and failover: the
        paged and catalog lists, the metrics) go to a replica of
        ``DatabaseConfig.replica_urls``; a plain ``with`` (no I/O), in both variants.

        Still on the primary: every other call, every call inside a transaction,
        and every read after this context wrote through llmcp (read-your-writes,
        see llmcp.routing). A replica that is down or busy is skipped for the
        primary. ``enabled=False`` turns it off for an inner block.
        """
        return routing.stale_ok(enabled)

    def forget_writes(self) -> None:
        """Forget that this context wrote, so that its stale-tolerant reads may go to a
        replica again: for a thread that serves request after request in one context
        (a sync worker pool), at the start of each request. A task or a
        ``contextvars.copy_context()`` starts without the mark anyway."""
        routing.forget_writes()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The context's connection (transaction or pinned block), or a pooled one;
        errors unmapped, for the callers here that map them their own way."""
        link = self._link()
        if link is not None:
            yield link.connection
            return
        async with self.database.connection() as conn:
            yield conn

    def pinned(self) -> _Pinned:
        """Run every call of the block on one pooled connection, taken once.

        Outside a transaction each repository call checks a connection out of the
        pool and back in; a request handler that makes several calls saves that
        per call by pinning one (:meth:`request` does, and more). Calls still
        autocommit one by one; ``transaction()`` inside the block runs on the
        pinned connection. Inside a transaction or another pinned block this
        changes nothing. A transaction from ``begin()`` must end before the block
        does (else it is rolled back and ``TransactionError`` raised). Code that
        runs in a copy of this context (a task started in the block, say) shares
        the connection; psycopg runs the statements one at a time.
        """
        return _Pinned(self)

    @asynccontextmanager
    async def request(
        self,
        *,
        transaction: bool = False,
        isolation_level: IsolationLevel | None = None,
        read_only: bool = False,
    ) -> AsyncIterator[None]:
        """The scope of one request: every call in it on one pooled connection.

        The connection is taken when the block starts and given back when it
        ends, whatever ends it (an exception, a cancelled task); each call is still
        one round trip. By default calls autocommit one by one, as in
        :meth:`pinned`; ``transaction=True`` (with ``isolation_level`` and
        ``read_only``) runs the whole request in one transaction instead, committed
        when the block ends normally. A request starts with a clean
        read-your-writes mark (``forget_writes``), so a worker thread that serves
        request after request in one context needs nothing else. Inside a
        transaction or a pinned block it joins that one (``transaction=True`` is
        then a savepoint) and keeps the mark.
        """
        outermost = self._link() is None
        async with self.pinned():
            if outermost:  # a block nested in another keeps its context's mark
                self.forget_writes()
            if not transaction:
                yield
                return
            async with self.transaction(isolation_level=isolation_level, read_only=read_only):
                yield

    @asynccontextmanager
    async def transaction(
        self, *, isolation_level: IsolationLevel | None = None, read_only: bool = False
    ) -> AsyncIterator[AsyncTransaction]:
        """Commit on success, roll back on exception; nested, a savepoint."""
        active = self.current()
        if active is not None:
            if isolation_level is not None or read_only:
                raise ValidationError(
                    "isolation_level and read_only apply to the outermost transaction"
                )
            try:
                async with active.connection.transaction():
                    yield active
            except psycopg.Error as exc:
                raise map_error(exc, operation="transaction.savepoint") from exc
            return
        async with self._connection() as conn:  # a pinned one, or one from the pool
            committing = False
            try:
                async with conn.transaction():
                    await self._apply_options(conn, isolation_level, read_only)
                    transaction = AsyncTransaction(conn)
                    link = _Active(self, conn, transaction, _current.get())
                    _current.set(link)
                    try:
                        yield transaction
                        refuse_uncommittable(conn)
                        committing = True  # leaving the block sends COMMIT
                    finally:
                        _current.set(_without(_current.get(), link))
            except psycopg.Error as exc:
                if committing:
                    raise commit_error(exc, operation="transaction.commit") from exc
                raise map_error(exc, operation="transaction") from exc

    async def in_transaction(
        self,
        fn: Callable[[AsyncTransaction], Awaitable[T]],
        *,
        isolation_level: IsolationLevel | None = None,
        read_only: bool = False,
    ) -> T:
        """Run ``fn(transaction)``: commit when it returns, roll back (and re-raise) when it raises."""
        async with self.transaction(isolation_level=isolation_level, read_only=read_only) as tx:
            return await fn(tx)

    async def begin(
        self, *, isolation_level: IsolationLevel | None = None, read_only: bool = False
    ) -> AsyncTransaction:
        """Start a transaction that this context uses until ``commit()`` or ``rollback()``."""
        if self.current() is not None:
            raise TransactionError(
                "a transaction is already active here: nest transaction() instead"
            )
        connections = self._connection()  # a pinned one, or one from the pool
        conn = await connections.__aenter__()
        block = conn.transaction()
        try:
            await block.__aenter__()
            await self._apply_options(conn, isolation_level, read_only)
        except BaseException as exc:
            await connections.__aexit__(type(exc), exc, exc.__traceback__)
            if isinstance(exc, psycopg.Error):
                raise map_error(exc, operation="transaction.begin") from exc
            raise
        transaction = AsyncTransaction(conn)
        link = _Active(self, conn, transaction, _current.get())
        _current.set(link)

        async def finish(commit: bool) -> None:
            _current.set(_without(_current.get(), link))
            try:
                if commit:
                    refuse_uncommittable(conn)
                    await block.__aexit__(None, None, None)
                else:
                    await block.__aexit__(psycopg.Rollback, psycopg.Rollback(), None)
            except LlmcpError as exc:  # aborted or lost: roll back, give the connection back
                await block.__aexit__(type(exc), exc, exc.__traceback__)
                await connections.__aexit__(None, None, None)
                raise
            except psycopg.Error as exc:
                if commit:
                    error = commit_error(exc, operation="transaction.commit")
                else:
                    error = map_error(exc, operation="transaction.rollback")
                with contextlib.suppress(LlmcpError):  # its own mapping of exc: ours says more
                    await connections.__aexit__(type(exc), exc, exc.__traceback__)
                raise error from exc
            await connections.__aexit__(None, None, None)

        transaction._finish = finish
        return transaction

    async def _apply_options(
        self,
        conn: psycopg.AsyncConnection[Any],
        isolation_level: IsolationLevel | None,
        read_only: bool,
    ) -> None:
        """SET TRANSACTION (SET LOCAL synchronous_commit, and behind a transaction
        pooler the connection's settings) right after BEGIN: nothing leaks to the
        pooled connection."""
        statement = transaction_modes(
            isolation_level,
            read_only,
            self.database.config.synchronous_commit,
            pipelined.call_settings(conn),
        )
        if statement is not None:
            await conn.execute(statement)

    async def retry(
        self,
        fn: Callable[[AsyncTransaction], Awaitable[T]],
        *,
        attempts: int = 5,
        isolation_level: IsolationLevel | None = None,
        read_only: bool = False,
        base_delay: float = 0.01,
        max_delay: float = 0.5,
    ) -> T:
        """``in_transaction(fn)``, again after a serialization failure or a deadlock.

        Waits with jittered exponential backoff between attempts; other errors,
        and the last attempt's, are raised. Inside a transaction it does not retry:
        only a whole transaction can be.
        """
        for attempt in range(1, attempts + 1):
            try:
                return await self.in_transaction(
                    fn, isolation_level=isolation_level, read_only=read_only
                )
            except TransactionError as exc:
                if not exc.retryable or attempt == attempts or self.current() is not None:
                    raise
                delay = min(max_delay, base_delay * 2 ** (attempt - 1))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")  # pragma: no cover
