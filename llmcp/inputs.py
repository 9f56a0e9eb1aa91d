"""Input structs: what a caller gives to create a row.

Ids and creation times may be given (imports, tests) or left to the
repository (a new UUID) and the database (``now()``). Updates take a row
read earlier, changed with ``msgspec.structs.replace``: its ``version`` is
what makes the write optimistic.

Every field has a type msgspec encodes and decodes without hooks (an IP
address is its text), so ``msgspec.json.decode(body, type=NewAuditLog)`` and
``msgspec.json.encode(new)`` just work.
"""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

import msgspec

from llmcp.generated.models import AuditAction, InferenceStatus, UserRole
from llmcp.json_types import JsonValue
from llmcp.policy_config import PolicyConfig


class NewOrganization(msgspec.Struct, kw_only=True, frozen=True):
    name: str
    slug: str
    id: uuid.UUID | None = None
    created_at: datetime.datetime | None = None


class NewApplication(msgspec.Struct, kw_only=True, frozen=True):
    org_id: uuid.UUID
    name: str
    api_key_hash: str
    description: str | None = None
    id: uuid.UUID | None = None
    created_at: datetime.datetime | None = None


class NewUser(msgspec.Struct, kw_only=True, frozen=True):
    org_id: uuid.UUID
    email: str
    cognito_sub: str
    display_name: str | None = None
    role: UserRole = UserRole.MEMBER
    id: uuid.UUID | None = None
    created_at: datetime.datetime | None = None


class NewPolicy(msgspec.Struct, kw_only=True, frozen=True):
    """A policy; its type is the config's (``RateLimitConfig`` -> ``rate_limit``).

    Level: organization (no app, no user), application (app only) or user
    (user, for any app or for ``app_id``).
    """

    org_id: uuid.UUID
    name: str
    config: PolicyConfig
    app_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    priority: int = 0
    enabled: bool = True
    id: uuid.UUID | None = None
    created_at: datetime.datetime | None = None


class NewAuditLog(msgspec.Struct, kw_only=True, frozen=True):
    org_id: uuid.UUID
    action: AuditAction
    resource_type: str
    app_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    resource_id: uuid.UUID | None = None
    request_id: str | None = None
    details: dict[str, JsonValue] = msgspec.field(default_factory=dict)
    ip_address: str | None = None  # text, as llmcp reads it back (llmcp.adapter)
    user_agent: str | None = None
    id: uuid.UUID | None = None
    created_at: datetime.datetime | None = None


class NewInferenceRequest(msgspec.Struct, kw_only=True, frozen=True):
    org_id: uuid.UUID
    app_id: uuid.UUID
    request_id: str
    provider: str
    model: str
    user_id: uuid.UUID | None = None
    status: InferenceStatus = InferenceStatus.PENDING
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)
    latency_ms: int | None = None
    error_message: str | None = None
    id: uuid.UUID | None = None
    created_at: datetime.datetime | None = None
    completed_at: datetime.datetime | None = None
