"""Monthly partitions of audit_logs and inference_requests: create ahead, list, retire.

The SQL lives in the migration that partitions the tables (``llmcp_create_partitions``,
``llmcp_retire_partition``); this module runs it, as the owner (the migration URL),
and does the one step SQL cannot: ``DETACH PARTITION ... CONCURRENTLY`` runs outside
a transaction block, so the connection is in autocommit. Retiring a partition is:

1. ``DETACH ... CONCURRENTLY`` (readers and writers of the table go on), or
   ``DETACH ... FINALIZE`` when an earlier run was interrupted in the middle of it;
2. one transaction: record what goes (an audit partition leaves ``audit_logs_purged``
   entries per organization; an inference partition takes the rollup rows of its
   hours and its request keys), then ``DROP TABLE``.

A table left detached by an interrupted run (step 2 never ran) is found by its name
and retired by the next run, so ``drop`` can always be run again.
"""

from __future__ import annotations

import builtins
import datetime
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from llmcp import conninfo
from llmcp.error_map import map_error
from llmcp.errors import LlmcpError, ValidationError

__all__ = ["PARENTS", "Partition", "Partitions", "Retired", "without_partitions"]

PARENTS = ("audit_logs", "inference_requests")
"""The partitioned tables, by month of ``created_at`` (UTC)."""

_NAME = re.compile(r"^(audit_logs|inference_requests)_(?:p(\d{4})_(\d{2})|history)$")
# a partition's name in a schema dump: its own objects are maintenance, not schema
_IN_DUMP = re.compile(r"(?:audit_logs|inference_requests)_(?:p\d{4}_\d{2}|history)(?![0-9])")
_BLOCK = re.compile(r"(?=^--\n-- (?:Name|Data for Name): )", re.M)

_PARTITIONS = """
SELECT
    p.relname AS parent,
    c.relname AS name,
    (regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz,
    (regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz,
    greatest(c.reltuples, 0)::bigint AS rows_estimate,
    pg_catalog.pg_total_relation_size(c.oid) AS bytes,
    i.inhdetachpending AS detach_pending
FROM pg_catalog.pg_inherits AS i
INNER JOIN pg_catalog.pg_class AS c ON i.inhrelid = c.oid
INNER JOIN pg_catalog.pg_class AS p ON i.inhparent = p.oid
WHERE p.relname = ANY(%s) AND p.relnamespace = current_schema()::regnamespace
ORDER BY p.relname, 4
"""
# tables named as partitions but attached to nothing: left by an interrupted drop
_DETACHED = """
SELECT c.relname
FROM pg_catalog.pg_class AS c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
    AND NOT c.relispartition AND c.relname ~ '^(audit_logs|inference_requests)_(p[0-9]{4}_[0-9]{2}|history)$'
ORDER BY c.relname
"""


class Partition(msgspec.Struct, frozen=True):
    """One partition: its table, name, range ``[start, end)`` (start None: from the
    beginning of time), the planner's row estimate, size in bytes (indexes included),
    and whether a ``DETACH ... CONCURRENTLY`` of it was interrupted."""

    parent: str
    name: str
    start: datetime.datetime | None
    end: datetime.datetime
    rows_estimate: int
    bytes: int
    detach_pending: bool


class Retired(msgspec.Struct, frozen=True):
    """A partition that was detached and dropped, and how many rows went with it."""

    parent: str
    name: str
    rows: int


def month_start(moment: datetime.datetime, months_back: int = 0) -> datetime.datetime:
    """The start (UTC) of the month ``months_back`` months before ``moment``'s."""
    utc = moment.astimezone(datetime.UTC)
    index = utc.year * 12 + utc.month - 1 - months_back
    return datetime.datetime(index // 12, index % 12 + 1, 1, tzinfo=datetime.UTC)


def without_partitions(dump: str) -> str:
    """A schema dump without the partitions' own objects (tables, indexes, triggers,
    attachments): which months exist depends on when the database was migrated, so
    the committed ``dbmate/schema.sql`` shows the partitioned tables only."""
    blocks = _BLOCK.split(dump)
    return "".join(
        b for b in blocks if not _IN_DUMP.search(b.split("\n", 2)[1] if "\n" in b else "")
    )


class Partitions:
    """Partition maintenance through ``url`` (the owner's: ``LLMCP_MIGRATION_URL``).

    Every method raises llmcp's errors: :class:`~llmcp.errors.ConnectionFailedError`
    when the server cannot be reached, the mapped error of a failed statement.
    """

    def __init__(self, url: str, *, connect_timeout: float | None = 10) -> None:
        conninfo.remember(url)
        self._url = url
        self._connect_timeout = connect_timeout

    def __repr__(self) -> str:
        return f"Partitions({conninfo.redact(self._url, self._url)!r})"

    def create(self, ahead: int = 3) -> builtins.list[str]:
        """Create the missing months of both tables through the current month plus
        ``ahead`` (0..120); returns the names created (none when all exist)."""
        if isinstance(ahead, bool) or not isinstance(ahead, int) or not 0 <= ahead <= 120:
            raise ValidationError("ahead: must be a whole number of months, 0..120")
        with self._connection("partitions.create") as conn:
            rows = conn.execute("SELECT llmcp_create_partitions(%s)", (ahead,)).fetchall()
        return [str(r[0]) for r in rows]

    def list(self) -> list[Partition]:
        """Every partition of both tables, oldest first per table."""
        with self._connection("partitions.list") as conn:
            rows = conn.execute(_PARTITIONS, (list(PARENTS),)).fetchall()
        return [Partition(*row) for row in rows]

    def drop(
        self, older_than: int, *, now: datetime.datetime | None = None
    ) -> builtins.list[Retired]:
        """Detach (concurrently) and drop every partition whose whole range ends at
        or before the start of the month ``older_than`` months before ``now``'s
        (default: the server's clock), first finishing what an interrupted run left
        (a table detached but not dropped; a detach left pending, which is finished
        whatever its age). Returns what went."""
        if isinstance(older_than, bool) or not isinstance(older_than, int) or older_than < 1:
            raise ValidationError("older_than: must be a whole number of months, 1 or more")
        retired: builtins.list[Retired] = []
        with self._connection("partitions.drop") as conn:
            moment = now or conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
            cutoff = month_start(moment, older_than)
            reason = f"retention: older than {older_than} months (before {cutoff.date()})"
            partitions = [Partition(*r) for r in conn.execute(_PARTITIONS, (list(PARENTS),))]
            for name in [str(r[0]) for r in conn.execute(_DETACHED)]:  # an interrupted run's
                retired.append(self._retire(conn, name, partitions, reason))
            # a parent allows one pending detach at a time: finish those first
            pending = [p for p in partitions if p.detach_pending]
            due = [p for p in partitions if p.end <= cutoff and not p.detach_pending]
            for part in pending + due:
                self._detach(conn, part)
                retired.append(self._retire(conn, part.name, partitions, reason))
        return retired

    # -- steps ----------------------------------------------------------------------

    @staticmethod
    def _detach(conn: psycopg.Connection[Any], part: Partition) -> None:
        how = "FINALIZE" if part.detach_pending else "CONCURRENTLY"
        conn.execute(
            sql.SQL("ALTER TABLE {} DETACH PARTITION {} " + how).format(
                sql.Identifier(part.parent), sql.Identifier(part.name)
            )
        )

    @staticmethod
    def _retire(
        conn: psycopg.Connection[Any], name: str, partitions: builtins.list[Partition], reason: str
    ) -> Retired:
        found = _NAME.match(name)
        assert found is not None
        parent = found[1]
        if found[2]:  # a month: its range is in its name
            start = datetime.datetime(int(found[2]), int(found[3]), 1, tzinfo=datetime.UTC)
            end: datetime.datetime | None = month_start(start + datetime.timedelta(days=32))
            start_of: datetime.datetime | None = start
        else:  # history: up to where the oldest month still attached starts
            start_of = None
            same = [p for p in partitions if p.parent == parent and p.name != name and p.start]
            end = min((p.start for p in same if p.start), default=None)
            if end is None:
                raise LlmcpError(f"partitions.drop: cannot tell where {name} ends")
        with conn.transaction():
            rows = conn.execute(
                "SELECT llmcp_retire_partition(%s, %s, %s, %s, %s)",
                (parent, name, start_of, end, reason),
            ).fetchone()
        return Retired(parent, name, int(rows[0]) if rows else 0)

    @contextmanager
    def _connection(self, operation: str) -> Iterator[psycopg.Connection[Any]]:
        try:
            timeout = (
                None if self._connect_timeout is None else max(1, round(self._connect_timeout))
            )
            conn = psycopg.connect(self._url, autocommit=True, connect_timeout=timeout)
        except psycopg.OperationalError as exc:
            raise conninfo.connection_error(exc, self._url) from None
        try:
            with conn:
                conn.execute("SET timezone = 'UTC'")
                yield conn
        except psycopg.Error as exc:
            raise map_error(exc, operation=operation) from None
