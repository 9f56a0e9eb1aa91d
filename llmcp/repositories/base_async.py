"""What every repository shares: the connection to use, error mapping, logging."""

from __future__ import annotations

import datetime
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import msgspec
import psycopg

from llmcp import routing, telemetry, tenancy
from llmcp import validation as check
from llmcp.cache_async import AsyncAdmissionCache
from llmcp.error_map import map_error, sqlstate_of
from llmcp.errors import ConflictError, LlmcpError, NotFoundError
from llmcp.paging import Page, decode_cursor, encode_cursor
from llmcp.transactions_async import AsyncTransactionManager
from llmcp.transactions_base import single_write_error

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("llmcp")


class Keyed(Protocol):
    """A row that keyset pages can follow: newest first, id as the tie-breaker."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def created_at(self) -> datetime.datetime: ...


R = TypeVar("R", bound=Keyed)


Query = Callable[Concatenate[psycopg.AsyncConnection[Any], P], Awaitable[T]]


class AsyncRepository:
    """Base of the repositories: runs generated queries on the right connection."""

    entity = "rows"  # the table, for messages and logs

    def __init__(self, transactions: AsyncTransactionManager, *, cursor_secret: bytes) -> None:
        self._transactions = transactions
        self._database = transactions.database
        self._cursor_secret = cursor_secret
        telemetry.instrument_repository(self)  # a span per query, if opentelemetry is installed

    async def _run(self, query: Query[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one generated query on the primary (see :meth:`_scoped`). A query that is
        not a read (llmcp.routing.is_read) marks the context written, and outside a
        transaction carries ``DatabaseConfig.synchronous_commit`` when it is set."""
        if not routing.is_read(query.__name__):
            routing.note_write()  # read-your-writes: this context's reads stay on the primary
            level = self._database.config.synchronous_commit
            if level is not None and self._transactions.current() is None:
                # a single write: its implicit transaction gets the level in its
                # pipeline (a transaction got it at BEGIN)
                with tenancy.committing(level):
                    return await self._scoped(query, *args, **kwargs)
        return await self._scoped(query, *args, **kwargs)

    async def _scoped(self, query: Query[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one generated query, scoped to its ``org_id`` parameter when it has one.

        Scoped, the statement carries that organization as its tenant (llmcp.tenancy):
        row-level security then shows it that organization's rows only, whatever
        its own predicates say.
        """
        org_id = kwargs.get("org_id")
        if org_id is None:
            return await self._execute(query, *args, **kwargs)
        with tenancy.scoped(tenancy.ORG_ID, str(org_id)):
            return await self._execute(query, *args, **kwargs)

    async def _read(self, query: Query[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a stale-tolerant read (a list, the metrics): on a replica when the caller
        allows it (``tx.stale_ok()``), no transaction is open and this context has not
        written; else, or when no replica can serve it, as :meth:`_run` on the primary."""
        if (
            self._database.has_replicas
            and routing.replica_allowed()
            and self._transactions.current() is None
        ):
            org_id = kwargs.get("org_id")
            with tenancy.scoped(tenancy.ORG_ID, str(org_id)) if org_id else nullcontext():
                done, result = await self._on_replica(query, *args, **kwargs)
            if done:
                return result  # type: ignore[return-value]
        return await self._run(query, *args, **kwargs)

    async def _on_replica(
        self, query: Query[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> tuple[bool, T | None]:
        """``(True, result)`` from a replica, or ``(False, None)`` when none could answer
        for a reason of the replica's own (down, lost, shutting down, a recovery
        conflict): the caller then asks the primary. Any other error is the query's."""
        lease = await self._database.acquire_replica()
        if lease is None:
            return False, None
        index, conn = lease
        try:
            return True, await query(conn, *args, **kwargs)
        except (psycopg.OperationalError, psycopg.errors.SerializationFailure) as exc:
            operation = self._operation(query)
            logger.warning("%s on replica %d failed with SQLSTATE %s; asking the primary",
                           operation, index, sqlstate_of(exc))  # fmt: skip
            self._database.replica_failed(index)
            return False, None
        except psycopg.Error as exc:
            operation = self._operation(query)
            logger.warning("%s failed with SQLSTATE %s", operation, sqlstate_of(exc))
            raise map_error(exc, operation=operation) from exc
        except msgspec.ValidationError as exc:
            operation = self._operation(query)
            raise LlmcpError(f"{operation}: a stored row does not match its type") from exc
        finally:
            await self._database.release_replica(index, conn)

    async def _execute(self, query: Query[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one generated query: on the context's connection (a transaction's or
        a pinned one) or a pooled one; psycopg errors become llmcp errors; timing at DEBUG.

        Parameter values are never logged: they may hold secrets or personal data.
        """
        debug = logger.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if debug else 0.0
        bound = self._transactions.bound_connection()
        try:
            if bound is not None:
                result = await query(bound, *args, **kwargs)
            else:  # one statement on a pooled connection (autocommit)
                conn = await self._database.acquire()
                try:
                    result = await query(conn, *args, **kwargs)
                finally:
                    await self._database.release(conn)
        except LlmcpError as exc:
            logger.warning("%s failed: %s", self._operation(query), type(exc).__name__)
            raise
        except psycopg.Error as exc:
            operation = self._operation(query)
            logger.warning("%s failed with SQLSTATE %s", operation, sqlstate_of(exc))
            if self._transactions.current() is None and not routing.is_read(query.__name__):
                # a write committed (or not) by the server as the statement ends
                raise single_write_error(exc, operation=operation) from exc
            raise map_error(exc, operation=operation) from exc
        except msgspec.ValidationError as exc:  # a stored row that does not fit its type
            operation = self._operation(query)
            logger.warning("%s failed: a stored row does not decode", operation)
            raise LlmcpError(f"{operation}: a stored row does not match its type") from exc
        if debug:
            rows = len(result) if isinstance(result, list) else int(result is not None)
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.debug("%s: %.3f ms, %d row(s)", self._operation(query), elapsed_ms, rows)
        return result

    def _operation(self, query: Callable[..., Any]) -> str:
        """``entity.query``, for errors and logs (built only when one is written)."""
        return f"{self.entity}.{getattr(query, '__name__', 'query')}"

    async def _missing_or_stale(
        self,
        version_of: Query[..., int | None],
        row_id: uuid.UUID,
        expected: int,
        **scope: uuid.UUID,
    ) -> LlmcpError:
        """Why an optimistic update changed nothing: the row is gone (or is another
        organization's, which looks the same: ``scope`` holds its ``org_id``), or it
        moved on."""
        current = await self._run(version_of, id=row_id, **scope)
        if current is None:
            return NotFoundError(f"{self.entity}: no row with id {row_id}")
        return ConflictError(
            f"{self.entity}: row {row_id} is at version {current}, not {expected} "
            "(changed by someone else): read it again and retry",
            constraint="version",
        )

    async def _page(
        self,
        first: Query[..., list[R]],
        after: Query[..., list[R]],
        *,
        scope: str,
        limit: int,
        cursor: str | None,
        **filters: Any,
    ) -> Page[R]:
        """One keyset page (newest first): ``first`` starts, ``after`` continues past a cursor.

        Fetches one row more than asked to learn whether another page follows.
        """
        size = check.limit(limit)
        scope = f"{self.entity}.{scope}"
        if cursor is None:
            rows = await self._read(first, **filters, limit=size + 1, offset=0)
        else:
            created_at, row_id = decode_cursor(cursor, scope, secret=self._cursor_secret)
            rows = await self._read(
                after, **filters, after_created_at=created_at, after_id=row_id, limit=size + 1
            )
        if len(rows) <= size:
            return Page(items=rows, next_cursor=None)
        last = rows[size - 1]
        next_cursor = encode_cursor(scope, last.created_at, last.id, secret=self._cursor_secret)
        return Page(items=rows[:size], next_cursor=next_cursor)

    def _not_found(self, row_id: uuid.UUID) -> NotFoundError:
        return NotFoundError(f"{self.entity}: no row with id {row_id}")


class AsyncCachedRepository(AsyncRepository):
    """A repository of the request path, whose lookups the factory's admission cache
    (llmcp.cache_async) may answer: applications, users and policies."""

    def __init__(
        self,
        transactions: AsyncTransactionManager,
        *,
        cursor_secret: bytes,
        admission: AsyncAdmissionCache | None = None,
    ) -> None:
        super().__init__(transactions, cursor_secret=cursor_secret)
        self._admission = admission  # the admission cache, when the factory has one
