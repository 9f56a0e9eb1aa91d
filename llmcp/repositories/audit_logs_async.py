"""Audit logs: an append-only trail, paged by offset or by keyset cursor."""

from __future__ import annotations

import builtins
import datetime
import uuid

from llmcp import routing
from llmcp import validation as check
from llmcp.audit_writer_async import AsyncAuditWriter
from llmcp.errors import ValidationError
from llmcp.generated.audit_logs import AsyncAuditLogsQueries
from llmcp.generated.models import AuditAction, AuditLog
from llmcp.ids import uuid7
from llmcp.inputs import NewAuditLog
from llmcp.json_types import JsonValue
from llmcp.paging import Page
from llmcp.repositories.base_async import AsyncRepository
from llmcp.transactions_async import AsyncTransactionManager


def _range(start: datetime.datetime, end: datetime.datetime) -> dict[str, datetime.datetime]:
    start, end = check.aware("start", start), check.aware("end", end)
    if start > end:
        raise ValidationError("start: must not be after end")
    return {"start_time": start, "end_time": end}


class AsyncAuditLogRepository(AsyncRepository):
    """Insert and read audit logs (newest first; ``page_by_*`` for keyset pages)."""

    entity = "audit_logs"
    _queries = AsyncAuditLogsQueries()

    def __init__(
        self,
        transactions: AsyncTransactionManager,
        *,
        cursor_secret: bytes,
        writer: AsyncAuditWriter,
    ) -> None:
        super().__init__(transactions, cursor_secret=cursor_secret)
        self.writer = writer

    async def async_insert(self, new: NewAuditLog) -> uuid.UUID:
        """Queue one audit log for the background writer; returns its id at once.

        Validated here as ``insert`` validates (a ValidationError, never a row
        that fails later); batched with COPY, retried while the database is
        away, stored exactly once; ``writer.flush()`` waits for everything
        accepted so far. Not part of the current transaction: a rollback does
        not take it back. Counts as a write of this context (llmcp.routing): once
        flushed, its row is on the primary before it is on a replica.
        """
        check.instance("new", new, NewAuditLog)
        routing.note_write()
        return await self.writer.submit(new)

    def _details(self, details: object) -> dict[str, JsonValue]:
        """``details`` if the database can store it: see ``json_document``."""
        config = self._database.config
        value = check.json_object("details", details, max_depth=config.json_max_depth)
        check.json_encoded("details", value, max_bytes=config.audit_details_max_bytes)
        return value

    async def insert(self, new: NewAuditLog) -> AuditLog:
        """Insert one audit log now (in the current transaction, if any)."""
        check.instance("new", new, NewAuditLog)
        return await self._run(
            self._queries.insert,
            id=check.optional_uuid("id", new.id) or uuid7(),
            org_id=check.uuid_value("org_id", new.org_id),
            app_id=check.optional_uuid("app_id", new.app_id),
            user_id=check.optional_uuid("user_id", new.user_id),
            action=check.member("action", new.action, AuditAction),
            resource_type=check.text("resource_type", new.resource_type, max_length=100),
            resource_id=check.optional_uuid("resource_id", new.resource_id),
            request_id=check.optional_text("request_id", new.request_id, max_length=200),
            details=self._details(new.details),
            ip_address=check.optional_ip("ip_address", new.ip_address),
            user_agent=check.optional_text(
                "user_agent", new.user_agent, max_length=1000, min_length=0
            ),
            created_at=check.optional_aware("created_at", new.created_at),
        )

    async def get_by_id(self, org_id: uuid.UUID, log_id: uuid.UUID) -> AuditLog | None:
        """The organization's audit log entry with this id (another organization's: None)."""
        return await self._run(
            self._queries.get_by_id,
            org_id=check.uuid_value("org_id", org_id),
            id=check.uuid_value("log_id", log_id),
        )

    async def get_by_request_id(
        self, org_id: uuid.UUID, request_id: str
    ) -> builtins.list[AuditLog]:
        """Every log of one request of the organization, oldest first."""
        request = check.text("request_id", request_id, max_length=200)
        return await self._run(
            self._queries.get_by_request_id,
            org_id=check.uuid_value("org_id", org_id),
            request_id=request,
        )

    async def purge(self, org_id: uuid.UUID, before: datetime.datetime, reason: str) -> int:
        """Delete the organization's entries created before ``before`` (retention or
        legal erasure) and return how many. The purge is recorded as an entry
        (``AuditAction.AUDIT_LOGS_PURGED``: count, time span, role, ``reason``);
        the records of earlier purges are kept.

        Only a member of ``llmcp_audit_admin`` (or the owner) may purge: the
        service's own role is refused (SQLSTATE 42501).
        """
        purged = await self._run(
            self._queries.purge,
            org_id=check.uuid_value("org_id", org_id),
            before=check.aware("before", before),
            reason=check.text("reason", reason, max_length=1000),
        )
        return purged or 0

    # -- offset pages ---------------------------------------------------------

    async def get_by_org_id(
        self, org_id: uuid.UUID, limit: int = 100, offset: int = 0
    ) -> builtins.list[AuditLog]:
        return await self._read(
            self._queries.get_by_org_id, org_id=check.uuid_value("org_id", org_id),
            limit=check.limit(limit), offset=check.offset(offset),
        )  # fmt: skip

    async def get_by_app_id(
        self, org_id: uuid.UUID, app_id: uuid.UUID, limit: int = 100, offset: int = 0
    ) -> builtins.list[AuditLog]:
        return await self._read(
            self._queries.get_by_app_id, org_id=check.uuid_value("org_id", org_id),
            app_id=check.uuid_value("app_id", app_id),
            limit=check.limit(limit), offset=check.offset(offset),
        )  # fmt: skip

    async def get_by_user_id(
        self, org_id: uuid.UUID, user_id: uuid.UUID, limit: int = 100, offset: int = 0
    ) -> builtins.list[AuditLog]:
        return await self._read(
            self._queries.get_by_user_id, org_id=check.uuid_value("org_id", org_id),
            user_id=check.uuid_value("user_id", user_id),
            limit=check.limit(limit), offset=check.offset(offset),
        )  # fmt: skip

    async def get_by_date_range(
        self,
        org_id: uuid.UUID,
        start: datetime.datetime,
        end: datetime.datetime,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[AuditLog]:
        """Logs with ``start <= created_at < end``."""
        return await self._read(
            self._queries.get_by_date_range, org_id=check.uuid_value("org_id", org_id),
            **_range(start, end), limit=check.limit(limit), offset=check.offset(offset),
        )  # fmt: skip

    async def get_by_action(
        self, org_id: uuid.UUID, action: AuditAction, limit: int = 100, offset: int = 0
    ) -> builtins.list[AuditLog]:
        return await self._read(
            self._queries.get_by_action, org_id=check.uuid_value("org_id", org_id),
            action=check.member("action", action, AuditAction),
            limit=check.limit(limit), offset=check.offset(offset),
        )  # fmt: skip

    # -- keyset pages -----------------------------------------------------------

    async def page_by_org_id(
        self, org_id: uuid.UUID, limit: int = 100, cursor: str | None = None
    ) -> Page[AuditLog]:
        org = check.uuid_value("org_id", org_id)
        return await self._page(
            self._queries.get_by_org_id, self._queries.get_by_org_id_after,
            scope=f"org:{org}", limit=limit, cursor=cursor, org_id=org,
        )  # fmt: skip

    async def page_by_app_id(
        self, org_id: uuid.UUID, app_id: uuid.UUID, limit: int = 100, cursor: str | None = None
    ) -> Page[AuditLog]:
        org, app = check.uuid_value("org_id", org_id), check.uuid_value("app_id", app_id)
        return await self._page(
            self._queries.get_by_app_id, self._queries.get_by_app_id_after,
            scope=f"app:{org}:{app}", limit=limit, cursor=cursor, org_id=org, app_id=app,
        )  # fmt: skip

    async def page_by_user_id(
        self, org_id: uuid.UUID, user_id: uuid.UUID, limit: int = 100, cursor: str | None = None
    ) -> Page[AuditLog]:
        org, user = check.uuid_value("org_id", org_id), check.uuid_value("user_id", user_id)
        return await self._page(
            self._queries.get_by_user_id, self._queries.get_by_user_id_after,
            scope=f"user:{org}:{user}", limit=limit, cursor=cursor, org_id=org, user_id=user,
        )  # fmt: skip

    async def page_by_date_range(
        self,
        org_id: uuid.UUID,
        start: datetime.datetime,
        end: datetime.datetime,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[AuditLog]:
        org, bounds = check.uuid_value("org_id", org_id), _range(start, end)
        scope = f"range:{org}:{bounds['start_time'].isoformat()}:{bounds['end_time'].isoformat()}"
        return await self._page(
            self._queries.get_by_date_range, self._queries.get_by_date_range_after,
            scope=scope, limit=limit, cursor=cursor, org_id=org, **bounds,
        )  # fmt: skip

    async def page_by_action(
        self, org_id: uuid.UUID, action: AuditAction, limit: int = 100, cursor: str | None = None
    ) -> Page[AuditLog]:
        org, act = check.uuid_value("org_id", org_id), check.member("action", action, AuditAction)
        return await self._page(
            self._queries.get_by_action, self._queries.get_by_action_after,
            scope=f"action:{org}:{act}", limit=limit, cursor=cursor, org_id=org, action=act,
        )  # fmt: skip
