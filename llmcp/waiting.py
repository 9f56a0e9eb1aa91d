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
the connection when that fails. On a connection of llmcp's pool
(:class:`StandingConnection`) the socket's reader stays registered from one
exchange to the next, across checkouts (see :class:`_Reader`).

asyncio internals used: the selector event loop's ``_add_reader`` (it returns the
reader's handle) and ``_remove_reader``. psycopg internals used (see
llmcp.pipelined): ``AsyncConnection._try_cancel``, ``psycopg.errors._WaitTimeout``,
``psycopg.waiting.wait_async`` and the ``WAIT_*`` / ``READY_*`` states of its
generators.
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
_IDLE = pq.TransactionStatus.IDLE
_OK = pq.ConnStatus.OK
_INTERRUPTED = (asyncio.CancelledError, KeyboardInterrupt, SystemExit)
_READER = "_llmcp_reader"


def _wake(future: asyncio.Future[int], ready: int) -> None:
    if not future.done():  # both directions may fire in one loop iteration
        future.set_result(ready)


class _Reader:
    """The socket of a connection of llmcp's pool, watched from one exchange to the
    next, across checkouts, rather than once per wait.

    A reader added and removed around each wait costs two ``epoll_ctl`` system
    calls per exchange, which is what a request's exchanges cost most besides
    their own send and receive (asyncpg's transport, registered once, makes
    none); added at a checkout's first exchange and removed at its return, two
    per request (standing across checkouts instead: 415 -> 396 us of client
    CPU per gateway request, an A/B of 45 turns in one process). Left
    registered, the reader must never outlive the socket: a stale registration
    of a closed descriptor would break the next connection given the same
    number. So it is removed when the
    connection is closed (:class:`StandingConnection`, whoever closes it: the
    pool at the end of its lifetime, a failed check, the pool's own close), as
    soon as an exchange fails (libpq closes the socket of a lost connection),
    when a connection is given back in any state but idle and working
    (:func:`let_go`), and by itself when the socket is readable with no
    exchange waiting (a notice, the server gone, while the connection sits in
    the pool). psycopg's own waits replace it on the socket (asyncio cancels
    its handle then): the next exchange adds it again. Only a checked-out
    connection (:func:`hold`) uses it: the pool's own statements are psycopg's.

    Uses the selector event loop's ``_add_reader`` (which returns the handle);
    on any other loop every wait adds and removes its reader, as psycopg does.
    """

    __slots__ = ("fileno", "future", "handle", "held", "loop", "woken_idle")

    def __init__(self) -> None:
        self.held = False
        self.fileno = -1
        self.loop: asyncio.AbstractEventLoop | None = None
        self.handle: asyncio.Handle | None = None
        self.future: asyncio.Future[int] | None = None
        self.woken_idle = False  # called once with no exchange waiting

    def ready(self) -> None:
        future = self.future
        if future is None:
            # readable with no exchange waiting. Mostly it is not: the last exchange
            # read its answer in the loop iteration whose poll had reported it once
            # more (about once a request). Reported again at a later iteration, it
            # truly is (a notice, the server gone): not ours to watch
            if self.woken_idle:
                self.stop()
            else:
                self.woken_idle = True
        elif not future.done():
            future.set_result(READY_R)

    def start(self, fileno: int) -> bool:
        """Watch ``fileno`` on the running loop; False if that loop cannot say when the
        reader is replaced (not a selector loop)."""
        self.stop()
        loop = asyncio.get_running_loop()
        add = getattr(loop, "_add_reader", None)
        handle = add(fileno, self.ready) if add is not None else None
        if not isinstance(handle, asyncio.Handle):
            return False
        self.loop, self.fileno, self.handle = loop, fileno, handle
        return True

    def stop(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None and not handle.cancelled():  # still the socket's reader
            assert self.loop is not None
            self.loop._remove_reader(self.fileno)  # type: ignore[attr-defined]


def hold(conn: psycopg.AsyncConnection[Any]) -> None:
    """``conn`` was checked out: its socket may stay watched between exchanges."""
    reader: _Reader | None = getattr(conn, _READER, None)
    if reader is None:
        reader = _Reader()
        try:
            setattr(conn, _READER, reader)
        except AttributeError:  # a connection class with __slots__: each wait on its own
            return
    reader.held = True


def let_go(conn: psycopg.AsyncConnection[Any]) -> None:
    """``conn`` goes back to llmcp's pool: its socket stays watched if it is idle and
    working (its close removes the reader: :class:`StandingConnection`), else not."""
    pgconn = conn.pgconn
    if pgconn.status != _OK or pgconn.transaction_status != _IDLE:
        forget(conn)  # the pool rolls it back or closes it: psycopg's waits, or none
        return
    reader: _Reader | None = getattr(conn, _READER, None)
    if reader is not None:
        reader.held = False


def forget(conn: psycopg.AsyncConnection[Any]) -> None:
    """Stop watching ``conn``'s socket for good (it is about to be closed)."""
    reader: _Reader | None = getattr(conn, _READER, None)
    if reader is not None:
        reader.held = False
        reader.stop()


class StandingConnection(psycopg.AsyncConnection[Any]):
    """The connections of llmcp's pool: closing one removes its socket's standing
    reader first, whoever closes it (psycopg_pool's ``_close_connection`` and every
    other path call ``close()``)."""

    async def close(self) -> None:
        forget(self)
        await super().close()


async def wait(conn: psycopg.AsyncConnection[Any], gen: PQGen[RV]) -> RV:
    """Run ``gen`` (an exchange) on ``conn``'s socket to its end; returns what it returns."""
    try:
        state = next(gen)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    fileno = conn.pgconn.socket
    reader: _Reader | None = getattr(conn, _READER, None)
    if reader is not None and not reader.held:
        reader = None
    try:
        while True:
            if state == WAIT_R and reader is not None:
                handle = reader.handle
                stale = handle is None or handle.cancelled() or reader.fileno != fileno
                # registered on another loop (a pool used from a new loop): start anew
                if (stale or reader.loop is not asyncio.get_running_loop()) and (
                    not reader.start(fileno)
                ):
                    reader = None
                    continue
                assert reader.loop is not None
                future: asyncio.Future[int] = reader.loop.create_future()
                reader.future, reader.woken_idle = future, False
                try:
                    ready = await future
                finally:
                    reader.future = None
            else:
                ready = await _wait_once(fileno, state)
            state = gen.send(ready)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    except OSError as exc:
        if reader is not None:
            reader.stop()
        raise psycopg.OperationalError("connection socket closed") from exc
    except _INTERRUPTED:
        if reader is not None:
            reader.stop()
        await _cancel_and_drain(conn, _resumed(gen, state))
        raise
    except BaseException:
        if reader is not None:  # libpq may have closed the socket of a lost connection
            reader.stop()
        raise


async def _wait_once(fileno: int, state: int) -> int:
    """One wait for ``state`` on ``fileno``, its readers added and removed around it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    if state & WAIT_R:
        loop.add_reader(fileno, _wake, future, READY_R)
    if state & WAIT_W:
        loop.add_writer(fileno, _wake, future, READY_W)
    try:
        return await future
    finally:
        if state & WAIT_R:
            loop.remove_reader(fileno)
        if state & WAIT_W:
            loop.remove_writer(fileno)


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
