"""What both audit writers share without I/O: the COPY statements, the row builder
and the counters (see :mod:`llmcp.audit_writer_async` for the guarantees)."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import msgspec
from psycopg.types.json import Jsonb

from llmcp import validation as check
from llmcp.adapter import encode_json
from llmcp.generated.models import AuditAction
from llmcp.ids import uuid7
from llmcp.inputs import NewAuditLog

logger = logging.getLogger("llmcp.audit_writer")

COLUMNS = (
    "id", "org_id", "app_id", "user_id", "action", "resource_type", "resource_id",
    "request_id", "details", "ip_address", "user_agent", "created_at",
)  # fmt: skip
COPY = f"COPY audit_logs ({', '.join(COLUMNS)}) FROM STDIN"
STAGE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS audit_logs_incoming "
    "(LIKE audit_logs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
STAGE_COPY = f"COPY audit_logs_incoming ({', '.join(COLUMNS)}) FROM STDIN"
STAGE_MERGE = (
    f"INSERT INTO audit_logs ({', '.join(COLUMNS)}) "
    f"SELECT {', '.join(COLUMNS)} FROM audit_logs_incoming ON CONFLICT (id) DO NOTHING"
)
INSERT_ONE = (
    f"INSERT INTO audit_logs ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT (id) DO NOTHING"
)

Row = tuple[Any, ...]


class WriterStats(msgspec.Struct, frozen=True):
    """Counters since the writer started.

    ``accepted`` = ``written`` + ``failed`` + ``queue_depth`` at any quiet moment;
    ``dropped`` rows were never accepted (only with ``drop_when_full``).
    """

    accepted: int
    written: int
    failed: int
    retried: int
    dropped: int
    queue_depth: int


def audit_row(new: NewAuditLog, *, max_details_bytes: int, max_depth: int) -> Row:
    """Validate ``new`` and turn it into a COPY row (id and time filled in).

    The details are encoded here, once: a value that cannot be encoded or stored
    (see :func:`llmcp.validation.json_document`) is a ValidationError now, not a
    row that fails in the writer later.
    """
    check.instance("new", new, NewAuditLog)
    details = check.json_document(
        "details", new.details, max_bytes=max_details_bytes, max_depth=max_depth
    )
    return (
        check.optional_uuid("id", new.id) or uuid7(),
        check.uuid_value("org_id", new.org_id),
        check.optional_uuid("app_id", new.app_id),
        check.optional_uuid("user_id", new.user_id),
        check.member("action", new.action, AuditAction).value,
        check.text("resource_type", new.resource_type, max_length=100),
        check.optional_uuid("resource_id", new.resource_id),
        check.optional_text("request_id", new.request_id, max_length=200),
        Jsonb(msgspec.Raw(details), dumps=encode_json),  # Raw: encoded already
        check.optional_ip("ip_address", new.ip_address),
        check.optional_text("user_agent", new.user_agent, max_length=1000, min_length=0),
        check.optional_aware("created_at", new.created_at) or datetime.datetime.now(datetime.UTC),
    )
