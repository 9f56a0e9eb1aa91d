"""The few concurrency primitives the audit writer and the admission cache need, in both flavours.

Async code (``*_async.py``) uses the ``Async``/``_async`` names; its generated
sync twin gets the plain names (see ``llmcp.dev.twins``): a task becomes
a thread, an asyncio condition a threading one, a statement awaited on the loop
one blocking libpq call. Hand-written, like psycopg's ``_acompat``, because a
task and a thread are not the same code.

psycopg internals used by :func:`execute` (check them on an upgrade):
``psycopg._queries.PostgresQuery``, ``psycopg.adapt.Transformer``,
``PGconn.exec_params`` and ``psycopg.errors.error_from_result``.
"""

from __future__ import annotations

import asyncio
import atexit
import signal
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import psycopg
from psycopg import errors, pq
from psycopg._queries import PostgresQuery
from psycopg.adapt import Transformer

AsyncCondition = asyncio.Condition
Condition = threading.Condition


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


async def execute_async(
    conn: psycopg.AsyncConnection[Any], query: str, params: Sequence[Any]
) -> int:
    """Run one statement (``%s`` placeholders); the rows it affected."""
    cursor = await conn.execute(query, params)
    return cursor.rowcount


def execute(conn: psycopg.Connection[Any], query: str, params: Sequence[Any]) -> int:
    """Run one statement (``%s`` placeholders) in one blocking libpq call; the rows it
    affected. Errors are psycopg's, as ``conn.execute()`` raises them.

    For a background thread sending a large statement while another thread keeps
    the GIL busy (the audit writer's batches): psycopg's ``wait()`` takes the GIL
    back at every wait on the socket (each chunk that fills the socket's buffer,
    then the result), and a thread that wants it back from a busy one waits up
    to a switch interval (5 ms) each time. ``PQexecParams`` releases it once,
    from the first byte sent to the result.
    """
    converted = PostgresQuery(Transformer(conn))
    converted.convert(query, params)
    pgconn = conn.pgconn
    with conn.lock:
        result = pgconn.exec_params(
            converted.query,
            converted.params,
            param_types=converted.types,
            param_formats=converted.formats,
        )
    if result.status == pq.ExecStatus.FATAL_ERROR:
        if pgconn.status != pq.ConnStatus.OK and not result.error_field(
            pq.DiagnosticField.SQLSTATE
        ):  # the connection was lost: what psycopg raises then
            raise psycopg.OperationalError(result.get_error_message(pgconn._encoding))
        raise errors.error_from_result(result, encoding=pgconn._encoding)
    count = result.command_tuples
    return count if count is not None else -1


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
