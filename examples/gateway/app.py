"""The gateway: API key -> policies -> inference request -> audit trail.

``POST /v1/completions`` is the request path of an LLM gateway: the caller's
application from its API key, the policies that apply, the inference request
recorded as pending, an audit log through the writer (all in one request
scope), then the provider called with no connection held, and the request
completed. ``POST /v1/usage`` records a batch of usage reported
elsewhere in one transaction (all or nothing), each with its audit log in that
transaction. ``GET /v1/requests/{request_id}`` reads one back;
``DELETE /v1/policies/{policy_id}`` removes one of the caller's policies.
Run it with ``LLMCP_DATABASE_URL=... uvicorn --factory examples.gateway.app:create_app``.
"""

from __future__ import annotations

import datetime
import ipaddress
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

import msgspec
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, Field

from llmcp import (
    AsyncRepositoryFactory,
    AuditAction,
    DatabaseConfig,
    InferenceStatus,
    ModelAllowlistConfig,
    NewAuditLog,
    NewInferenceRequest,
    PolicyType,
    uuid7,
)
from llmcp.integrations.fastapi import (
    ApiKeyApplication,
    Factory,
    RequestRepositories,
    TransactionRepositories,
)
from llmcp.integrations.starlette import install_problem_details, llmcp_lifespan


@dataclass(frozen=True, slots=True)
class Completion:
    """What the model provider answered."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal


Provider = Callable[[str, str], Awaitable[Completion]]
"""``(model, prompt) -> Completion``: the LLM behind the gateway."""


async def echo_provider(model: str, prompt: str) -> Completion:
    """A stand-in model: answers the prompt back, a token a word."""
    words = len(prompt.split())
    return Completion(prompt, words, words, Decimal(words) * Decimal("0.000002"))


class CompletionIn(BaseModel):
    model: str
    prompt: str
    request_id: str | None = None  # the caller's idempotency key; one is made if absent
    user_id: uuid.UUID | None = None


class UsageIn(BaseModel):
    request_id: str
    model: str
    prompt_tokens: Annotated[int, Field(ge=0)]
    completion_tokens: Annotated[int, Field(ge=0)]
    cost: Decimal


def json_response(value: object, status_code: int = 200) -> Response:
    # llmcp's rows are msgspec structs: msgspec encodes them (uuid, datetime,
    # Decimal as a string, enums); FastAPI's own encoder does not know them
    return Response(msgspec.json.encode(value), status_code, media_type="application/json")


def client_ip(request: Request) -> str | None:
    """The client's address as text (what NewAuditLog takes), None for a test client's made-up host."""
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


router = APIRouter()


@router.post("/v1/completions")
async def complete(
    body: CompletionIn, request: Request, caller: ApiKeyApplication, factory: Factory
) -> Response:
    org_id = caller.org_id  # the tenant comes from the key, never from the body
    # a scope around the database work, not around the model's answer: a request
    # waiting for its model holds no pooled connection
    async with factory.request() as repos:
        policies = await repos.policies.resolve(org_id, caller.id, body.user_id)
        allowed = policies.get(PolicyType.MODEL_ALLOWLIST)
        if (
            allowed is not None
            and isinstance(allowed.config, ModelAllowlistConfig)
            and body.model not in allowed.config.models
        ):
            raise HTTPException(status_code=403, detail="this model is not allowed by policy")
        pending = await repos.inference_requests.create(
            NewInferenceRequest(
                org_id=org_id,
                app_id=caller.id,
                user_id=body.user_id,
                request_id=body.request_id or str(uuid7()),
                provider="echo",
                model=body.model,
            )
        )
        await repos.audit_logs.async_insert(  # queued: the writer stores it in a batch
            NewAuditLog(
                org_id=org_id,
                app_id=caller.id,
                user_id=body.user_id,
                action=AuditAction.INFERENCE_REQUESTED,
                resource_type="inference_request",
                resource_id=pending.id,
                request_id=pending.request_id,
                ip_address=client_ip(request),
                user_agent=request.headers.get("user-agent"),
            )
        )
    started = time.monotonic()
    provider: Provider = request.app.state.provider
    answer = await provider(body.model, body.prompt)
    done = await factory.repositories().inference_requests.update(  # one call: no scope
        msgspec.structs.replace(
            pending,
            status=InferenceStatus.COMPLETED,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            cost=answer.cost,
            latency_ms=round((time.monotonic() - started) * 1000),
            completed_at=datetime.datetime.now(datetime.UTC),
        )
    )
    return json_response({"request": done, "text": answer.text})


@router.post("/v1/usage")
async def record_usage(
    records: list[UsageIn], repos: TransactionRepositories, caller: ApiKeyApplication
) -> Response:
    # one transaction: a record that fails (a request_id seen before, say) undoes
    # the whole batch, its audit logs with it (insert, not the writer, so that
    # they are part of the transaction)
    for record in records:
        row = await repos.inference_requests.create(
            NewInferenceRequest(
                org_id=caller.org_id,
                app_id=caller.id,
                request_id=record.request_id,
                provider="reported",
                model=record.model,
                status=InferenceStatus.COMPLETED,
                prompt_tokens=record.prompt_tokens,
                completion_tokens=record.completion_tokens,
                cost=record.cost,
                completed_at=datetime.datetime.now(datetime.UTC),
            )
        )
        await repos.audit_logs.insert(
            NewAuditLog(
                org_id=caller.org_id,
                app_id=caller.id,
                action=AuditAction.INFERENCE_COMPLETED,
                resource_type="inference_request",
                resource_id=row.id,
                request_id=row.request_id,
            )
        )
    return json_response({"recorded": len(records)}, status_code=201)


@router.get("/v1/requests/{request_id}")
async def get_request(
    request_id: str, repos: RequestRepositories, caller: ApiKeyApplication
) -> Response:
    found = await repos.inference_requests.get_by_request_id(caller.org_id, request_id)
    if found is None:  # another tenant's request reads the same as a missing one
        raise HTTPException(status_code=404, detail="no such request")
    return json_response(found)


@router.delete("/v1/policies/{policy_id}", status_code=204)
async def delete_policy(
    policy_id: uuid.UUID, repos: RequestRepositories, caller: ApiKeyApplication
) -> Response:
    await repos.policies.delete(caller.org_id, policy_id)  # NotFoundError: 404
    await repos.audit_logs.async_insert(
        NewAuditLog(
            org_id=caller.org_id,
            app_id=caller.id,
            action=AuditAction.POLICY_DELETED,
            resource_type="policy",
            resource_id=policy_id,
        )
    )
    return Response(status_code=204)


def create_app(
    config: DatabaseConfig | None = None,
    *,
    provider: Provider = echo_provider,
    open_factory: Callable[[], Awaitable[AsyncRepositoryFactory]] | None = None,
    close_timeout: float | None = 10.0,
) -> FastAPI:
    """The gateway on ``config`` (``LLMCP_DATABASE_URL`` and friends by default);
    at shutdown the audit writer gets ``close_timeout`` seconds to store its queue."""
    lifespan = llmcp_lifespan(config, open_factory=open_factory, close_timeout=close_timeout)
    app = FastAPI(lifespan=lifespan)
    install_problem_details(app)
    app.state.provider = provider
    app.include_router(router)
    return app
