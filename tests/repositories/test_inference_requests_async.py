"""Inference requests through the repository: record, look up, list, update, metrics."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import ConflictError, NotFoundError, ReferenceViolationError, ValidationError
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import InferenceStatus
from llmcp.inputs import NewInferenceRequest
from tests.repositories.helpers_async import (
    COST,
    at,
    make_app,
    make_org,
    make_request,
    make_tenant,
    newest_first,
    token,
)

COMPLETED, FAILED, REJECTED, PENDING = (
    InferenceStatus.COMPLETED,
    InferenceStatus.FAILED,
    InferenceStatus.REJECTED,
    InferenceStatus.PENDING,
)


async def test_create_stores_every_field(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        request_id = f"req-{token()}"
        row = await arepos.inference_requests.create(
            NewInferenceRequest(
                org_id=org.id,
                app_id=app.id,
                user_id=user.id,
                request_id=request_id,
                provider="anthropic",
                model="claude-3-5-sonnet",
                status=FAILED,
                prompt_tokens=120,
                completion_tokens=30,
                cost=Decimal("12345678.123456"),
                latency_ms=870,
                error_message="upstream timeout",
                created_at=at(0),
                completed_at=at(1),
            )
        )
        assert (row.org_id, row.app_id, row.user_id, row.request_id) == (
            org.id,
            app.id,
            user.id,
            request_id,
        )
        assert (row.provider, row.model, row.status) == ("anthropic", "claude-3-5-sonnet", FAILED)
        assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (120, 30, 150)
        assert row.cost == Decimal("12345678.123456") and isinstance(row.cost, Decimal)
        assert (row.latency_ms, row.error_message, row.version) == (870, "upstream timeout", 1)
        assert (row.created_at, row.updated_at, row.completed_at) == (at(0), at(0), at(1))
        assert await arepos.inference_requests.get_by_id(org.id, row.id) == row
        assert await arepos.inference_requests.get_by_request_id(org.id, request_id) == row


async def test_defaults_and_missing_rows(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, _ = await make_tenant(arepos)
        row = await make_request(arepos, org.id, app.id)
        assert (row.status, row.total_tokens, row.cost, row.user_id) == (
            PENDING,
            0,
            Decimal(0),
            None,
        )
        assert (row.latency_ms, row.error_message, row.completed_at) == (None, None, None)
        assert await arepos.inference_requests.get_by_id(org.id, uuid.uuid4()) is None
        assert await arepos.inference_requests.get_by_request_id(org.id, f"req-{token()}") is None
        with pytest.raises(NotFoundError):
            await arepos.inference_requests.update(
                msgspec.structs.replace(row, id=uuid.uuid4(), status=COMPLETED)
            )


async def test_listings_by_org_app_user_status_and_range(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        second_app = await make_app(arepos, org.id)
        stranger = await make_tenant(arepos)

        async def request(app_id: uuid.UUID, second: int, **fields: Any) -> Any:
            return await make_request(arepos, org.id, app_id, created_at=at(second), **fields)

        first = await request(app.id, 0, status=COMPLETED)
        second = await request(second_app.id, 10, user_id=user.id, status=COMPLETED)
        third = await request(app.id, 20, user_id=user.id, status=FAILED)
        fourth = await request(second_app.id, 30)
        await make_request(arepos, stranger.org.id, stranger.app.id, created_at=at(10))
        reqs = arepos.inference_requests

        assert await reqs.get_by_org_id(org.id) == [fourth, third, second, first]
        assert await reqs.get_by_app_id(org.id, app.id) == [third, first]
        assert await reqs.get_by_app_id(org.id, second_app.id) == [fourth, second]
        assert await reqs.get_by_user_id(org.id, user.id) == [third, second]
        assert await reqs.get_by_status(org.id, COMPLETED) == [second, first]
        assert await reqs.get_by_status(org.id, "pending") == [fourth]  # type: ignore[arg-type]
        assert await reqs.get_by_status(org.id, REJECTED) == []
        assert await reqs.get_by_date_range(org.id, at(10), at(30)) == [third, second]
        assert await reqs.get_by_date_range(org.id, at(0), at(30), limit=1, offset=2) == [first]
        assert await reqs.get_by_org_id(uuid.uuid4()) == []
        for empty in (reqs.get_by_app_id, reqs.get_by_user_id):
            assert await empty(org.id, uuid.uuid4()) == []
        # the stranger's application and user are not this organization's
        assert await reqs.get_by_app_id(org.id, stranger.app.id) == []
        assert await reqs.get_by_user_id(org.id, stranger.user.id) == []


async def test_update_records_the_outcome(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        row = await make_request(arepos, org.id, app.id, user_id=user.id, created_at=at(0))
        done = await arepos.inference_requests.update(
            msgspec.structs.replace(
                row,
                status=COMPLETED,
                prompt_tokens=1000,
                completion_tokens=234,
                cost=Decimal("0.012345"),
                latency_ms=1500,
                completed_at=at(2),
                # not part of an update: must be ignored, not stored
                total_tokens=1,
                model="other-model",
                request_id="other-request",
            )
        )
        assert (done.status, done.prompt_tokens, done.completion_tokens, done.total_tokens) == (
            COMPLETED,
            1000,
            234,
            1234,
        )
        assert (done.cost, done.latency_ms, done.completed_at) == (Decimal("0.012345"), 1500, at(2))
        assert (done.model, done.request_id, done.version) == (row.model, row.request_id, 2)
        assert done.updated_at > row.updated_at and done.created_at == row.created_at
        assert await arepos.inference_requests.get_by_id(org.id, row.id) == done

        with pytest.raises(ConflictError) as caught:
            await arepos.inference_requests.update(msgspec.structs.replace(row, status=FAILED))
        assert caught.value.constraint == "version"
        assert await arepos.inference_requests.get_by_id(org.id, row.id) == done


async def test_duplicate_request_id_in_one_org_is_a_conflict(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, _ = await make_tenant(arepos)
        second_app = await make_app(arepos, org.id)
        row = await make_request(arepos, org.id, app.id)
        for app_id in (app.id, second_app.id):  # per organization, not per application
            with pytest.raises(ConflictError) as caught:
                await make_request(arepos, org.id, app_id, request_id=row.request_id)
            assert caught.value.constraint == "inference_requests_org_id_request_id_key"
            assert "request_id already exists" in str(caught.value)
            assert row.request_id not in str(caught.value)
        assert await arepos.inference_requests.get_by_org_id(org.id) == [row]


async def test_the_same_request_id_in_two_orgs_is_two_requests(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        mine, theirs = await make_tenant(arepos), await make_tenant(arepos)
        request_id = f"req-{token()}"
        row = await make_request(arepos, mine.org.id, mine.app.id, request_id=request_id)
        twin = await make_request(arepos, theirs.org.id, theirs.app.id, request_id=request_id)
        assert twin.id != row.id
        reqs = arepos.inference_requests
        assert await reqs.get_by_request_id(mine.org.id, request_id) == row
        assert await reqs.get_by_request_id(theirs.org.id, request_id) == twin
        assert await reqs.get_by_org_id(mine.org.id) == [row]
        assert await reqs.get_by_org_id(theirs.org.id) == [twin]


@pytest.mark.parametrize("field", ["app_id", "user_id"])
async def test_app_or_user_of_another_org_is_a_reference_violation(
    shared_config: DatabaseConfig, field: str
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, _ = await make_tenant(arepos)
        stranger = await make_tenant(arepos)
        foreign = {"app_id": stranger.app.id, "user_id": stranger.user.id}[field]
        values = {"app_id": app.id} | {field: foreign}
        with pytest.raises(ReferenceViolationError, match=field) as caught:
            await make_request(arepos, org.id, **values)
        assert caught.value.constraint == f"inference_requests_{field.removesuffix('_id')}_fkey"
        assert await arepos.inference_requests.get_by_org_id(org.id) == []


async def test_completion_before_creation_is_refused_by_the_database(
    shared_config: DatabaseConfig,
) -> None:
    """No pre-check compares the two times: the CHECK constraint does, and it maps."""
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, _ = await make_tenant(arepos)
        with pytest.raises(ValidationError) as caught:
            await make_request(arepos, org.id, app.id, created_at=at(10), completed_at=at(9))
        assert "completed_at is not valid" in str(caught.value)
        assert "inference_requests_completed_at_check" in str(caught.value)
        assert caught.value.__cause__ is not None  # it did reach the database
        assert await arepos.inference_requests.get_by_org_id(org.id) == []

        row = await make_request(arepos, org.id, app.id, created_at=at(10))
        with pytest.raises(ValidationError, match="completed_at"):
            await arepos.inference_requests.update(
                msgspec.structs.replace(row, status=COMPLETED, completed_at=at(5))
            )
        assert await arepos.inference_requests.get_by_id(org.id, row.id) == row


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"prompt_tokens": -1}, "prompt_tokens"),
        ({"completion_tokens": 2**31}, "completion_tokens"),
        ({"prompt_tokens": 2**31 - 1, "completion_tokens": 1}, "total_tokens"),
        ({"latency_ms": -5}, "latency_ms"),
        ({"latency_ms": 2**31}, "latency_ms"),
        ({"cost": Decimal("-0.01")}, "cost"),
        ({"cost": Decimal("0.0000001")}, "cost"),
        ({"cost": Decimal("100000000")}, "cost"),
        ({"cost": Decimal("NaN")}, "cost"),
        ({"cost": 0.5}, "cost"),
        ({"status": "exploded"}, "status"),
        ({"error_message": "e" * 4001}, "error_message"),
        ({"provider": ""}, "provider"),
        ({"model": "m" * 201}, "model"),
        ({"request_id": "r" * 201}, "request_id"),
        ({"request_id": "nul\x00"}, "request_id"),
    ],
)
async def test_invalid_fields_are_rejected(
    shared_config: DatabaseConfig, fields: dict[str, Any], field: str
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, _ = await make_tenant(arepos)
        with pytest.raises(ValidationError, match=field):
            await make_request(arepos, org.id, app.id, **fields)
        assert await arepos.inference_requests.get_by_org_id(org.id) == []


async def test_metrics_are_exact(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        stranger = await make_tenant(arepos)

        async def request(second: int, **fields: Any) -> Any:
            return await make_request(arepos, org.id, app.id, created_at=at(second), **fields)

        # inside [at(0), at(100)): the start is included
        await request(
            0, status=COMPLETED, prompt_tokens=10, completion_tokens=5, cost=COST, latency_ms=100
        )
        await request(
            1,
            status=COMPLETED,
            prompt_tokens=1,
            cost=Decimal("0.1"),
            latency_ms=201,
            user_id=user.id,
        )
        await request(50, status=FAILED, prompt_tokens=7, cost=Decimal("2.000003"), latency_ms=0)
        await request(99, status=REJECTED)  # no latency: not part of the average
        await request(99, status=PENDING, completion_tokens=3)
        # outside: the end is excluded; before the start; another org
        await request(100, status=COMPLETED, prompt_tokens=1000, cost=Decimal(5), latency_ms=9)
        await request(-1, status=FAILED, prompt_tokens=1000, cost=Decimal(5), latency_ms=9)
        await make_request(
            arepos,
            stranger.org.id,
            stranger.app.id,
            created_at=at(10),
            status=COMPLETED,
            prompt_tokens=1000,
            cost=Decimal(5),
        )

        metrics = await arepos.inference_requests.get_metrics(org.id, at(0), at(100))
        assert (
            metrics.total_requests,
            metrics.completed_requests,
            metrics.failed_requests,
            metrics.rejected_requests,
        ) == (5, 2, 1, 1)
        assert metrics.total_tokens == 15 + 1 + 7 + 3
        assert metrics.total_cost == Decimal("2.100004")
        assert isinstance(metrics.total_cost, Decimal)
        assert metrics.avg_latency_ms == pytest.approx((100 + 201 + 0) / 3)


async def test_metrics_follow_updates(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, _ = await make_tenant(arepos)
        row = await make_request(arepos, org.id, app.id, created_at=at(0))
        before = await arepos.inference_requests.get_metrics(org.id, at(0), at(1))
        assert (before.total_requests, before.completed_requests, before.total_cost) == (
            1,
            0,
            Decimal(0),
        )
        await arepos.inference_requests.update(
            msgspec.structs.replace(
                row, status=COMPLETED, prompt_tokens=4, cost=Decimal("0.25"), latency_ms=40
            )
        )
        after = await arepos.inference_requests.get_metrics(org.id, at(0), at(1))
        assert (after.total_requests, after.completed_requests, after.total_tokens) == (1, 1, 4)
        assert (after.total_cost, after.avg_latency_ms) == (Decimal("0.25"), 40.0)


async def test_metrics_of_an_empty_range_are_zeros(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, _ = await make_tenant(arepos)
        await make_request(arepos, org.id, app.id, created_at=at(0), cost=Decimal(1))
        for start, end in ((at(1), at(2)), (at(0), at(0))):
            metrics = await arepos.inference_requests.get_metrics(org.id, start, end)
            assert (
                metrics.total_requests,
                metrics.completed_requests,
                metrics.failed_requests,
                metrics.rejected_requests,
                metrics.total_tokens,
            ) == (0, 0, 0, 0, 0)
            assert metrics.total_cost == Decimal(0) and isinstance(metrics.total_cost, Decimal)
            assert metrics.avg_latency_ms == 0.0
        unknown = await arepos.inference_requests.get_metrics(uuid.uuid4(), at(-10), at(10))
        assert unknown.total_requests == 0


async def test_metrics_check_their_range(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        reqs = afactory.repositories().inference_requests
        org_id = uuid.uuid4()
        with pytest.raises(ValidationError, match="timezone-aware"):
            await reqs.get_metrics(org_id, at(0).replace(tzinfo=None), at(1))
        with pytest.raises(ValidationError, match="end"):
            await reqs.get_metrics(org_id, at(0), at(1).replace(tzinfo=None))
        with pytest.raises(ValidationError, match="start"):
            await reqs.get_metrics(org_id, at(1), at(0))
        with pytest.raises(ValidationError, match="org_id"):
            await reqs.get_metrics("nope", at(0), at(1))  # type: ignore[arg-type]


async def test_all_requests_of_an_app_in_order(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        app = await make_app(arepos, org.id)
        rows = [await make_request(arepos, org.id, app.id, created_at=at(i % 3)) for i in range(6)]
        assert await arepos.inference_requests.get_by_app_id(org.id, app.id) == newest_first(rows)


HOUR = 3600
# seconds from BASE (on the hour): on, just before and just after hour boundaries
SPREAD = [-7201, -7200, -3541, -1800, -1, 0, 1, 1799, 3599, 3600, 3601, 7199, 7200, 10805]
RANGES = [
    (-7200, 7200),  # whole hours only
    (-5000, 5000),  # partial hours at both edges, whole hours between
    (-1, 1),  # within one hour, across its boundary
    (10, 20),  # within one hour, nothing there
    (-7201, 10806),  # everything
    (1799, 3601),  # a partial hour, then one second of the next
    (3600, 3600),  # empty
]


def _expected(rows: list[Any], start: Any, end: Any) -> tuple[Any, ...]:
    chosen = [row for row in rows if start <= row.created_at < end]
    latencies = [row.latency_ms for row in chosen if row.latency_ms is not None]
    return (
        len(chosen),
        sum(row.status is COMPLETED for row in chosen),
        sum(row.status is FAILED for row in chosen),
        sum(row.status is REJECTED for row in chosen),
        sum(row.total_tokens for row in chosen),
        sum((row.cost for row in chosen), Decimal(0)),
        sum(latencies) / len(latencies) if latencies else 0.0,
    )


async def _assert_metrics(arepos: Any, org_id: uuid.UUID, rows: list[Any]) -> None:
    zone = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    for start, end in RANGES:
        # the same instants, once in UTC and once at an offset of a half hour
        for first, last in ((at(start), at(end)), (at(start).astimezone(zone), at(end))):
            metrics = await arepos.inference_requests.get_metrics(org_id, first, last)
            *counts, average = _expected(rows, first, last)
            assert [
                metrics.total_requests,
                metrics.completed_requests,
                metrics.failed_requests,
                metrics.rejected_requests,
                metrics.total_tokens,
                metrics.total_cost,
            ] == counts, (start, end)
            assert metrics.avg_latency_ms == pytest.approx(average, rel=1e-12), (start, end)


async def test_metrics_across_hours_match_the_rows(shared_config: DatabaseConfig) -> None:
    """Whole hours, partial hours at the edges, and changes after the fact all add up."""
    statuses = [COMPLETED, FAILED, REJECTED, PENDING]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        other_app = await make_app(arepos, org.id)
        rows = []
        for i, second in enumerate(SPREAD * 2):
            rows.append(
                await make_request(
                    arepos,
                    org.id,
                    app.id if i % 3 else other_app.id,
                    user_id=user.id if i % 2 else None,
                    created_at=at(second),
                    status=statuses[i % 4],
                    prompt_tokens=i * 11,
                    completion_tokens=i % 5,
                    cost=Decimal(i) * COST + Decimal(i % 3),
                    latency_ms=None if i % 4 == 3 else i * 7,
                )
            )
        stranger = await make_tenant(arepos)
        await make_request(arepos, stranger.org.id, stranger.app.id, created_at=at(0), cost=COST)
        await _assert_metrics(arepos, org.id, rows)

        # an outcome recorded later moves the numbers
        changed = await arepos.inference_requests.update(
            msgspec.structs.replace(
                rows[0], status=COMPLETED, prompt_tokens=5, cost=Decimal("9.5"), latency_ms=None
            )
        )
        rows[0] = changed
        await _assert_metrics(arepos, org.id, rows)

        # deleting an application deletes its requests, and their numbers
        await arepos.applications.delete(org.id, other_app.id)
        rows = [row for row in rows if row.app_id != other_app.id]
        await _assert_metrics(arepos, org.id, rows)

        # deleting the user keeps the requests (user_id becomes None)
        await arepos.users.delete(org.id, user.id)
        await _assert_metrics(arepos, org.id, rows)
        assert await arepos.inference_requests.get_by_user_id(org.id, user.id) == []
