"""An exchange (llmcp.pipelined) driven on the asyncio loop, more cheaply than
``AsyncConnection.wait()``.

psycopg's async wait arms a 0.1 s timer around every wait on the socket, so that
a wait wakes up to notice an interruption. Each timer is a handle pushed on the
loop's heap and cancelled as soon as the answer comes, so under load the heap
holds many cancelled timers, which every later push and pop compares in Python:
at 32 requests in flight that was some 40 comparisons and six timers per
gateway request. An exchange waits only for its answer, and a task's
cancellation reaches the ``await`` without any timer. :func:`wait` waits on the
socket alone; interrupted (a cancelled task, Ctrl-C) while the statement runs,
it does what ``AsyncConnection.wait()`` does: it cancels the statement on the
server and drains the exchange, so that the connection stays usable, or closes
the connection when that fails.

psycopg internals used (see llmcp.pipelined): ``AsyncConnection._try_cancel``,
``psycopg.errors._WaitTimeout``, ``psycopg.waiting.wait_async`` and the ``WAIT_*`` /
``READY_*`` states of its generators.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from typing import Any, TypeVar

import psycopg
from psycopg import errors, pq, waiting
from psycopg.abc import PQGen
from psycopg.waiting import READY_R, READY_W, WAIT_R, WAIT_W

RV = TypeVar("RV")

logger = logging.getLogger("llmcp")

_ACTIVE = pq.TransactionStatus.ACTIVE
_INTERRUPTED = (asyncio.CancelledError, KeyboardInterrupt, SystemExit)


def _wake(future: asyncio.Future[int], ready: int) -> None:
    if not future.done():  # both directions may fire in one loop iteration
        future.set_result(ready)


async def wait(conn: psycopg.AsyncConnection[Any], gen: PQGen[RV]) -> RV:
    """Run ``gen`` (an exchange) on ``conn``'s socket to its end; returns what it returns."""
    try:
        state = next(gen)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    loop = asyncio.get_running_loop()
    fileno = conn.pgconn.socket
    try:
        while True:
            future: asyncio.Future[int] = loop.create_future()
            if state & WAIT_R:
                loop.add_reader(fileno, _wake, future, READY_R)
            if state & WAIT_W:
                loop.add_writer(fileno, _wake, future, READY_W)
            try:
                ready = await future
            finally:
                if state & WAIT_R:
                    loop.remove_reader(fileno)
                if state & WAIT_W:
                    loop.remove_writer(fileno)
            state = gen.send(ready)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    except OSError as exc:
        raise psycopg.OperationalError("connection socket closed") from exc
    except _INTERRUPTED:
        await _cancel_and_drain(conn, _resumed(gen, state))
        raise


def _resumed(gen: PQGen[RV], state: Any) -> Generator[Any, Any, RV]:
    """``gen`` from where it waited for ``state``: that state first, then on."""
    while True:
        ready = yield state
        try:
            state = gen.send(ready)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


async def _cancel_and_drain(conn: psycopg.AsyncConnection[Any], rest: PQGen[Any]) -> None:
    """As ``AsyncConnection.wait()`` on an interruption: a statement still running is
    cancelled on the server and the exchange read to its end (at most 5 s), or else
    the connection is closed, its state unknown."""
    if conn.pgconn.transaction_status != _ACTIVE:
        return
    try:
        await conn._try_cancel(timeout=5.0)
        await waiting.wait_async(rest, conn.pgconn.socket, interval=0.1, timeout=5.0)
    except errors.QueryCanceled:
        pass
    except errors._WaitTimeout:
        logger.warning("statement not ended after its cancellation: closing the connection")
        conn.pgconn.finish()
    except BaseException as exc:  # interrupted again, or the cancellation failed
        logger.warning("cancellation interrupted (%s): closing the connection", type(exc).__name__)
        conn.pgconn.finish()
        if not isinstance(exc, Exception):
            raise
