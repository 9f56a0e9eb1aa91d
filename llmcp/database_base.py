"""What both databases share without I/O: the idle-socket look, pool statistics and
the health report."""

from __future__ import annotations

import select
from typing import Any

import msgspec
import psycopg


def server_spoke(conn: psycopg.BaseConnection[Any]) -> bool:
    """Whether the server wrote to this idle connection, seen without a round trip.

    An idle connection has nothing to read unless the server wrote to it: its
    last words before dropping it (a restart, a terminated backend), end of
    file, or, rarely, a notification. A zero-timeout poll costs one system call.
    The words may arrive a moment before end of file, so reading them cannot
    tell a dying connection from a live one: a ping can.
    """
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):  # closed already
        return True
    return bool(readable)


class PoolStats(msgspec.Struct, frozen=True):
    """A snapshot of the pool (see psycopg_pool's ``get_stats``)."""

    size: int
    available: int
    waiting: int
    min_size: int
    max_size: int
    requests: int
    errors: int


class ReplicaHealth(msgspec.Struct, frozen=True):
    """One replica as ``health_check()`` found it (``index`` in ``replica_urls``)."""

    index: int
    ok: bool
    latency_ms: float | None = None  # None when it did not answer
    # how far its replay is behind what it has received (None: not a standby)
    replay_lag_bytes: int | None = None


class Health(msgspec.Struct, frozen=True):
    """What ``health_check()`` found."""

    server_version: str
    latency_ms: float
    pool: PoolStats
    replicas: tuple[ReplicaHealth, ...] = ()


# what health_check asks a replica: the version and how far replay trails receipt
REPLICA_HEALTH = (
    "SELECT current_setting('server_version'),"
    " pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::int8"
)


class ReplicaTurns:
    """Round-robin over the replicas, skipping one for ``retry_after`` seconds after it
    failed (its reads go to the primary meanwhile). No I/O: the databases hold the pools."""

    def __init__(self, count: int, retry_after: float) -> None:
        self._down_until = [0.0] * count
        self._next = 0
        self._retry_after = retry_after

    def order(self, now: float) -> list[int]:
        """The replicas to try for one read, in turn; empty when all are resting."""
        count = len(self._down_until)
        start, self._next = self._next, (self._next + 1) % max(count, 1)
        turns = [(start + step) % count for step in range(count)]
        return [index for index in turns if self._down_until[index] <= now]

    def failed(self, index: int, now: float) -> None:
        self._down_until[index] = now + self._retry_after

    def is_down(self, index: int, now: float) -> bool:
        return self._down_until[index] > now


def pool_stats(
    stats: dict[str, int], *, min_size: int, max_size: int, in_line: int = 0
) -> PoolStats:
    """:class:`PoolStats` from psycopg_pool's ``get_stats()``; ``in_line``: callers
    waiting in front of the pool (llmcp.pool_gate), counted as waiting too."""
    return PoolStats(
        size=stats.get("pool_size", 0),
        available=stats.get("pool_available", 0),
        waiting=stats.get("requests_waiting", 0) + in_line,
        min_size=stats.get("pool_min", min_size),
        max_size=stats.get("pool_max", max_size),
        requests=stats.get("requests_num", 0),
        errors=stats.get("connections_errors", 0),
    )
