"""The few concurrency primitives the audit writer and the admission cache need, in both flavours.

Async code (``*_async.py``) uses the ``Async``/``_async`` names; its generated
sync twin gets the plain names (see ``llmcp.dev.twins``): a task becomes
a thread, an asyncio condition a threading one, a transaction awaited on the loop
two waits on the socket with the GIL released. Hand-written, like psycopg's ``_acompat``, because a
task and a thread are not the same code.

psycopg internals used by :func:`commit_noted` (check them on an upgrade):
``psycopg._queries.PostgresQuery``, ``psycopg.adapt.Transformer``, ``PGconn``'s
pipeline methods, which of its calls release the GIL, and
``psycopg.errors.error_from_result``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import select
import signal
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, LiteralString

import psycopg
from psycopg import errors, pq
from psycopg._queries import PostgresQuery
from psycopg.adapt import Transformer

AsyncCondition = asyncio.Condition
Condition = threading.Condition
_OK = pq.ConnStatus.OK
_IDLE = pq.TransactionStatus.IDLE


async def wait_for_async(
    condition: asyncio.Condition, predicate: Callable[[], bool], timeout: float | None
) -> bool:
    """Wait (holding ``condition``) until ``predicate()``; False on timeout."""
    # asyncio.timeout, not wait_for: wait_for can swallow the task's own cancellation
    try:
        async with asyncio.timeout(timeout):
            return await condition.wait_for(predicate)
    except TimeoutError:
        return predicate()


def wait_for(
    condition: threading.Condition, predicate: Callable[[], bool], timeout: float | None
) -> bool:
    """Wait (holding ``condition``) until ``predicate()``; False on timeout."""
    return condition.wait_for(predicate, timeout)


def spawn_async(work: Callable[[], Coroutine[Any, Any, None]], name: str) -> asyncio.Task[None]:
    """Run ``work()`` as a background task."""
    return asyncio.get_running_loop().create_task(work(), name=name)


def spawn(work: Callable[[], None], name: str) -> threading.Thread:
    """Run ``work()`` in a background (daemon) thread."""
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return thread


def hand_over_async() -> None:
    """Nothing: an async worker runs whenever its caller awaits."""


def hand_over() -> None:
    """Release the GIL for a moment, so that a thread waiting for it (a worker whose
    round trip is back) takes it now rather than after a switch interval (5 ms),
    the server idle meanwhile. One system call, ``sched_yield``, which also lets
    that thread have this CPU: ``time.sleep(0)`` does the same but took 85 us of
    wall time here (a timed sleep of zero), ``sched_yield`` under 1 us."""
    os.sched_yield()


async def join_async(worker: asyncio.Task[None], timeout: float | None = None) -> bool:
    """Wait for ``worker`` to end, at most ``timeout`` seconds (it goes on); True if it did."""
    if timeout is None:
        await asyncio.shield(worker)
        return True
    done, _ = await asyncio.wait({worker}, timeout=max(0.0, timeout))
    if done:
        worker.result()  # its exception, if any
    return bool(done)


def join(worker: threading.Thread, timeout: float | None = None) -> bool:
    """Wait for ``worker`` to end, at most ``timeout`` seconds (it goes on); True if it did."""
    worker.join(None if timeout is None else max(0.0, timeout))
    return not worker.is_alive()


async def stop_async(worker: asyncio.Task[None]) -> None:
    """Cancel ``worker`` and wait until it has ended (its ``finally`` blocks run)."""
    worker.cancel()
    await asyncio.wait({worker})


def stop(worker: threading.Thread) -> None:
    """Wait until ``worker``, told to stop by a flag it looks at, has ended."""
    worker.join()


Statement = tuple[LiteralString, Sequence[Any] | None]
"""A statement (``%s`` placeholders) and its parameters."""


async def commit_noted_async(
    conn: psycopg.AsyncConnection[Any],
    noting: LiteralString,
    statements: Sequence[Statement],
    noted: Callable[[tuple[Any, ...]], None],
) -> None:
    """One transaction in two round trips, on an idle autocommit connection: BEGIN
    with ``noting`` (a statement without parameters), whose one row goes to
    ``noted`` before anything else is sent; then ``statements`` and COMMIT, pipelined.

    On any error the transaction is rolled back (while the connection works)
    and the error is psycopg's, as ``conn.execute()`` raises it.
    """
    try:
        cursor = await conn.execute(f"BEGIN; {noting}")
        cursor.nextset()
        row = await cursor.fetchone()
        assert row is not None, "the noting statement returns a row"
        noted(tuple(row))
        async with conn.pipeline():
            for query, params in statements:
                await conn.execute(query, params)
            await conn.execute("COMMIT")
    except BaseException:
        if not conn.closed and conn.info.transaction_status != _IDLE:
            with contextlib.suppress(psycopg.Error):  # lost: the pool discards it
                await conn.rollback()
        raise


def commit_noted(
    conn: psycopg.Connection[Any],
    noting: LiteralString,
    statements: Sequence[Statement],
    noted: Callable[[tuple[Any, ...]], None],
) -> None:
    """:func:`commit_noted_async` on a sync connection, driven by libpq itself.

    For a background thread while another keeps the GIL busy (the audit writer's
    batches): each round trip waits with the GIL released in libpq's own blocking
    calls (``exec_``, the sends) and in one ``poll`` for all the results, where
    psycopg's ``wait()`` takes the GIL back at every wait on the socket (each
    chunk that fills the socket's buffer, then each result), and a thread that
    wants it back from a busy one waits up to a switch interval (5 ms) each time.
    """
    transformer = Transformer(conn)
    queries = []
    for query, params in statements:  # encoded before anything is sent
        converted = PostgresQuery(transformer)
        converted.convert(query, params)
        queries.append(converted)
    pgconn = conn.pgconn
    with conn.lock:
        try:
            result = pgconn.exec_(f"BEGIN; {noting}".encode())  # the GIL released
            _raise_failed(pgconn, result)
            transformer.set_pgresult(result)
            fields = range(result.nfields)
            noted(transformer.load_sequence([result.get_value(0, n) for n in fields]))
            _pipelined(pgconn, queries)
        except BaseException:
            if pgconn.status == _OK and pgconn.transaction_status != _IDLE:
                pgconn.exec_(b"ROLLBACK")
            raise


def _pipelined(pgconn: pq.abc.PGconn, queries: Sequence[PostgresQuery]) -> None:
    """Send ``queries`` and COMMIT in one pipeline; wait for all their results."""
    nonblocking = pgconn.nonblocking
    pgconn.nonblocking = 0  # each send returns once all is written, the GIL released meanwhile
    pgconn.enter_pipeline_mode()
    failed = None
    try:
        for query in queries:
            pgconn.send_query_params(
                query.query, query.params, param_types=query.types, param_formats=query.formats
            )
        pgconn.send_query_params(b"COMMIT", None)
        pgconn.pipeline_sync()
        readable = select.poll()
        readable.register(pgconn.socket, select.POLLIN)
        while True:
            while pgconn.is_busy():
                readable.poll()  # the GIL released
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:  # between two statements' results
                if pgconn.status != _OK:
                    raise psycopg.OperationalError(pgconn.get_error_message())
                continue
            if result.status == pq.ExecStatus.PIPELINE_SYNC:
                break
            if result.status == pq.ExecStatus.FATAL_ERROR and failed is None:
                failed = result  # the statements after it are aborted
    finally:
        if pgconn.status == _OK:  # a lost connection is left as it is: the pool discards it
            pgconn.nonblocking = nonblocking
            try:
                pgconn.exit_pipeline_mode()
            except psycopg.Error:  # results left unread (interrupted): unusable now
                pgconn.finish()
    if failed is not None:
        _raise_failed(pgconn, failed)


def _raise_failed(pgconn: pq.abc.PGconn, result: pq.abc.PGresult) -> None:
    """Raise what psycopg would for ``result``, if it failed."""
    if result.status != pq.ExecStatus.FATAL_ERROR:
        return
    if pgconn.status != _OK and not result.error_field(pq.DiagnosticField.SQLSTATE):
        # the connection was lost: what psycopg raises then
        raise psycopg.OperationalError(result.get_error_message(pgconn._encoding))
    raise errors.error_from_result(result, encoding=pgconn._encoding)


def at_exit_async(callback: Callable[[], None]) -> None:
    """Nothing: an async writer is drained by its factory's ``close()`` (an event loop
    is gone by the time the interpreter exits)."""


def at_exit(callback: Callable[[], None]) -> None:
    """Run ``callback`` at interpreter exit, before daemon threads stop; and turn the
    default SIGTERM (which ends the process at once) into a normal exit, so that
    exit handlers run then too. A SIGTERM handler of the application's is kept."""
    atexit.register(callback)
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
