"""The audit writer: accepted audit rows are stored, exactly once, even under faults.

``submit()`` (what ``audit_logs.async_insert`` calls) validates a row (encoded
once, here: what cannot be stored is a ValidationError now), gives it
its id and time, puts it in a bounded queue and returns the id at once. A
background worker takes batches from the queue and writes each as one INSERT
in one transaction (COPY FROM is refused under row-level security). Under load
(rows arrived while the last batch was written) it lets the next batch fill for
up to ``linger`` seconds first: fewer, larger batches cost the server less per
row; an idle writer stores a lone row at once, and ``flush``/``close`` cut the
wait short. It needs
INSERT on audit_logs and nothing else (no SELECT, UPDATE or DELETE), and no
tenant set: its batches mix organizations. While the database is away (a
lost connection, a shutdown, a serialization failure or deadlock, a statement
timeout: see ``is_transient``) it keeps the batch and retries with backoff.
When the acknowledgement of a COMMIT was lost, it asks the server what became
of that transaction (``pg_xact_status``), so a batch is never written twice
nor counted written without being stored; when the server cannot say, the
batch is written again idempotently. A batch refused for any other reason
(one bad reference makes the server refuse the whole statement) is split in
halves, again and again, until the rows at fault are alone: those are counted
``failed`` and reported (``failures``, ``on_failure``), every other row is
stored. A row whose id is in the table already is one of them
(kind ``conflict``). ``flush()`` returns when every row accepted so far is
stored or failed; ``close()`` drains the queue and stops. When the queue is
full, ``submit()`` waits up to ``put_timeout`` and then raises
``QueueFullError``, unless the writer was made with ``drop_when_full=True``:
then the row is dropped and counted.
"""

from __future__ import annotations

import asyncio  # sync: import time
import collections
import datetime
import itertools
import random
import threading
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from llmcp import telemetry
from llmcp.audit_writer_base import (
    COMMIT_LEVEL,
    INSERT,
    LOGGED_PER_PART,
    MERGE,
    MERGE_ROW,
    XACT_ID,
    XACT_STATUS,
    Row,
    Unstored,
    WriteFailure,
    WriterStats,
    audit_row,
    conflict,
    failure_of,
    is_transient,
    logger,
    row_id,
    rows_param,
    rows_size,
)
from llmcp.concurrency import (
    AsyncCondition,
    Statement,
    at_exit_async,
    commit_noted_async,
    hand_over_async,
    join_async,
    spawn_async,
    wait_for_async,
)
from llmcp.database_async import AsyncDatabase
from llmcp.errors import LlmcpError, QueueFullError, ValidationError
from llmcp.inputs import NewAuditLog

# a caller submitting rows as fast as it can lets the worker run this often (see
# ``concurrency.hand_over``): measured with bench/ingest_timeline's rows, the sync
# writer's ingest went from 0.78 to 0.82 of COPY's (10 alternating rounds); every 4
# rows measured the same
_HAND_OVER_EVERY = 16


class _Unknown(Exception):
    """The outcome of a write cannot be learnt (its transaction is unknown to the server)."""


class _Abandoned(Exception):
    """``close(timeout=...)`` gave up: the worker stops before its next attempt."""


def _exit_handler(writer: AsyncAuditWriter) -> Callable[[], None]:
    """The sync writer's handler at interpreter exit: drain within ``exit_timeout``."""
    ref = weakref.ref(writer)

    def drain() -> None:
        alive = ref()
        if alive is not None and alive.exit_timeout is not None:
            pass  # sync: alive.close(timeout=alive.exit_timeout)

    return drain


class AsyncAuditWriter:
    """Batches audit rows into INSERTs; see the module docstring for the guarantees.

    ``failures`` keeps the latest ``failures_kept`` rows refused for good;
    ``on_failure`` (if given) is called with each, from the worker. The sync
    writer drains at interpreter exit (and at a SIGTERM left to its default),
    for at most ``exit_timeout`` seconds (None: not at all).
    """

    def __init__(
        self,
        database: AsyncDatabase,
        *,
        queue_size: int = 10_000,
        queue_bytes: int = 64 << 20,
        batch_size: int = 1_000,
        flush_interval: float = 0.05,
        linger: float = 0.025,
        put_timeout: float = 5.0,
        drop_when_full: bool = False,
        max_backoff: float = 0.5,
        failures_kept: int = 1_000,
        on_failure: Callable[[WriteFailure], None] | None = None,
        exit_timeout: float | None = 10.0,
    ) -> None:
        if queue_size < 1 or queue_bytes < 1 or batch_size < 1 or failures_kept < 0:
            raise ValidationError("queue_size, queue_bytes and batch_size must be positive")
        if linger < 0:
            raise ValidationError("linger must not be negative")
        self._database = database
        self._queue_size = queue_size
        self._queue_bytes = queue_bytes
        self._bytes = 0  # of the rows queued and in flight
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._linger = linger
        self._flushing = 0  # flush() calls waiting: the worker does not linger for them
        self._put_timeout = put_timeout
        self._drop_when_full = drop_when_full
        self._max_backoff = max_backoff
        self._on_failure = on_failure
        self._failures: collections.deque[WriteFailure] = collections.deque(maxlen=failures_kept)
        self._queue: collections.deque[Row] = collections.deque()
        self.exit_timeout = exit_timeout
        # the batch being written, with each row's place in the order of acceptance
        self._flight: list[tuple[int, Row]] = []
        self._queued_total = 0  # rows ever queued: the place of the next one
        self._live = False  # an attempt holds a connection: its rows may commit any moment
        self._abandoned = False  # close(timeout=...) gave up on the rest
        self._condition = AsyncCondition()
        # guards the counters, so that ``stats`` is one snapshot (held for a few
        # statements only, never across a wait)
        self._tally = threading.Lock()
        self._worker: Any = None
        self._closing = False
        self._accepted = self._written = self._failed = self._retried = self._dropped = 0
        self._batches = 0
        # test hook: called with a step name ("before_write", "after_commit", "status"),
        # may raise to inject a fault
        self.fault: Callable[[str], None] | None = None
        telemetry.instrument_writer(self)  # a span per batch, if opentelemetry is installed

    @property
    def stats(self) -> WriterStats:
        with self._tally:
            return WriterStats(
                accepted=self._accepted,
                written=self._written,
                failed=self._failed,
                retried=self._retried,
                dropped=self._dropped,
                queue_depth=len(self._queue) + len(self._flight),
                queue_bytes=self._bytes,
                batches=self._batches,
            )

    @property
    def failures(self) -> list[WriteFailure]:
        """The latest rows refused for good (at most ``failures_kept``), oldest first."""
        with self._tally:
            return list(self._failures)

    async def submit(self, new: NewAuditLog) -> uuid.UUID:
        """Accept one audit row for writing; returns its id at once (see ``flush``)."""
        config = self._database.config
        new_id, row = audit_row(  # the id given and checked, or made
            new, max_details_bytes=config.audit_details_max_bytes, max_depth=config.json_max_depth
        )
        size = rows_size((row,))

        def has_room() -> bool:  # an empty writer takes any row, however large
            if len(self._queue) >= self._queue_size:
                return False
            return self._bytes == 0 or self._bytes + size <= self._queue_bytes

        async with self._condition:
            if self._closing:
                raise LlmcpError("the audit writer is closed")
            if not has_room():
                if self._drop_when_full:
                    with self._tally:
                        self._accepted += 1
                        self._dropped += 1
                    logger.warning("audit queue full: dropped row %s", new_id)
                    return new_id
                if not await wait_for_async(self._condition, has_room, self._put_timeout):
                    raise QueueFullError(
                        f"audit queue full ({self._queue_size} rows or {self._queue_bytes} "
                        f"bytes) for {self._put_timeout} s"
                    )
            with self._tally:
                self._queue.append(row)
                self._queued_total += 1
                self._accepted += 1
                self._bytes += size
            # the worker waits for a first row, or lingers for a full batch: wake it
            # then only, not for every row (a wake-up per row costs more than the row)
            if len(self._queue) in (1, self._batch_size):
                self._condition.notify_all()
            if self._worker is None:
                self._worker = spawn_async(self._run, name="llmcp-audit-writer")
                at_exit_async(_exit_handler(self))
        if self._flight and self._queued_total % _HAND_OVER_EVERY == 0:
            hand_over_async()  # the sync worker's round trip may be back, waiting for the GIL
        return new_id

    async def flush(self, timeout: float | None = None) -> Unstored:
        """Wait until every row accepted before this call is stored (or failed for good),
        at most ``timeout`` seconds; returns those still not stored then (none: falsy)."""
        async with self._condition:
            target, place = self._accepted, self._queued_total
            self._flushing += 1
            self._condition.notify_all()  # out of a linger
            try:
                await wait_for_async(
                    self._condition,
                    lambda: self._written + self._failed + self._dropped >= target,
                    timeout,
                )
            finally:
                self._flushing -= 1
            with self._tally:
                return self._unstored(place)

    async def close(self, timeout: float | None = None) -> Unstored:
        """Stop accepting, store every accepted row, stop the worker (idempotent).

        With a ``timeout``, give up on what is not stored by then: it is returned
        (and logged as an error), never written later; rows whose COMMIT was under
        way at the deadline are returned as ``in_doubt``.
        """
        async with self._condition:
            self._closing = True
            self._condition.notify_all()
            worker = self._worker
        if worker is not None and not await join_async(worker, timeout):
            async with self._condition:
                with self._tally:
                    self._abandoned = True
                    report = self._unstored(self._queued_total, in_doubt=self._live)
                self._condition.notify_all()  # out of its backoff
            logger.error("audit writer closed after %s s with %d rows not stored (ids %s)",
                         timeout, report.count, _shown(report.ids + report.in_doubt))  # fmt: skip
            return report
        with self._tally:
            return self._unstored(self._queued_total)

    def _unstored(self, place: int, *, in_doubt: bool = False) -> Unstored:
        """The rows queued before ``place`` that are not stored (holding ``_tally``)."""
        flight = tuple(row_id(row) for seq, row in self._flight if seq < place)
        first = self._queued_total - len(self._queue)
        waiting = tuple(
            row_id(row) for row, _ in zip(self._queue, range(place - first), strict=False)
        )
        if in_doubt:
            return Unstored(ids=waiting, in_doubt=flight)
        return Unstored(ids=flight + waiting)

    def __del__(self) -> None:
        if not hasattr(self, "_abandoned"):
            return  # __init__ refused its arguments
        depth = len(self._queue) + len(self._flight)
        if depth and not self._abandoned:
            logger.error("audit writer garbage-collected with %d rows not stored (ids %s)",
                         depth, _shown_rows(self._queue))  # fmt: skip

    # -- the worker -------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._work()
        except _Abandoned:
            pass
        finally:
            depth = len(self._queue) + len(self._flight)
            if depth and not self._abandoned:  # cancelled: its event loop is closing
                logger.error("audit writer stopped with %d rows not stored (ids %s); close the "
                             "factory or the writer before its event loop ends",
                             depth, _shown_rows(self._queue))  # fmt: skip

    def _batch_ready(self) -> bool:
        """Whether the next batch should go now: full, or someone waits for it."""
        return (
            len(self._queue) >= self._batch_size
            or self._closing
            or self._flushing > 0
            or self._abandoned
        )

    async def _work(self) -> None:
        arriving = False  # rows came in while the last batch was written
        while True:
            async with self._condition:
                await wait_for_async(
                    self._condition,
                    lambda: bool(self._queue) or self._closing,
                    self._flush_interval,
                )
                if self._abandoned:
                    return
                if not self._queue:
                    if self._closing:
                        return
                    arriving = False
                    continue
                if arriving and self._linger and not self._batch_ready():
                    # under load: a moment more fills the batch (one statement and one
                    # COMMIT for many rows); a lone row of an idle writer goes at once
                    await wait_for_async(self._condition, self._batch_ready, self._linger)
                    if self._abandoned:
                        return
                size = min(self._batch_size, len(self._queue))
                with self._tally:
                    first = self._queued_total - len(self._queue)
                    batch = [self._queue.popleft() for _ in range(size)]
                    self._flight = list(enumerate(batch, first))
                self._condition.notify_all()  # room in the queue
            await self._store(batch)
            arriving = bool(self._queue)

    async def _settle(self, part: list[Row], failures: list[WriteFailure]) -> None:
        """Count the rows of ``part`` as done: ``failures`` failed, the others written
        (and wake ``flush`` and ``submit``)."""
        written = len(part) - len(failures)
        size = rows_size(part)
        async with self._condition:
            with self._tally:
                self._bytes -= size
                self._written += written
                if written:
                    self._batches += 1
                self._failed += len(failures)
                if len(part) == len(self._flight):  # the whole batch: the usual case
                    self._flight = []
                else:
                    done = set(map(id, part))
                    self._flight = [entry for entry in self._flight if id(entry[1]) not in done]
                self._failures.extend(failures)
            self._condition.notify_all()
        # a few lines per batch, not one per row: a closed database fails them all
        for failure in failures[:LOGGED_PER_PART]:
            logger.error("audit row %s refused for good (%s): %s", failure.id, failure.kind,
                         failure.message)  # fmt: skip
        if len(failures) > LOGGED_PER_PART:
            logger.error("and %d more audit rows refused for good (see writer.failures)",
                         len(failures) - LOGGED_PER_PART)  # fmt: skip
        for failure in failures:
            if self._on_failure is not None:
                try:
                    self._on_failure(failure)
                except Exception:
                    logger.exception("the audit writer's on_failure callback raised")

    async def _store(self, batch: list[Row]) -> None:
        """Store ``batch``; a part refused for good is split until its culprits are alone."""
        parts = [batch]
        while parts:
            part = parts.pop()
            outcome = await self._write(part)
            if not isinstance(outcome, BaseException):
                await self._settle(part, outcome)
            elif len(part) == 1:
                await self._settle(part, [failure_of(row_id(part[0]), outcome)])
            else:
                half = len(part) // 2
                parts += [part[half:], part[:half]]  # the first half next: order kept

    async def _write(self, part: list[Row]) -> list[WriteFailure] | BaseException:
        """Write ``part`` in one transaction until it is stored (the rows that were not:
        none, or conflicts found by ``_merge``) or refused for good (the error).

        Transient errors are retried with backoff; when one left the outcome
        unknown, the server says whether that transaction committed.
        """
        attempt = 0
        # the latest attempt's transaction, once known: its id and its server's start
        xact: list[tuple[str, datetime.datetime]] = []
        merge = False
        while True:
            if self._abandoned:
                raise _Abandoned
            try:
                if xact:
                    if await self._status(xact[0]) == "committed":
                        return []
                    xact.clear()  # aborted: write again
                if merge:
                    return await self._merge(part)
                await self._insert(part, xact)
                return []
            except _Unknown:
                merge = True  # the server cannot say: write idempotently from now on
                xact.clear()
            except Exception as exc:
                if self._database.closed:
                    # nowhere left to write: say so loudly rather than spin
                    logger.error("database closed before %d audit rows were stored (ids %s)",
                                 len(part), _shown_rows(part))  # fmt: skip
                    return [failure_of(row_id(row), exc) for row in part]
                if not is_transient(exc):
                    return exc
                attempt += 1
                with self._tally:
                    self._retried += 1
                delay = min(self._max_backoff, 0.05 * 2 ** min(attempt, 10))
                logger.warning("audit batch of %d rows not stored (%s); retry in %.2f s",
                               len(part), type(exc).__name__, delay)  # fmt: skip
                async with self._condition:  # a backoff that close(timeout=...) cuts short
                    await wait_for_async(
                        self._condition, lambda: self._abandoned, delay * random.uniform(0.5, 1.0)
                    )

    async def _insert(self, part: list[Row], xact: list[tuple[str, datetime.datetime]]) -> None:
        """The usual path: one INSERT of ``part`` in one transaction, whose id goes into
        ``xact`` before the INSERT and COMMIT are sent (to ask about it if the
        acknowledgement is lost); two round trips (in the sync writer two waits
        with the GIL released: see ``commit_noted_async``)."""

        def noted(found: tuple[Any, ...]) -> None:
            xact.append((str(found[0]), found[1]))
            self._inject("before_write")

        level = self._database.config.synchronous_commit  # for this transaction
        statements: list[Statement] = [] if level is None else [(COMMIT_LEVEL, (level,))]
        statements.append((INSERT, (rows_param(part),)))
        async with self._lease() as conn:
            await commit_noted_async(conn, XACT_ID, statements, noted)
        self._inject("after_commit")

    async def _status(self, xact: tuple[str, datetime.datetime]) -> str:
        """'committed' or 'aborted': what became of transaction ``xact`` (``_Unknown``
        if the server cannot say: another server, as after a failover, or the same
        restarted, which may have given its id to another transaction)."""
        xact_id, server_started = xact
        while True:
            async with self._lease() as conn:
                try:
                    self._inject("status")
                    cursor = await conn.execute(XACT_STATUS, (xact_id,))
                    found = await cursor.fetchone()
                except psycopg.Error as exc:
                    if is_transient(exc):
                        raise
                    raise _Unknown from exc  # an id this server never had
            if found is None or found[1] != server_started:
                raise _Unknown  # not the server that ran it: its ids are not the same
            status = found[0]
            if status in ("committed", "aborted"):
                return str(status)
            if status is None:
                raise _Unknown  # too old to be remembered
            await asyncio.sleep(0.01)  # in progress: its backend has not noticed yet

    async def _merge(self, part: list[Row]) -> list[WriteFailure]:
        """The idempotent path, when an earlier attempt's outcome cannot be learnt: insert
        the rows whose id is not in the table yet.

        Each earlier attempt was one transaction: if this one inserts any row,
        none of them committed, so the rows it skips were in the table before
        (conflicts); if it inserts none, an earlier attempt stored them all.
        When some rows but not all went in, the statement is undone and the rows
        are inserted one statement each, to learn which were skipped (the service
        cannot read the table without a tenant, nor name an inserted row's id).
        """
        async with self._lease() as conn:
            async with conn.transaction():
                async with conn.transaction() as savepoint:
                    cursor = await conn.execute(MERGE, (rows_param(part),))
                    inserted = cursor.rowcount
                    if 0 < inserted < len(part):
                        raise psycopg.Rollback(savepoint)  # to insert them one by one
                taken = await self._taken(conn, part) if 0 < inserted < len(part) else []
            self._inject("after_commit")
        return [conflict(row_id) for row_id in taken]

    async def _taken(self, conn: psycopg.AsyncConnection[Any], part: list[Row]) -> list[uuid.UUID]:
        """Insert the rows of ``part`` one statement each (pipelined); the ids of those
        skipped because their id was taken."""
        cursor = conn.cursor()
        await cursor.executemany(MERGE_ROW, [(rows_param([row]),) for row in part], returning=True)
        taken = []
        for row in part:
            if not await cursor.fetchall():
                taken.append(row_id(row))
            cursor.nextset()
        return taken

    @asynccontextmanager
    async def _lease(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection whose query errors stay psycopg's (the retry logic reads them)."""
        conn = await self._database.acquire()
        try:
            with self._tally:
                if self._abandoned:
                    raise _Abandoned
                self._live = True
            yield conn
        finally:
            with self._tally:
                self._live = False
            await self._database.release(conn)

    def _inject(self, step: str) -> None:
        if self.fault is not None:
            self.fault(step)


def _shown(ids: Sequence[uuid.UUID]) -> str:
    """The first few of ``ids``, for a log line."""
    return ", ".join(map(str, ids[:5])) + (", ..." if len(ids) > 5 else "")


def _shown_rows(rows: Collection[Row]) -> str:
    """The ids of the first few of ``rows``, for a log line."""
    return _shown([row_id(row) for row in itertools.islice(rows, 6)])
