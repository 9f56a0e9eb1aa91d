"""get_metrics (hourly rollup + raw edges) equals the plain aggregate over raw rows, always."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcp.generated.applications import ApplicationsQueries
from llmcp.generated.inference_requests import InferenceRequestsQueries
from llmcp.generated.models import InferenceStatus
from llmcp.generated.organizations import OrganizationsQueries
from tests.tenancy import set_tenant

Conn = psycopg.Connection[Any]
EPOCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
queries = InferenceRequestsQueries()

# times within ~3 days, often on or near hour boundaries, to stress the edges
offsets = st.one_of(
    st.integers(min_value=0, max_value=72 * 3600 * 1_000_000),
    st.integers(min_value=0, max_value=72).map(lambda h: h * 3600 * 1_000_000),
    st.integers(min_value=0, max_value=72).map(lambda h: h * 3600 * 1_000_000 - 1),
)
moments = offsets.map(lambda us: EPOCH + dt.timedelta(microseconds=max(us, 0)))
requests = st.lists(
    st.tuples(
        moments,
        st.sampled_from(list(InferenceStatus)),
        st.integers(0, 5000),
        st.integers(0, 5000),
        st.decimals(min_value=0, max_value=100, places=6, allow_nan=False, allow_infinity=False),
        st.one_of(st.none(), st.integers(0, 60_000)),
        st.sampled_from([0, 1]),  # which of two applications
    ),
    max_size=25,
)


def _setup(conn: Conn) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """An organization (the tenant of ``conn``'s transaction from now on) and two apps."""
    org = OrganizationsQueries().create(
        conn, id=uuid.uuid4(), name="M", slug=f"m-{uuid.uuid4().hex[:10]}", created_at=EPOCH
    )
    set_tenant(conn, org.id)
    apps = [
        ApplicationsQueries().create(
            conn, id=uuid.uuid4(), org_id=org.id, name=f"a{n}", description=None,
            api_key_hash=uuid.uuid4().hex * 2, created_at=EPOCH,
        ).id
        for n in range(2)
    ]  # fmt: skip
    return org.id, apps


def _same(conn: Conn, org: uuid.UUID, start: dt.datetime, end: dt.datetime) -> None:
    fast = queries.get_metrics(conn, org_id=org, start_time=start, end_time=end)
    raw = queries.get_metrics_raw(conn, org_id=org, start_time=start, end_time=end)
    assert fast is not None and raw is not None
    assert tuple(fast.__struct_fields__) == tuple(raw.__struct_fields__)
    assert [getattr(fast, f) for f in fast.__struct_fields__] == [
        getattr(raw, f) for f in raw.__struct_fields__
    ], (start, end)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=requests,
    updates=st.lists(
        st.tuples(st.integers(0, 24), st.sampled_from(list(InferenceStatus)), st.integers(0, 9000)),
        max_size=8,
    ),
    delete_app=st.booleans(),
    ranges=st.lists(st.tuples(moments, moments), min_size=1, max_size=6),
)
def test_metrics_equal_the_raw_aggregate(
    shared_db: str,
    rows: list[Any],
    updates: list[tuple[int, InferenceStatus, int]],
    delete_app: bool,
    ranges: list[tuple[dt.datetime, dt.datetime]],
) -> None:
    with psycopg.connect(shared_db) as conn:
        org, apps = _setup(conn)
        created = []
        for n, (at, status, prompt, completion, cost, latency, app) in enumerate(rows):
            created.append(
                queries.create(
                    conn,
                    id=uuid.uuid4(),
                    org_id=org,
                    app_id=apps[app],
                    user_id=None,
                    request_id=f"m-{uuid.uuid4()}-{n}",
                    provider="p",
                    model="m",
                    status=status,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    cost=cost,
                    latency_ms=latency,
                    error_message=None,
                    created_at=at,
                    completed_at=None,
                )
            )
        for index, status, tokens in updates:  # e.g. pending -> completed, with tokens and cost
            if created:
                row = created[index % len(created)]
                updated = queries.update(
                    conn, org_id=org, id=row.id, version=row.version, status=status, prompt_tokens=tokens,
                    completion_tokens=row.completion_tokens, cost=row.cost + Decimal("0.5"),
                    latency_ms=tokens, error_message=None, completed_at=None,
                )  # fmt: skip
                assert updated is not None
                created[index % len(created)] = updated
        if delete_app:  # cascades to that application's requests
            ApplicationsQueries().delete(conn, org_id=org, id=apps[1])
        everything = (EPOCH - dt.timedelta(days=1), EPOCH + dt.timedelta(days=5))
        for start, end in [*ranges, everything]:
            _same(conn, org, min(start, end), max(start, end))
        conn.rollback()


def test_rollup_rows_of_a_deleted_organization_are_removed(conn: Conn) -> None:
    org, apps = _setup(conn)
    for n in range(3):
        queries.create(
            conn, id=uuid.uuid4(), org_id=org, app_id=apps[0], user_id=None, request_id=f"d-{uuid.uuid4()}",
            provider="p", model="m", status=InferenceStatus.COMPLETED, prompt_tokens=1,
            completion_tokens=1, cost=Decimal(1), latency_ms=5, error_message=None,
            created_at=EPOCH + dt.timedelta(hours=n), completed_at=None,
        )  # fmt: skip
    count = "SELECT count(*) FROM inference_hourly_metrics WHERE org_id = %s"
    assert conn.execute(count, (org,)).fetchone() == (3,)
    OrganizationsQueries().delete(conn, id=org)
    assert conn.execute(count, (org,)).fetchone() == (0,)


_ROLLUP = """
SELECT hour, sum(total_requests), sum(completed_requests), sum(failed_requests),
    sum(rejected_requests), sum(total_tokens), sum(total_cost), sum(latency_sum),
    sum(latency_count)
FROM inference_hourly_metrics WHERE org_id = %(org)s
GROUP BY hour HAVING sum(total_requests) <> 0 ORDER BY hour
"""
_RECOMPUTED = """
SELECT date_trunc('hour', created_at, 'UTC'), count(*),
    count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),
    count(*) FILTER (WHERE status = 'rejected'), sum(total_tokens), sum(cost),
    coalesce(sum(latency_ms), 0), count(latency_ms)
FROM inference_requests WHERE org_id = %(org)s GROUP BY 1 ORDER BY 1
"""


def test_the_rollup_follows_statements_of_many_rows_and_skips_updates_it_does_not_count(
    owner_conn: Conn,
) -> None:
    """One statement inserting 300 requests over 6 hours, one updating all of them, one
    changing only what the rollup does not count, one deleting some: the rollup equals
    the recomputed aggregate after each. (As the owner: the service deletes requests
    only through their application's cascade, and reads no rollup row of another.)"""
    conn = owner_conn
    org, apps = _setup(conn)
    p = {"org": org, "app": apps[0], "epoch": EPOCH}
    conn.execute(
        "INSERT INTO inference_requests (org_id, app_id, request_id, provider, model, status,"
        " prompt_tokens, completion_tokens, total_tokens, cost, created_at)"
        " SELECT %(org)s, %(app)s, 'bulk-' || g, 'p', 'm', 'pending', g, 1, g + 1, g * 0.001,"
        " %(epoch)s + (g %% 6) * interval '1 hour' + g * interval '1 second'"
        " FROM generate_series(1, 300) AS g",
        p,
    )
    assert conn.execute(_ROLLUP, p).fetchall() == conn.execute(_RECOMPUTED, p).fetchall()
    changes = [
        "UPDATE inference_requests SET status = CASE WHEN prompt_tokens %% 3 = 0 THEN 'failed'"
        " ELSE 'completed' END::inference_status, latency_ms = nullif(prompt_tokens %% 5, 0),"
        " prompt_tokens = prompt_tokens + 1, total_tokens = total_tokens + 1, cost = cost * 2"
        " WHERE org_id = %(org)s",
        "UPDATE inference_requests SET error_message = 'late' WHERE org_id = %(org)s",
        "UPDATE inference_requests SET status = 'rejected' WHERE org_id = %(org)s"
        " AND prompt_tokens %% 7 = 0",
        "DELETE FROM inference_requests WHERE org_id = %(org)s AND prompt_tokens %% 4 = 0",
    ]
    for change in changes:
        conn.execute(change, p)
        assert conn.execute(_ROLLUP, p).fetchall() == conn.execute(_RECOMPUTED, p).fetchall()
    _same(conn, org, EPOCH - dt.timedelta(hours=1), EPOCH + dt.timedelta(hours=7))


def test_a_requests_organization_hour_and_key_do_not_change(owner_conn: Conn) -> None:
    """The rollup counts a request under its organization and hour, and its key row maps
    its request_id to its id and month: an UPDATE that would move it is refused. (As the
    owner: the service may not update these columns at all.)"""
    org, apps = _setup(owner_conn)
    row = queries.create(
        owner_conn, id=uuid.uuid4(), org_id=org, app_id=apps[0], user_id=None,
        request_id=f"fixed-{uuid.uuid4()}", provider="p", model="m",
        status=InferenceStatus.PENDING, prompt_tokens=1, completion_tokens=1, cost=Decimal(1),
        latency_ms=None, error_message=None, created_at=EPOCH, completed_at=None,
    )  # fmt: skip
    other, _ = _setup(owner_conn)
    for change, value in (
        ("created_at = %s", EPOCH + dt.timedelta(hours=2)),
        ("created_at = %s", dt.datetime.now(dt.UTC)),  # the current month's partition
        ("request_id = %s", "renamed"),
        ("org_id = %s", other),
    ):
        with pytest.raises(psycopg.errors.FeatureNotSupported), owner_conn.transaction():
            owner_conn.execute(
                f"UPDATE inference_requests SET {change} WHERE id = %s",
                (value, row.id),
            )
    _same(owner_conn, org, EPOCH, EPOCH + dt.timedelta(days=60))
