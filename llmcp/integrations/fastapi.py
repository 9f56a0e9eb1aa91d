"""The request scope as FastAPI dependencies.

::

    @app.get("/v1/requests/{request_id}")
    async def get_request(request_id: str, repos: RequestRepositories, caller: ApiKeyApplication):
        return await repos.inference_requests.get_by_request_id(caller.org_id, request_id)

``RequestRepositories``: the repositories, every call of the request on one
pooled connection (``factory.request()``), each call autocommitted.
``TransactionRepositories``: the same, the request one transaction, committed
after the endpoint returns and before the response is sent; rolled back if the
endpoint (or a dependency after it, or the response's validation) raises,
``HTTPException`` included. ``ApiKeyApplication``: the application of the
presented API key (401 without one), its organization the tenant of the rest
of the request (``llmcp.tenancy.tenant``, for a service's own queries); the
key is looked up in the scope of a parameter before it, else on a connection
of its own for that one call. ``Factory``: the factory, for an endpoint that
takes its scopes itself (around its database work, not around a slow wait).

The scopes are declared with ``scope="function"``: FastAPI then ends them when
the endpoint returns, before the response goes out. Its default for a
dependency with ``yield`` ends it after the response is sent: a COMMIT that
failed then could no longer change the 200 the client already has, and the
connection would be held while a slow client reads. A dependency of your own
built on these must be declared ``scope="function"`` too (FastAPI refuses
otherwise). A ``StreamingResponse`` body runs after the scope ended: its calls
take a connection each, outside the transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

try:
    from fastapi import Depends, HTTPException, Request
except ImportError as exc:  # a plain install: say which extra, in one line
    raise ImportError("llmcp.integrations.fastapi needs llmcp[fastapi]") from exc

from llmcp import tenancy
from llmcp.factory_async import AsyncRepositories, AsyncRepositoryFactory
from llmcp.generated.models import Application
from llmcp.integrations.starlette import authenticate, factory_of

__all__ = [
    "ApiKeyApplication",
    "Factory",
    "RequestRepositories",
    "TransactionRepositories",
    "application_from_api_key",
    "llmcp_factory",
    "request_scope",
    "transaction_scope",
]


async def request_scope(request: Request) -> AsyncIterator[AsyncRepositories]:
    """The repositories with one pooled connection for the request (``factory.request()``)."""
    async with factory_of(request).request() as repos:
        yield repos


async def transaction_scope(request: Request) -> AsyncIterator[AsyncRepositories]:
    """The repositories with the request as one transaction
    (``factory.request(transaction=True)``); inside a ``request_scope`` of the
    same request, a transaction on its connection."""
    async with factory_of(request).request(transaction=True) as repos:
        yield repos


RequestRepositories = Annotated[AsyncRepositories, Depends(request_scope, scope="function")]
TransactionRepositories = Annotated[AsyncRepositories, Depends(transaction_scope, scope="function")]


async def llmcp_factory(request: Request) -> AsyncRepositoryFactory:
    """The factory ``llmcp_lifespan`` opened (``factory_of``; async: FastAPI would
    run a plain function in a worker thread)."""
    return factory_of(request)


Factory = Annotated[AsyncRepositoryFactory, Depends(llmcp_factory)]


async def application_from_api_key(request: Request) -> AsyncIterator[Application]:
    """The application of the presented API key (``Authorization: Bearer`` or
    ``X-API-Key``); 401 without a known key. Its organization is the tenant of the
    rest of the request. The lookup joins the request's scope when one is open (a
    ``RequestRepositories`` parameter before this one), else it takes a pooled
    connection for that one call, so that this holds none for the endpoint."""
    application = await authenticate(request, factory_of(request).repositories())
    if application is None:
        raise HTTPException(
            status_code=401,
            detail="a valid API key is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    with tenancy.tenant(application.org_id):
        yield application


ApiKeyApplication = Annotated[Application, Depends(application_from_api_key, scope="function")]
