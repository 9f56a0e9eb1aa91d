"""The few concurrency primitives the audit writer and the admission cache need, in both flavours.

Async code (``*_async.py``) uses the ``Async``/``_async`` names; its generated
sync twin gets the plain names (see ``llmcp.dev.twins``): a task becomes
a thread, an asyncio condition a threading one. Hand-written, like psycopg's
``_acompat``, because a task and a thread are not the same code.
"""

from __future__ import annotations

import asyncio
import atexit
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any

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
