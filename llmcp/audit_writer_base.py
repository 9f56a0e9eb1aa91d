"""What both audit writers share without I/O: the statements, the row builder
and the counters (see :mod:`llmcp.audit_writer_async` for the guarantees)."""

from __future__ import annotations

import datetime
import enum
import logging
import uuid
from collections.abc import Sequence

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from llmcp import validation as check
from llmcp.error_map import map_error
from llmcp.errors import DatabaseUnavailableError, LlmcpError, ValidationError
from llmcp.generated.models import AuditAction
from llmcp.ids import uuid7
from llmcp.inputs import NewAuditLog

logger = logging.getLogger("llmcp.audit_writer")

COLUMNS = (
    "id", "org_id", "app_id", "user_id", "action", "resource_type", "resource_id",
    "request_id", "details", "ip_address", "user_agent", "created_at",
)  # fmt: skip
# each column's type, to read it from a row's jsonb array (``INSERT``)
_TYPES = (
    "uuid", "uuid", "uuid", "uuid", "audit_action", "text", "uuid", "text", "jsonb", "inet",
    "text", "timestamptz",
)  # fmt: skip


def _element(place: int, type_name: str) -> str:
    if type_name == "jsonb":
        return f"item -> {place}"
    if type_name == "text":
        return f"item ->> {place}"
    return f"(item ->> {place})::{type_name}"


# Row-level security refuses COPY FROM into audit_logs for the service role
# (llmcp_app), so a batch goes in as one INSERT of a jsonb array holding one
# array per row (``rows_param``): one statement and one round trip, no
# temporary table nor any other session state (it suits a transaction-mode
# pooler), and one run of the statement-level trigger that checks the whole
# batch's references. Measured (issue 12) against COPY into audit_logs (as the
# owner), COPY into a temporary staging table then INSERT ... SELECT, unnest()
# of one array per column, json_populate_recordset() of one object per row and
# a VALUES list: as many rows/s as COPY, more than any other, and the least
# client CPU of all (psycopg's array and parameter dumpers are Python; msgspec
# encodes in C), for a little more server CPU than COPY. Each row is encoded when
# it is submitted (:func:`audit_row`): the caller's thread does it while the
# writer's waits for the server, and a batch is a join of its rows' bytes.
INSERT = (
    f"INSERT INTO audit_logs ({', '.join(COLUMNS)}) "
    f"SELECT {', '.join(_element(n, t) for n, t in enumerate(_TYPES))} "
    "FROM jsonb_array_elements(%s) AS item"
)
# The idempotent form: a row whose id is taken is skipped. No conflict target:
# ``ON CONFLICT (id)`` makes the server check the SELECT policy on every new
# row, which no row passes without a tenant set. The primary key is the only
# unique index of audit_logs, so DO NOTHING skips exactly the rows whose id is
# taken (a unique index added later would make its duplicates conflicts too).
MERGE = f"{INSERT} ON CONFLICT DO NOTHING"
# one row: whether it went in (``RETURNING 1`` names no column, so it needs no SELECT policy)
MERGE_ROW = f"{MERGE} RETURNING 1"
# the transaction of a write, to learn its outcome when the acknowledgement of its
# COMMIT was lost (pg_xact_status: 'committed', 'aborted', 'in progress' or NULL),
# and which server ran it: its postmaster's start. Another server (a promoted
# standby), or the same one after a crash, may hand out that id again to another
# transaction (one whose id the lost one never got to its WAL), whose status would
# then be taken for the lost one's: a batch counted written and never stored.
XACT_ID = "SELECT pg_current_xact_id(), pg_postmaster_start_time()"
# synchronous_commit for the batch's transaction (pipelined with its INSERT and COMMIT)
COMMIT_LEVEL = "SELECT set_config('synchronous_commit', %s, true)"
XACT_STATUS = "SELECT pg_xact_status(%s::xid8), pg_postmaster_start_time()"

Row = bytes
"""A row to write (:func:`audit_row`): its columns encoded as one JSON array, its id
first (:func:`row_id`). Bytes alone, no tuple nor UUID object: the garbage
collector does not track them, where a queue of 50,000 tracked rows cost each
submitted row about 1.4 us of collections (``python -m bench``'s ingest rows)."""

# the id's place in a row: ``["`` then the canonical form msgspec gives a UUID
_ID = slice(2, 38)
# what a queued row holds besides its encoded columns: the bytes' header, its place in the queue
ROW_OVERHEAD = 48


def row_id(row: Row) -> uuid.UUID:
    """The id of ``row`` (from :func:`audit_row`)."""
    return uuid.UUID(row[_ID].decode())


def rows_size(rows: Sequence[Row]) -> int:
    """About how many bytes of memory ``rows`` (from :func:`audit_row`) hold."""
    return ROW_OVERHEAD * len(rows) + sum(map(len, rows))


class WriterStats(msgspec.Struct, frozen=True):
    """Counters since the writer started, read together (one snapshot).

    ``accepted`` (every row ``submit`` returned an id for) always equals
    ``written + failed + dropped + queue_depth``; ``written`` rows are in the
    table: written and acknowledged by the primary, which with asynchronous
    replication does not yet mean on a standby (see README, Replicas and failover;
    ``DatabaseConfig.synchronous_commit``), ``failed`` ones are on ``writer.failures`` (the latest of them), and
    ``dropped`` ones were given up because the queue was full (only with
    ``drop_when_full``). ``queue_depth`` and ``queue_bytes`` count the rows being
    written too.
    """

    accepted: int
    written: int
    failed: int
    retried: int
    dropped: int
    queue_depth: int
    queue_bytes: int = 0  # about how much memory the queued rows hold (see ``rows_size``)
    batches: int = 0  # statements that stored rows: ``written / batches`` rows each


class Unstored(msgspec.Struct, frozen=True):
    """The rows ``flush`` or ``close`` left unstored at its deadline (false when none).

    ``ids``: not stored (after ``close``, never will be by this writer);
    ``in_doubt``: being committed at the deadline, stored or not (the writer's
    log says which, once it knows).
    """

    ids: tuple[uuid.UUID, ...] = ()
    in_doubt: tuple[uuid.UUID, ...] = ()

    @property
    def count(self) -> int:
        return len(self.ids) + len(self.in_doubt)

    def __bool__(self) -> bool:
        return bool(self.ids or self.in_doubt)


class FailureKind(enum.StrEnum):
    """Why a row can never be stored."""

    CONFLICT = "conflict"  # its id is in the table already (a caller-supplied duplicate)
    REFERENCE = "reference"  # its organization, application or user does not exist
    CONSTRAINT = "constraint"  # another constraint refused it (say, no partition for its date)
    DATA = "data"  # a value the server refused (SQLSTATE class 22)
    LIMIT = "limit"  # a value beyond what the server holds (class 54)
    CLIENT = "client"  # could not be encoded or sent (no SQLSTATE)
    DATABASE = "database"  # any other error that does not go away by itself


class WriteFailure(msgspec.Struct, frozen=True):
    """A row refused for good: its id, why (``kind``) and a message without its values."""

    id: uuid.UUID
    kind: FailureKind
    message: str


# SQLSTATE classes of errors that go away by themselves, so the batch is retried:
# connection exception, transaction rollback (serialization failure, deadlock),
# insufficient resources (disk full, too many connections), operator intervention
# (shutdown, statement timeout, cannot connect now), system error, snapshot too old.
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "58", "72"})
_TRANSIENT_STATES = frozenset({"55P03", "55006", "25P03", "25P04"})  # lock, object in use, timeouts
_PERMANENT_STATES = frozenset({"40002"})  # an integrity violation reported at COMMIT


LOGGED_PER_PART = 5
"""Rows refused for good logged one by one per written part; the rest as a count."""


def is_transient(exc: BaseException) -> bool:
    """Whether writing the same rows again may succeed (every other error is the rows' own).

    Lost connections (no SQLSTATE), an unavailable pool and the SQLSTATE classes
    above are transient; every other SQLSTATE class (data exceptions, integrity
    violations, program limits, syntax or privileges, internal errors, ...) and
    every client-side error (a value psycopg cannot encode) is not.
    """
    if isinstance(exc, LlmcpError):
        return isinstance(exc, DatabaseUnavailableError)
    if not isinstance(exc, psycopg.Error):
        return False  # raised while encoding a row: ValueError, TypeError, ...
    state = exc.sqlstate
    if state is None:  # lost, also as PgBouncer reports it (see llmcp.error_map)
        lost = isinstance(map_error(exc, operation="audit_writer"), DatabaseUnavailableError)
        return lost or isinstance(exc, psycopg.InterfaceError)
    if state in _PERMANENT_STATES:
        return False
    return state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES


def failure_of(row_id: uuid.UUID, exc: BaseException) -> WriteFailure:
    """The :class:`WriteFailure` of one row refused for good by ``exc`` (no values quoted)."""
    state = exc.sqlstate if isinstance(exc, psycopg.Error) else None
    if state is None:
        kind = FailureKind.CLIENT
    elif state == "23505":
        kind = FailureKind.CONFLICT
    elif state == "23503":
        kind = FailureKind.REFERENCE
    elif state.startswith("23"):
        kind = FailureKind.CONSTRAINT
    elif state.startswith("22"):
        kind = FailureKind.DATA
    elif state.startswith("54"):
        kind = FailureKind.LIMIT
    else:
        kind = FailureKind.DATABASE
    if isinstance(exc, LlmcpError):  # the pool, closed before the row was stored
        kind, message = FailureKind.DATABASE, str(exc)
    elif isinstance(exc, psycopg.Error):
        message = str(map_error(exc, operation="audit_writer"))
        if state is not None:
            message = f"{message} [SQLSTATE {state}]"
    else:
        message = f"audit_writer: the row cannot be encoded ({type(exc).__name__})"
    return WriteFailure(row_id, kind, message)


def conflict(row_id: uuid.UUID) -> WriteFailure:
    """The failure of a row whose id was in the table before the writer stored it."""
    return WriteFailure(
        row_id, FailureKind.CONFLICT, "audit_writer: a row with this id exists already"
    )


_ROW = msgspec.json.Encoder()


def _encode_rows(rows: Sequence[Row]) -> bytes:
    return b"[" + b",".join(rows) + b"]"


def rows_param(rows: Sequence[Row]) -> Jsonb:
    """The parameter of :data:`INSERT` (or :data:`MERGE`): ``rows`` as one JSON array of
    arrays, joined when the statement is sent."""
    return Jsonb(rows, dumps=_encode_rows)


def _timestamp(when: datetime.datetime) -> datetime.datetime | str:
    # msgspec drops the seconds of a UTC offset such as +00:09:21 (local mean
    # time), which would move the instant stored: any zone but UTC goes as
    # Python's ISO form
    return when if when.tzinfo is datetime.UTC else when.isoformat()


def audit_row(new: NewAuditLog, *, max_details_bytes: int, max_depth: int) -> tuple[uuid.UUID, Row]:
    """Validate ``new`` and turn it into a row to write (id and time filled in): the
    row's id and the row.

    The row is encoded here, once, details and all: a value that cannot be
    encoded or stored (see :func:`llmcp.validation.json_document`) is a
    ValidationError now, not a row that fails in the writer later.
    """
    check.instance("new", new, NewAuditLog)
    details = check.json_document(
        "details", new.details, max_bytes=max_details_bytes, max_depth=max_depth
    )
    row_id = check.optional_uuid("id", new.id) or uuid7()
    columns = (
        row_id,
        check.uuid_value("org_id", new.org_id),
        check.optional_uuid("app_id", new.app_id),
        check.optional_uuid("user_id", new.user_id),
        check.member("action", new.action, AuditAction).value,
        check.text("resource_type", new.resource_type, max_length=100),
        check.optional_uuid("resource_id", new.resource_id),
        check.optional_text("request_id", new.request_id, max_length=200),
        msgspec.Raw(details),  # encoded already: embedded as it is
        check.optional_ip("ip_address", new.ip_address),
        check.optional_text("user_agent", new.user_agent, max_length=1000, min_length=0),
        _timestamp(
            check.optional_aware("created_at", new.created_at)
            or datetime.datetime.now(datetime.UTC)
        ),
    )
    try:
        return row_id, _ROW.encode(columns)
    except (msgspec.EncodeError, TypeError, ValueError, OverflowError):
        raise ValidationError("the audit row cannot be encoded as JSON") from None
