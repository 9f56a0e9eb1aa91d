"""Which server a read goes to: the primary, or a replica when stale is fine.

A read goes to a replica only when three things hold: the repository method is
one whose answer may lag (the paged lists, the catalog lists, the metrics: the
repositories call them through ``_read``), the caller opted in for the block
(:func:`stale_ok`, ``tx.stale_ok()``), and no transaction is open (a
transaction's reads run on its own connection, the primary's).

Read-your-writes: once a context (a request's task, a thread) has written
through llmcp, its stale-tolerant reads stay on the primary for the rest of
that context (:func:`note_write`). A replica replays a write a moment after
the primary commits it (see README, Replicas and failover, for the measured
misses); waiting for it would cost a position per write and a wait per read,
while the primary answers at once. The marker is a context variable, so it
costs no round trip, and a new request (a new task, or a ``copy_context()``)
starts without it; a thread reused across requests calls :func:`forget_writes`
(``tx.forget_writes()``) at the start of each.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_stale_ok: ContextVar[bool] = ContextVar("llmcp_stale_ok", default=False)
_wrote: ContextVar[bool] = ContextVar("llmcp_wrote", default=False)

_READ_NAMES = frozenset({"list", "version_of"})


@contextmanager
def stale_ok(enabled: bool = True) -> Iterator[None]:
    """Let the stale-tolerant reads of the block go to a replica (``enabled=False``:
    keep them on the primary, inside an outer block that allows them)."""
    token = _stale_ok.set(enabled)
    try:
        yield
    finally:
        _stale_ok.reset(token)


def note_write() -> None:
    """This context wrote (or may have): its stale-tolerant reads stay on the primary."""
    if not _wrote.get():
        _wrote.set(True)


def forget_writes() -> None:
    """Start afresh: the next stale-tolerant reads of this context may use a replica."""
    _wrote.set(False)


def wrote() -> bool:
    """Whether this context wrote through llmcp (so its reads stay on the primary)."""
    return _wrote.get()


def replica_allowed() -> bool:
    """Whether a stale-tolerant read in this context may go to a replica (outside a
    transaction: the caller checks that)."""
    return _stale_ok.get() and not _wrote.get()


def is_read(query_name: str) -> bool:
    """Whether a generated query only reads (llmcp's naming: ``get_*``, ``list``,
    ``version_of``); every other query counts as a write for read-your-writes."""
    return query_name.startswith("get_") or query_name in _READ_NAMES
