"""The gateway through its real app (lifespan, routes, error handler) and a real database.

Requests go through ``httpx.AsyncClient`` on ``ASGITransport``; the app's
lifespan is the one a server runs (``app.router.lifespan_context``). The
service connects as the application role, under row-level security; the tests
check what was stored as the owner.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from examples.gateway.app import Completion, create_app, echo_provider
from examples.gateway.tests.conftest import Database
from llmcp import (
    AsyncRepositoryFactory,
    ModelAllowlistConfig,
    NewApplication,
    NewOrganization,
    NewPolicy,
    hash_api_key,
    tenancy,
)
from llmcp.integrations.fastapi import ApiKeyApplication
from llmcp.integrations.starlette import factory_of

pytestmark = pytest.mark.anyio

SECRET = "sk-live-7f3a9c0e1b2d4f6a8c0e2b4d6f8a0c2e"  # looks like a credential: never echoed


@dataclass(frozen=True)
class Tenant:
    org_id: uuid.UUID
    app_id: uuid.UUID
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def make_tenant(
    factory: AsyncRepositoryFactory, *, models: list[str] | None = None
) -> Tenant:
    repos = factory.repositories()
    suffix = uuid.uuid4().hex[:8]
    org = await repos.organizations.create(NewOrganization(name="Acme", slug=f"acme-{suffix}"))
    key = f"key-{uuid.uuid4().hex}"
    app = await repos.applications.create(
        NewApplication(org_id=org.id, name="chat", api_key_hash=hash_api_key(key))
    )
    if models is not None:
        await repos.policies.create(
            NewPolicy(org_id=org.id, name="models", config=ModelAllowlistConfig(models=models))
        )
    return Tenant(org.id, app.id, key)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (its lifespan, as a server runs it) and a client on it."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client,
    ):
        yield client


def owner_count(database: Database, sql: str, *params: object) -> int:
    with psycopg.connect(database.owner_url) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


def completion(request_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"model": "small", "prompt": "hello there", "request_id": request_id, **fields}


async def test_a_completion_is_authenticated_checked_recorded_and_audited(
    database: Database,
) -> None:
    app = create_app(database.config())
    async with serving(app) as client:
        tenant = await make_tenant(factory_of(app), models=["small"])
        answer = await client.post("/v1/completions", json=completion("r-1"), headers=tenant.auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["text"] == "hello there"
        assert body["request"]["status"] == "completed"
        assert body["request"]["org_id"] == str(tenant.org_id)
        assert (body["request"]["prompt_tokens"], body["request"]["total_tokens"]) == (2, 4)
        assert body["request"]["cost"] == "0.000004"  # Decimal, encoded as a string

        read = await client.get("/v1/requests/r-1", headers={"X-API-Key": tenant.key})
        assert read.status_code == 200 and read.json() == body["request"]

        refused = await client.post(
            "/v1/completions", json=completion(model="large"), headers=tenant.auth
        )
        assert refused.status_code == 403  # the allow-list policy of the organization
        for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"X-API-Key": " "}):
            unknown = await client.post("/v1/completions", json=completion(), headers=headers)
            assert unknown.status_code == 401
            assert unknown.headers["www-authenticate"] == "Bearer"
    audited = owner_count(
        database,
        "SELECT count(*) FROM audit_logs WHERE org_id = %s AND request_id = 'r-1'"
        " AND action = 'inference_requested' AND ip_address = '127.0.0.1'",
        tenant.org_id,
    )
    assert audited == 1


async def test_another_tenant_reads_the_same_as_nothing(database: Database) -> None:
    app = create_app(database.config())
    async with serving(app) as client:
        ours, theirs = await make_tenant(factory_of(app)), await make_tenant(factory_of(app))
        repos = factory_of(app).repositories()
        allow = ModelAllowlistConfig(models=["small"])
        policy = await repos.policies.create(
            NewPolicy(org_id=theirs.org_id, name="m", config=allow)
        )
        made = await client.post("/v1/completions", json=completion("t-1"), headers=theirs.auth)
        assert made.status_code == 200
        assert (await client.get("/v1/requests/t-1", headers=ours.auth)).status_code == 404
        nothing = uuid.uuid4()
        missing = await client.delete(f"/v1/policies/{nothing}", headers=ours.auth)
        foreign = await client.delete(f"/v1/policies/{policy.id}", headers=ours.auth)
        assert missing.status_code == foreign.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        # the same answer but for the id the URL named
        assert missing.json() == {
            **foreign.json(),
            "detail": foreign.json()["detail"].replace(str(policy.id), str(nothing)),
        }
        mine = await client.delete(f"/v1/policies/{policy.id}", headers=theirs.auth)
        assert mine.status_code == 204


async def test_the_key_makes_its_organization_the_tenant_of_the_request(
    database: Database,
) -> None:
    app = create_app(database.config())

    @app.get("/tenant")
    async def tenant_setting(caller: ApiKeyApplication) -> dict[str, object]:
        # what a service's own generated queries run with (llmcp.tenancy)
        return {"setting": tenancy.current(), "org_id": str(caller.org_id)}

    async with serving(app) as client:
        tenant = await make_tenant(factory_of(app))
        answer = (await client.get("/tenant", headers=tenant.auth)).json()
    assert answer == {"setting": [tenancy.ORG_ID, str(tenant.org_id)], "org_id": str(tenant.org_id)}
    assert tenancy.current() is None


async def test_llmcp_errors_are_problem_details_that_echo_no_value(database: Database) -> None:
    app = create_app(database.config())
    async with serving(app) as client:
        tenant = await make_tenant(factory_of(app))
        ok = await client.post("/v1/completions", json=completion(SECRET), headers=tenant.auth)
        assert ok.status_code == 200

        cases = [
            # ConflictError: the request_id (an idempotency key) is taken
            (completion(SECRET), 409, "conflict"),
            # ValidationError: refused before the database
            (completion(SECRET + "\x07"), 422, "validation"),
        ]
        for payload, status, code in cases:
            answer = await client.post("/v1/completions", json=payload, headers=tenant.auth)
            assert answer.status_code == status, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            problem = answer.json()
            assert (problem["status"], problem["code"], problem["type"]) == (
                status,
                code,
                "about:blank",
            )
            assert "request_id" in problem["detail"]
            assert SECRET not in answer.text and SECRET[8:20] not in answer.text
        # ReferenceViolationError: a user that is not one of this organization's
        stranger = await client.post(
            "/v1/completions", json=completion(user_id=str(uuid.uuid4())), headers=tenant.auth
        )
        assert (stranger.status_code, stranger.json()["code"]) == (422, "reference")
        assert "user_id" in stranger.json()["detail"]


async def test_a_request_holds_its_connection_for_its_database_work_only(
    database: Database,
) -> None:
    # one pooled connection: a request waiting for its model must not hold it
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(model: str, prompt: str) -> Completion:
        entered.set()
        await release.wait()
        return await echo_provider(model, prompt)

    app = create_app(database.config(max_size=1, acquire_timeout=5.0), provider=slow)
    async with serving(app) as client:
        tenant = await make_tenant(factory_of(app))
        database_of = factory_of(app).database
        first = asyncio.create_task(
            client.post("/v1/completions", json=completion("h-1"), headers=tenant.auth)
        )
        await entered.wait()
        before = database_of.pool_stats().requests
        meanwhile = await client.get("/v1/requests/h-1", headers=tenant.auth)
        assert meanwhile.json()["status"] == "pending"
        # the key looked up in the endpoint's scope: one checkout for the request
        assert database_of.pool_stats().requests - before == 1
        release.set()
        assert (await first).status_code == 200


async def test_an_unavailable_database_is_a_503_with_retry_after(database: Database) -> None:
    app = create_app(database.config(max_size=1, acquire_timeout=0.3))
    async with serving(app) as client:
        tenant = await make_tenant(factory_of(app))
        database_of = factory_of(app).database
        held = await database_of.acquire()  # the pool's only connection, taken
        try:
            answer = await client.get("/v1/requests/any", headers=tenant.auth)
        finally:
            await database_of.release(held)
    # the request waited acquire_timeout for a connection: DatabaseUnavailableError
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["code"] == "database_unavailable"


async def test_a_request_that_fails_mid_transaction_rolls_back_whole(database: Database) -> None:
    app = create_app(database.config())
    records = [
        {"request_id": f"u-{n}", "model": "m", "prompt_tokens": 1, "completion_tokens": 2,
         "cost": "0.01"}
        for n in range(3)
    ]  # fmt: skip
    async with serving(app) as client:
        tenant = await make_tenant(factory_of(app))
        # the third record repeats the first one's request_id: its INSERT fails
        # after two records and two audit logs were written in the transaction
        failing = await client.post(
            "/v1/usage", json=[*records[:2], records[0]], headers=tenant.auth
        )
        assert failing.status_code == 409
        assert failing.json()["code"] == "conflict"
        counts = (
            "SELECT (SELECT count(*) FROM inference_requests WHERE org_id = %s)"
            " + (SELECT count(*) FROM audit_logs WHERE org_id = %s)"
        )
        assert owner_count(database, counts, tenant.org_id, tenant.org_id) == 0
        for record in records:  # and the connection went back clean to the pool
            assert (
                await client.get(f"/v1/requests/{record['request_id']}", headers=tenant.auth)
            ).status_code == 404

        stored = await client.post("/v1/usage", json=records, headers=tenant.auth)
        assert stored.status_code == 201 and stored.json() == {"recorded": 3}
        assert owner_count(database, counts, tenant.org_id, tenant.org_id) == 6


def terminate_the_sleeper(database: Database) -> threading.Thread:
    """Terminate the backend that sleeps in the COMMIT's trigger, once it does."""

    def run() -> None:
        deadline = time.monotonic() + 10
        with psycopg.connect(database.owner_url, autocommit=True) as owner:
            while owner.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event = 'PgSleep'"
            ).fetchone() != (1,):
                assert time.monotonic() < deadline, "the COMMIT never reached its trigger"
                time.sleep(0.005)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


_SLOW_COMMIT = """
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(60);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON inference_requests
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();
"""


@pytest.mark.direct_connection(reason="terminates the backend of the request's transaction")
async def test_a_commit_whose_outcome_is_unknown_is_a_500_without_retry_after(
    database: Database,
) -> None:
    # a deferred trigger makes the COMMIT wait; the backend is terminated meanwhile
    with psycopg.connect(database.owner_url, autocommit=True) as owner:
        owner.execute(_SLOW_COMMIT)
    app = create_app(database.config())
    record = {"request_id": "c-1", "model": "m", "prompt_tokens": 1, "completion_tokens": 1,
              "cost": "0"}  # fmt: skip
    async with serving(app) as client:
        tenant = await make_tenant(factory_of(app))
        watcher = terminate_the_sleeper(database)
        answer = await client.post("/v1/usage", json=[record], headers=tenant.auth)
        watcher.join(10)
    # not the endpoint's 201: the COMMIT ran before the response (scope="function")
    assert answer.status_code == 500, answer.text
    assert answer.json()["code"] == "commit_outcome_unknown"
    assert "retry-after" not in answer.headers  # a blind retry could store it twice


async def test_a_graceful_shutdown_stores_every_accepted_audit_row(database: Database) -> None:
    app = create_app(database.config())
    limit = asyncio.Semaphore(32)

    async def call(client: httpx.AsyncClient, tenant: Tenant, n: int) -> int:
        async with limit:
            answer = await client.post(
                "/v1/completions", json=completion(f"s-{n}"), headers=tenant.auth
            )
            return answer.status_code

    with psycopg.connect(database.owner_url) as owner:
        async with serving(app) as client:
            tenant = await make_tenant(factory_of(app))
            writer = factory_of(app).audit_writer
            # the writer's INSERT waits for this lock: every row accepted is still queued
            owner.execute("LOCK TABLE audit_logs IN SHARE MODE")
            statuses = await asyncio.gather(*(call(client, tenant, n) for n in range(120)))
            accepted = statuses.count(200)
            assert accepted == 120 and writer.stats.accepted == accepted
            assert writer.stats.written == 0
            owner.rollback()  # the writer may go on, and the shutdown must wait for it
        # the lifespan has ended: the factory is closed, its writer drained
        assert writer.stats.written == accepted and writer.stats.queue_depth == 0
    stored = owner_count(
        database,
        "SELECT count(*) FROM audit_logs WHERE org_id = %s AND action = 'inference_requested'",
        tenant.org_id,
    )
    assert stored == accepted


async def test_a_shutdown_gives_up_at_its_deadline_and_says_how_many(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(database.config(), close_timeout=0.5)
    with psycopg.connect(database.owner_url) as owner:
        async with serving(app) as client:
            tenant = await make_tenant(factory_of(app))
            writer = factory_of(app).audit_writer
            owner.execute("LOCK TABLE audit_logs IN SHARE MODE")  # held through the shutdown
            for n in range(5):
                answer = await client.post(
                    "/v1/completions", json=completion(f"g-{n}"), headers=tenant.auth
                )
                assert answer.status_code == 200
            started = time.monotonic()
        elapsed = time.monotonic() - started
        owner.rollback()
    assert elapsed < 3, elapsed
    assert writer.stats.written == 0
    assert writer.stats.queue_depth == 5  # given up, and said so:
    assert "audit writer closed after 0.5 s with 5 rows not stored" in caplog.text
