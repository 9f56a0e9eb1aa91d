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


class Health(msgspec.Struct, frozen=True):
    """What ``health_check()`` found."""

    server_version: str
    latency_ms: float
    pool: PoolStats


def pool_stats(stats: dict[str, int], *, min_size: int, max_size: int) -> PoolStats:
    """:class:`PoolStats` from psycopg_pool's ``get_stats()``."""
    return PoolStats(
        size=stats.get("pool_size", 0),
        available=stats.get("pool_available", 0),
        waiting=stats.get("requests_waiting", 0),
        min_size=stats.get("pool_min", min_size),
        max_size=stats.get("pool_max", max_size),
        requests=stats.get("requests_num", 0),
        errors=stats.get("connections_errors", 0),
    )
