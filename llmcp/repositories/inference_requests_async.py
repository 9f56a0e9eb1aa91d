"""Inference requests: one row per LLM call, its outcome, and metrics over a period."""

from __future__ import annotations

import builtins
import datetime
import uuid

from llmcp import validation as check
from llmcp.errors import ValidationError
from llmcp.generated.inference_requests import AsyncInferenceRequestsQueries
from llmcp.generated.models import GetMetricsRow, InferenceRequest, InferenceStatus
from llmcp.ids import uuid7
from llmcp.inputs import NewInferenceRequest
from llmcp.paging import Page
from llmcp.repositories.base_async import AsyncRepository

InferenceMetrics = GetMetricsRow
"""Totals over a period: requests by outcome, tokens, cost (Decimal), average latency."""

_TOKENS = {"minimum": 0, "maximum": check.INT32_MAX}


def _range(start: datetime.datetime, end: datetime.datetime) -> dict[str, datetime.datetime]:
    start, end = check.aware("start", start), check.aware("end", end)
    if start > end:
        raise ValidationError("start: must not be after end")
    return {"start_time": start, "end_time": end}


def _outcome(row: NewInferenceRequest | InferenceRequest) -> dict[str, object]:
    """The columns a request's outcome is made of, checked."""
    prompt = check.int_range("prompt_tokens", row.prompt_tokens, **_TOKENS)
    completion = check.int_range("completion_tokens", row.completion_tokens, **_TOKENS)
    if prompt + completion > check.INT32_MAX:
        raise ValidationError("total_tokens: prompt_tokens + completion_tokens is too large")
    return {
        "status": check.member("status", row.status, InferenceStatus),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost": check.money("cost", row.cost),
        "latency_ms": None
        if row.latency_ms is None
        else check.int_range("latency_ms", row.latency_ms, **_TOKENS),
        "error_message": check.optional_text(
            "error_message", row.error_message, max_length=4000, min_length=0
        ),
        "completed_at": check.optional_aware("completed_at", row.completed_at),
    }


class AsyncInferenceRequestRepository(AsyncRepository):
    """Record, read, page, update inference requests; metrics per organization."""

    entity = "inference_requests"
    _queries = AsyncInferenceRequestsQueries()

    async def create(self, new: NewInferenceRequest) -> InferenceRequest:
        """Record a request (``request_id`` is the caller's idempotency key, unique)."""
        check.instance("new", new, NewInferenceRequest)
        return await self._run(
            self._queries.create,
            id=check.optional_uuid("id", new.id) or uuid7(),
            org_id=check.uuid_value("org_id", new.org_id),
            app_id=check.uuid_value("app_id", new.app_id),
            user_id=check.optional_uuid("user_id", new.user_id),
            request_id=check.text("request_id", new.request_id, max_length=200),
            provider=check.text("provider", new.provider, max_length=100),
            model=check.text("model", new.model, max_length=200),
            created_at=check.optional_aware("created_at", new.created_at),
            **_outcome(new),  # type: ignore[arg-type]
        )

    async def get_by_id(self, org_id: uuid.UUID, request_pk: uuid.UUID) -> InferenceRequest | None:
        """The organization's inference request with this id (another organization's: None)."""
        return await self._run(
            self._queries.get_by_id,
            org_id=check.uuid_value("org_id", org_id),
            id=check.uuid_value("id", request_pk),
        )

    async def get_by_request_id(
        self, org_id: uuid.UUID, request_id: str
    ) -> InferenceRequest | None:
        """The organization's inference request with this request id (unique per organization)."""
        request = check.text("request_id", request_id, max_length=200)
        return await self._run(
            self._queries.get_by_request_id,
            org_id=check.uuid_value("org_id", org_id),
            request_id=request,
        )

    async def update(self, request: InferenceRequest) -> InferenceRequest:
        """Store the outcome (status, tokens, cost, latency, error, completion) if the version is current."""
        check.instance("request", request, InferenceRequest)
        updated = await self._run(
            self._queries.update,
            org_id=check.uuid_value("org_id", request.org_id),
            id=check.uuid_value("id", request.id),
            version=check.int_range("version", request.version, minimum=1, maximum=check.INT32_MAX),
            **_outcome(request),  # type: ignore[arg-type]
        )
        if updated is None:
            raise await self._missing_or_stale(
                self._queries.version_of, request.id, request.version, org_id=request.org_id
            )
        return updated

    async def get_metrics(
        self, org_id: uuid.UUID, start: datetime.datetime, end: datetime.datetime
    ) -> InferenceMetrics:
        """Totals of the organization's requests created in ``[start, end)``; zeros when none."""
        row = await self._read(
            self._queries.get_metrics,
            org_id=check.uuid_value("org_id", org_id),
            **_range(start, end),
        )
        assert row is not None  # an aggregate without GROUP BY always returns a row
        return row

    # -- offset pages ---------------------------------------------------------

    async def get_by_org_id(
        self, org_id: uuid.UUID, limit: int = 100, offset: int = 0
    ) -> builtins.list[InferenceRequest]:
        return await self._read(
            self._queries.get_by_org_id, org_id=check.uuid_value("org_id", org_id),
            limit=check.limit(limit), offset=check.offset(offset),
        )  # fmt: skip

    async def get_by_app_id(
        self, org_id: uuid.UUID, app_id: uuid.UUID, limit: int = 100, offset: int = 0
    ) -> builtins.list[InferenceRequest]:
        return await self._read(
            self._queries.get_by_app_id, org_id=check.uuid_value("org_id", org_id),
            app_id=check.uuid_value("app_id", app_id),
            limit=check.limit(limit), offset=check.offset(offset),
        )  # fmt: skip

    async def get_by_user_id(
        self, org_id: uuid.UUID, user_id: uuid.UUID, limit: int = 100, offset: int = 0
    ) -> builtins.list[InferenceRequest]:
        return await self._read(
            self._queries.get_by_user_id, org_id=check.uuid_value("org_id", org_id),
            user_id=check.uuid_value("user_id", user_id),
            limit=check.limit(limit), offset=check.offset(offset),
        )  # fmt: skip

    async def get_by_status(
        self, org_id: uuid.UUID, status: InferenceStatus, limit: int = 100, offset: int = 0
    ) -> builtins.list[InferenceRequest]:
        return await self._read(
            self._queries.get_by_status, org_id=check.uuid_value("org_id", org_id),
            status=check.member("status", status, InferenceStatus),
            limit=check.limit(limit), offset=check.offset(offset),
        )  # fmt: skip

    async def get_by_date_range(
        self,
        org_id: uuid.UUID,
        start: datetime.datetime,
        end: datetime.datetime,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[InferenceRequest]:
        """Requests with ``start <= created_at < end``, newest first."""
        return await self._read(
            self._queries.get_by_date_range, org_id=check.uuid_value("org_id", org_id),
            **_range(start, end), limit=check.limit(limit), offset=check.offset(offset),
        )  # fmt: skip

    # -- keyset pages -----------------------------------------------------------

    async def page_by_org_id(
        self, org_id: uuid.UUID, limit: int = 100, cursor: str | None = None
    ) -> Page[InferenceRequest]:
        org = check.uuid_value("org_id", org_id)
        return await self._page(
            self._queries.get_by_org_id, self._queries.get_by_org_id_after,
            scope=f"org:{org}", limit=limit, cursor=cursor, org_id=org,
        )  # fmt: skip

    async def page_by_app_id(
        self, org_id: uuid.UUID, app_id: uuid.UUID, limit: int = 100, cursor: str | None = None
    ) -> Page[InferenceRequest]:
        org, app = check.uuid_value("org_id", org_id), check.uuid_value("app_id", app_id)
        return await self._page(
            self._queries.get_by_app_id, self._queries.get_by_app_id_after,
            scope=f"app:{org}:{app}", limit=limit, cursor=cursor, org_id=org, app_id=app,
        )  # fmt: skip

    async def page_by_user_id(
        self, org_id: uuid.UUID, user_id: uuid.UUID, limit: int = 100, cursor: str | None = None
    ) -> Page[InferenceRequest]:
        org, user = check.uuid_value("org_id", org_id), check.uuid_value("user_id", user_id)
        return await self._page(
            self._queries.get_by_user_id, self._queries.get_by_user_id_after,
            scope=f"user:{org}:{user}", limit=limit, cursor=cursor, org_id=org, user_id=user,
        )  # fmt: skip

    async def page_by_status(
        self,
        org_id: uuid.UUID,
        status: InferenceStatus,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[InferenceRequest]:
        org, state = (
            check.uuid_value("org_id", org_id),
            check.member("status", status, InferenceStatus),
        )
        return await self._page(
            self._queries.get_by_status, self._queries.get_by_status_after,
            scope=f"status:{org}:{state}", limit=limit, cursor=cursor, org_id=org, status=state,
        )  # fmt: skip

    async def page_by_date_range(
        self,
        org_id: uuid.UUID,
        start: datetime.datetime,
        end: datetime.datetime,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[InferenceRequest]:
        org, bounds = check.uuid_value("org_id", org_id), _range(start, end)
        scope = f"range:{org}:{bounds['start_time'].isoformat()}:{bounds['end_time'].isoformat()}"
        return await self._page(
            self._queries.get_by_date_range, self._queries.get_by_date_range_after,
            scope=scope, limit=limit, cursor=cursor, org_id=org, **bounds,
        )  # fmt: skip
