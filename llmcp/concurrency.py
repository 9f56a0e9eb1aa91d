"""The few concurrency primitives the audit writer needs, in both flavours.

Async code (``*_async.py``) uses the ``Async``/``_async`` names; its generated
sync twin gets the plain names (see ``llmcp.dev.twins``): a task becomes
a thread, an asyncio condition a threading one. Hand-written, like psycopg's
``_acompat``, because a task and a thread are not the same code.
"""

from __future__ import annotations

import asyncio
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


async def join_async(worker: asyncio.Task[None]) -> None:
    await worker


def join(worker: threading.Thread) -> None:
    worker.join()
