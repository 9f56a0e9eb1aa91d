"""The audit writer: accepted audit rows are stored, exactly once, even under faults.

``submit()`` (what ``audit_logs.async_insert`` calls) validates a row, gives it
its id and time, puts it in a bounded queue and returns the id at once. A
background worker takes batches from the queue and writes each with COPY in
one transaction. While the database is away it keeps the batch and retries
with backoff. After a failure whose outcome is unclear (the connection was
lost around COMMIT) it retries through a staging table with
``ON CONFLICT (id) DO NOTHING``, so a batch that did commit is not written
twice. ``flush()`` returns when every row accepted so far is stored;
``close()`` drains the queue and stops. When the queue is full, ``submit()``
waits up to ``put_timeout`` and then raises ``QueueFullError``, unless the
writer was made with ``drop_when_full=True``: then the row is dropped and
counted. A row the database rejects for good (say, its organization was
deleted meanwhile) is counted as failed and logged by id; the rest of its
batch is stored.
"""

from __future__ import annotations

import asyncio  # sync: import time
import collections
import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from llmcp.audit_writer_base import (
    COPY,
    INSERT_ONE,
    STAGE,
    STAGE_COPY,
    STAGE_MERGE,
    Row,
    WriterStats,
    audit_row,
    logger,
)
from llmcp.concurrency import AsyncCondition, join_async, spawn_async, wait_for_async
from llmcp.database_async import AsyncDatabase
from llmcp.errors import DatabaseUnavailableError, LlmcpError, QueueFullError, ValidationError
from llmcp.inputs import NewAuditLog


class AsyncAuditWriter:
    """Batches audit rows into COPY; see the module docstring for the guarantees."""

    def __init__(
        self,
        database: AsyncDatabase,
        *,
        queue_size: int = 10_000,
        batch_size: int = 1_000,
        flush_interval: float = 0.05,
        put_timeout: float = 5.0,
        drop_when_full: bool = False,
        max_backoff: float = 2.0,
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValidationError("queue_size and batch_size must be positive")
        self._database = database
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._put_timeout = put_timeout
        self._drop_when_full = drop_when_full
        self._max_backoff = max_backoff
        self._queue: collections.deque[Row] = collections.deque()
        self._in_flight = 0
        self._condition = AsyncCondition()
        self._worker: Any = None
        self._closing = False
        self._accepted = self._written = self._failed = self._retried = self._dropped = 0
        # test hook: called with a step name ("after_commit"), may raise to inject a fault
        self.fault: Callable[[str], None] | None = None

    @property
    def stats(self) -> WriterStats:
        return WriterStats(
            accepted=self._accepted,
            written=self._written,
            failed=self._failed,
            retried=self._retried,
            dropped=self._dropped,
            queue_depth=len(self._queue) + self._in_flight,
        )

    async def submit(self, new: NewAuditLog) -> uuid.UUID:
        """Accept one audit row for writing; returns its id at once (see ``flush``)."""
        config = self._database.config
        row = audit_row(
            new, max_details_bytes=config.audit_details_max_bytes, max_depth=config.json_max_depth
        )
        row_id: uuid.UUID = row[0]  # a UUID: given and checked, or made
        async with self._condition:
            if self._closing:
                raise LlmcpError("the audit writer is closed")
            if len(self._queue) >= self._queue_size:
                if self._drop_when_full:
                    self._dropped += 1
                    logger.warning("audit queue full: dropped row %s", row_id)
                    return row_id
                has_room = await wait_for_async(
                    self._condition, lambda: len(self._queue) < self._queue_size, self._put_timeout
                )
                if not has_room:
                    raise QueueFullError(
                        f"audit queue full ({self._queue_size} rows) for {self._put_timeout} s"
                    )
            self._queue.append(row)
            self._accepted += 1
            self._condition.notify_all()
            if self._worker is None:
                self._worker = spawn_async(self._run, name="llmcp-audit-writer")
        return row_id

    async def flush(self, timeout: float | None = None) -> None:
        """Return once every row accepted before this call is stored (or failed for good)."""
        async with self._condition:
            target = self._accepted
            done = await wait_for_async(
                self._condition, lambda: self._written + self._failed >= target, timeout
            )
        if not done:
            raise DatabaseUnavailableError(f"audit rows still not stored after {timeout} s")

    async def close(self) -> None:
        """Stop accepting, store every accepted row, stop the worker (idempotent)."""
        async with self._condition:
            self._closing = True
            self._condition.notify_all()
            worker = self._worker
        if worker is not None:
            await join_async(worker)

    # -- the worker -------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            async with self._condition:
                await wait_for_async(
                    self._condition,
                    lambda: bool(self._queue) or self._closing,
                    self._flush_interval,
                )
                if not self._queue:
                    if self._closing:
                        return
                    continue
                size = min(self._batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(size)]
                self._in_flight = size
                self._condition.notify_all()  # room in the queue
            written, failed = await self._store(batch)
            async with self._condition:
                self._written += written
                self._failed += failed
                self._in_flight = 0
                self._condition.notify_all()

    async def _store(self, batch: list[Row]) -> tuple[int, int]:
        """Write ``batch`` until it is stored; returns (written, failed for good).

        Modes: ``copy`` (fast), then ``merge`` once an attempt's outcome is
        unclear (idempotent), or ``single`` once the database refused a row
        (row by row, so that one bad row does not hold back the others).
        """
        mode = "copy"
        attempt = 0
        while True:
            try:
                if mode == "single":
                    return await self._one_by_one(batch)
                if mode == "merge":
                    await self._merge(batch)
                else:
                    await self._copy(batch)
                return len(batch), 0
            except (psycopg.IntegrityError, psycopg.DataError):
                mode = "single"
            except Exception as exc:
                if self._database.closed:
                    # nowhere left to write: say so loudly rather than spin
                    shown = ", ".join(str(row[0]) for row in batch[:5])
                    logger.error("database closed before %d audit rows were stored (ids %s%s)",
                                 len(batch), shown, ", ..." if len(batch) > 5 else "")  # fmt: skip
                    return 0, len(batch)
                # lost connection, server restart, pool timeout, anything else:
                # the outcome is unknown, so the next attempt must be idempotent
                if mode == "copy":
                    mode = "merge"
                attempt += 1
                async with self._condition:
                    self._retried += 1
                delay = min(self._max_backoff, 0.05 * 2 ** min(attempt, 10))
                logger.warning("audit batch of %d rows not stored (%s); retry in %.2f s",
                               len(batch), type(exc).__name__, delay)  # fmt: skip
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _copy(self, batch: list[Row]) -> None:
        """The fast path: COPY straight into audit_logs, one transaction."""
        async with self._lease() as conn:
            async with conn.transaction(), conn.cursor().copy(COPY) as copy:
                for row in batch:
                    await copy.write_row(row)
            self._inject("after_commit")

    async def _merge(self, batch: list[Row]) -> None:
        """The idempotent path: COPY into a staging table, insert what is not there yet."""
        async with self._lease() as conn:
            async with conn.transaction():
                await conn.execute(STAGE)
                async with conn.cursor().copy(STAGE_COPY) as copy:
                    for row in batch:
                        await copy.write_row(row)
                await conn.execute(STAGE_MERGE)
            self._inject("after_commit")

    async def _one_by_one(self, batch: list[Row]) -> tuple[int, int]:
        written = failed = 0
        async with self._lease() as conn:
            for row in batch:
                try:
                    async with conn.transaction():
                        await conn.execute(INSERT_ONE, row)
                    written += 1
                except (psycopg.IntegrityError, psycopg.DataError) as exc:
                    failed += 1
                    logger.error(
                        "audit row %s rejected for good: SQLSTATE %s", row[0], exc.sqlstate
                    )
        return written, failed

    @asynccontextmanager
    async def _lease(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection whose query errors stay psycopg's (the retry logic reads them)."""
        conn = await self._database.acquire()
        try:
            yield conn
        finally:
            await self._database.release(conn)

    def _inject(self, step: str) -> None:
        if self.fault is not None:
            self.fault(step)
