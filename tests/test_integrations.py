"""llmcp.integrations: the problem-details table, the Starlette glue on a plain
Starlette app (FastAPI's is tested through examples/gateway), and that
``import llmcp`` loads no web framework."""

from __future__ import annotations

import inspect
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import llmcp.errors
from llmcp.config import DatabaseConfig
from llmcp.errors import (
    CommitOutcomeUnknownError,
    ConflictError,
    ConnectFailure,
    ConnectionFailedError,
    DatabaseUnavailableError,
    LlmcpError,
    MigrationError,
    NotFoundError,
    NotMigratedError,
    PermissionDeniedError,
    QueueFullError,
    ReferenceViolationError,
    RoleNotFoundError,
    TransactionError,
    ValidationError,
)
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.integrations.problems import problem_for
from llmcp.integrations.starlette import (
    factory_of,
    install_problem_details,
    llmcp_lifespan,
    presented_api_key,
)

SECRET = "sk-live-0d9c8b7a6f5e4d3c2b1a"

# every error of llmcp.errors, made with the secret in its message: (status, code)
EXPECTED: dict[type[LlmcpError], tuple[Callable[[str], LlmcpError], int, str]] = {
    NotFoundError: (NotFoundError, 404, "not_found"),
    ConflictError: (ConflictError, 409, "conflict"),
    ValidationError: (ValidationError, 422, "validation"),
    ReferenceViolationError: (ReferenceViolationError, 422, "reference"),
    DatabaseUnavailableError: (DatabaseUnavailableError, 503, "database_unavailable"),
    ConnectionFailedError: (
        lambda m: ConnectionFailedError(ConnectFailure.REFUSED, m),
        503,
        "database_unavailable",
    ),
    NotMigratedError: (NotMigratedError, 503, "database_unavailable"),
    QueueFullError: (QueueFullError, 503, "audit_queue_full"),
    CommitOutcomeUnknownError: (CommitOutcomeUnknownError, 500, "commit_outcome_unknown"),
    TransactionError: (TransactionError, 500, "internal"),
    PermissionDeniedError: (PermissionDeniedError, 500, "internal"),
    RoleNotFoundError: (lambda m: RoleNotFoundError(m, role="r"), 500, "internal"),
    MigrationError: (lambda m: MigrationError(m, exit_code=1, command="up"), 500, "internal"),
    LlmcpError: (LlmcpError, 500, "internal"),
}


def test_every_llmcp_error_has_a_chosen_status() -> None:
    errors = {
        c for _, c in inspect.getmembers(llmcp.errors, inspect.isclass) if issubclass(c, LlmcpError)
    }
    assert errors == set(EXPECTED)  # a new error class needs its line here, and a choice
    for make, status, code in EXPECTED.values():
        problem = problem_for(make(SECRET))
        assert (problem.status, problem.code) == (status, code)
        assert problem.body["status"] == status and problem.body["type"] == "about:blank"
        if status >= 500:  # internals: a fixed sentence, never the message
            assert SECRET not in json.dumps(problem.body)
        assert ("Retry-After" in problem.headers) == (status == 503)
    retryable = problem_for(
        TransactionError("serialization failure", retryable=True), retry_after=7
    )
    assert (retryable.status, retryable.code, retryable.headers) == (
        503,
        "transaction_conflict",
        {"Retry-After": "7"},
    )


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (its lifespan, as a server runs it) and a client on it."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


def _raising(exc: BaseException) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        raise exc

    return endpoint


async def test_the_handler_answers_problem_json_and_logs_no_chained_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def chained() -> DatabaseUnavailableError:
        try:
            raise RuntimeError(f"DETAIL: Key (email)=({SECRET}) already exists")
        except RuntimeError as cause:
            error = DatabaseUnavailableError("users.create: database unavailable")
            error.__cause__ = cause
            return error

    app = Starlette(
        routes=[
            Route("/missing", _raising(NotFoundError("policies: no row with id 1"))),
            Route("/down", _raising(chained())),
            Route("/other", _raising(KeyError("not llmcp's"))),
        ]
    )
    install_problem_details(app, retry_after=3)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.INFO):
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            missing = await client.get("/missing")
            down = await client.get("/down")
            other = await client.get("/other")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "policies: no row with id 1",
        "code": "not_found",
    }
    assert (down.status_code, down.headers["retry-after"]) == (503, "3")
    assert SECRET not in down.text and SECRET not in caplog.text
    assert "DatabaseUnavailableError answered 503" in caplog.text
    # only llmcp's errors are answered here; the rest is the app's business
    assert other.status_code == 500 and other.headers["content-type"].startswith("text/plain")


async def test_the_api_key_comes_from_bearer_or_x_api_key() -> None:
    seen: list[str | None] = []

    def endpoint(request: Request) -> Response:
        seen.append(presented_api_key(request))
        return Response()

    app = Starlette(routes=[Route("/", endpoint)])
    async with serving(app) as client:
        for headers in (
            {"Authorization": "Bearer k-1"},
            {"authorization": "bearer  k-2 "},
            {"X-API-Key": "k-3"},
            {"Authorization": "Basic k-4", "X-API-Key": "k-5"},
            {"Authorization": "Bearer "},
            {"X-API-Key": "  "},
            {},
        ):
            await client.get("/", headers=headers)
    assert seen == ["k-1", "k-2", "k-3", "k-5", None, None, None]


def test_without_the_lifespan_factory_of_says_what_is_missing() -> None:
    with pytest.raises(RuntimeError, match="lifespan=llmcp_lifespan"):
        factory_of(Starlette())


async def test_the_lifespan_opens_the_factory_runs_the_apps_own_and_closes_it(
    db_config: DatabaseConfig,
) -> None:
    events: list[str] = []
    seen: dict[str, Any] = {}

    @asynccontextmanager
    async def own(app: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        seen["factory"] = factory_of(app)  # open before the app's own startup
        events.append("own startup")
        yield {"greeting": "hello"}
        events.append("own shutdown")
        assert factory_of(app) is seen["factory"]  # still open after it

    async def endpoint(request: Request) -> Response:
        async with factory_of(request).request() as repos:  # Starlette: the scope by hand
            listed = await repos.organizations.list(limit=1, offset=0)
        return JSONResponse({"orgs": len(listed)})

    app = Starlette(routes=[Route("/", endpoint)], lifespan=llmcp_lifespan(db_config, inner=own))
    async with (
        app.router.lifespan_context(app) as state,  # what a server runs, and passes on
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        assert state == {"greeting": "hello"}  # the app's own state, for request.state
        assert (await client.get("/")).json() == {"orgs": 0}
    assert events == ["own startup", "own shutdown"]
    factory: AsyncRepositoryFactory = seen["factory"]
    assert factory.database.closed
    with pytest.raises(RuntimeError):
        factory_of(app)


def test_importing_llmcp_loads_no_web_framework() -> None:
    script = "import json, sys, llmcp; from llmcp import *; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert [m for m in loaded if m.split(".")[0] in {"starlette", "fastapi", "httpx"}] == []
    assert "llmcp.integrations" not in loaded
