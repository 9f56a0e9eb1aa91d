"""llmcp in a Starlette or FastAPI service: lifespan, API keys, problem details.

``llmcp_lifespan`` opens the :class:`~llmcp.factory_async.AsyncRepositoryFactory`
at startup and closes it at shutdown, draining the audit writer within a
deadline; ``factory_of(request)`` finds it. ``authenticate`` resolves the
application of the presented API key. ``install_problem_details`` answers
every llmcp error as an RFC 9457 problem (``llmcp.integrations.problems``).
The request scope as FastAPI dependencies is in ``llmcp.integrations.fastapi``;
a Starlette endpoint writes ``async with factory_of(request).request() as repos:``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

try:
    from starlette.applications import Starlette
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import Response
except ImportError as exc:  # a plain install: say which extra, in one line
    raise ImportError(
        "llmcp.integrations.starlette needs llmcp[starlette] (or llmcp[fastapi])"
    ) from exc

import msgspec

from llmcp.api_keys import hash_api_key
from llmcp.config import DatabaseConfig
from llmcp.errors import LlmcpError
from llmcp.factory_async import AsyncRepositories, AsyncRepositoryFactory
from llmcp.generated.models import Application
from llmcp.integrations.problems import MEDIA_TYPE, problem_for

__all__ = [
    "authenticate",
    "factory_of",
    "install_problem_details",
    "llmcp_lifespan",
    "presented_api_key",
    "problem_response",
]

log = logging.getLogger("llmcp.integrations")

STATE_NAME = "llmcp_factory"
"""The attribute of ``app.state`` that holds the factory while the app runs."""

AppLifespan = Callable[[Any], AbstractAsyncContextManager[Any]]
"""A Starlette/FastAPI lifespan: ``app -> async context manager`` yielding a state
mapping or None (typed loosely: Starlette's type is a union of the two)."""


def llmcp_lifespan(
    config: DatabaseConfig | None = None,
    *,
    open_factory: Callable[[], Awaitable[AsyncRepositoryFactory]] | None = None,
    close_timeout: float | None = 10.0,
    inner: AppLifespan | None = None,
) -> AppLifespan:
    """The lifespan for ``FastAPI(lifespan=...)`` / ``Starlette(lifespan=...)``.

    At startup it opens the factory (``AsyncRepositoryFactory.connect(config)``,
    ``DatabaseConfig.from_env()`` without one; or ``open_factory()`` for one built
    another way, with a writer of your settings, say) and keeps it on
    ``app.state``; then it runs ``inner``, the app's own lifespan, whose state it
    passes on and which may use ``factory_of(app)``. At shutdown, after ``inner``
    ends, it closes the factory: the audit writer stores what it accepted, for up
    to ``close_timeout`` seconds (None: as long as it takes); what it gives up
    the writer logs (count and ids) and counts (``audit_writer.stats``).
    """
    if config is not None and open_factory is not None:
        raise TypeError("llmcp_lifespan: give a config or open_factory, not both")

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        if open_factory is not None:
            factory = await open_factory()
        else:
            factory = await AsyncRepositoryFactory.connect(config)
        setattr(app.state, STATE_NAME, factory)
        try:
            if inner is None:
                yield None
            else:
                async with inner(app) as state:
                    yield state
        finally:
            try:
                # what it gives up, the writer logs itself (count and ids)
                await factory.close(timeout=close_timeout)
            finally:
                delattr(app.state, STATE_NAME)

    return lifespan


def factory_of(where: HTTPConnection | Starlette) -> AsyncRepositoryFactory:
    """The factory ``llmcp_lifespan`` opened for the app of ``where`` (a request,
    a websocket or the app itself)."""
    app = where.app if isinstance(where, HTTPConnection) else where
    factory = getattr(app.state, STATE_NAME, None)
    if not isinstance(factory, AsyncRepositoryFactory):
        raise RuntimeError(
            "no llmcp factory on this app: pass lifespan=llmcp_lifespan(...) to the "
            "app, and run its lifespan (a test client: `with TestClient(app)`)"
        )
    return factory


def presented_api_key(connection: HTTPConnection) -> str | None:
    """The API key of the request: ``Authorization: Bearer <key>``, else ``X-API-Key``."""
    scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    key = connection.headers.get("x-api-key", "").strip()
    return key or None


async def authenticate(connection: HTTPConnection, repos: AsyncRepositories) -> Application | None:
    """The application whose key the request presents, or None (no key, or an unknown one).

    The key is looked up by ``hash_api_key`` (SHA-256, lowercase hex): the form
    ``NewApplication.api_key_hash`` must have, so issue keys as
    ``api_key_hash=hash_api_key(key)``. The lookup is one of the two that cross
    tenants; the application's ``org_id`` is the tenant of the rest of the request.
    """
    key = presented_api_key(connection)
    if key is None:
        return None
    return await repos.applications.get_by_api_key_hash(hash_api_key(key))


def problem_response(request: Request, exc: Exception, *, retry_after: int = 1) -> Response:
    """An exception handler: the llmcp error ``exc`` as an ``application/problem+json``
    answer. A 5xx is logged with the error's class and message (llmcp's messages
    carry no values), never its chained psycopg error, whose text may."""
    if not isinstance(exc, LlmcpError):  # registered for LlmcpError only
        raise exc
    problem = problem_for(exc, retry_after=retry_after)
    if problem.status >= 500:
        log.error("llmcp: %s answered %d: %s", type(exc).__name__, problem.status, exc)
    return Response(
        msgspec.json.encode(problem.body),
        status_code=problem.status,
        headers=problem.headers,
        media_type=MEDIA_TYPE,
    )


def install_problem_details(app: Starlette, *, retry_after: int = 1) -> None:
    """Answer every llmcp error raised by the app's endpoints and dependencies (a
    COMMIT at the end of a request scope included) as problem details:
    ``NotFoundError`` 404, ``ConflictError`` 409, ``ValidationError`` and
    ``ReferenceViolationError`` 422, ``DatabaseUnavailableError`` 503 with
    ``Retry-After: retry_after``, ``CommitOutcomeUnknownError`` 500, ... (the
    table is ``llmcp.integrations.problems.problem_for``)."""

    def handler(request: Request, exc: Exception) -> Response:
        return problem_response(request, exc, retry_after=retry_after)

    app.add_exception_handler(LlmcpError, handler)
