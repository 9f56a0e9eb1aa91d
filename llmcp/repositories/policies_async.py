"""Policies at three levels, and their resolution for a request.

Precedence (one statement, ``get_applicable`` in sql/policies.sql): user+app,
then user, then app, then organization; then priority (high first), then
creation time, then id. The resolver keeps, per type, the first applicable.
"""

from __future__ import annotations

import builtins
import uuid

import msgspec

from llmcp import validation as check
from llmcp.errors import ValidationError
from llmcp.generated.models import Policy, PolicyType
from llmcp.generated.policies import AsyncPoliciesQueries
from llmcp.inputs import NewPolicy
from llmcp.policy_config import PolicyConfig
from llmcp.repositories.base_async import AsyncCachedRepository
from llmcp.resolution import resolve


def checked_config(config: PolicyConfig) -> tuple[PolicyType, PolicyConfig]:
    """Validate a config struct (msgspec checks constraints on conversion) and name its type."""
    try:
        valid = msgspec.convert(msgspec.to_builtins(config), PolicyConfig)
        msgspec.json.encode(valid)  # what will be stored must be encodable (no lone surrogates)
    except (msgspec.ValidationError, TypeError, UnicodeEncodeError) as exc:
        raise ValidationError(f"config: {exc}") from None
    return PolicyType(type(valid).__struct_config__.tag), valid


class AsyncPolicyRepository(AsyncCachedRepository):
    """Create, look up, list, resolve, update and delete policies."""

    entity = "policies"
    _queries = AsyncPoliciesQueries()

    async def create(self, new: NewPolicy) -> Policy:
        """Insert a policy; its type is its config's. App and user must be of the same org."""
        check.instance("new", new, NewPolicy)
        policy_type, config = checked_config(new.config)
        return await self._run(
            self._queries.create,
            id=check.optional_uuid("id", new.id) or uuid.uuid4(),
            org_id=check.uuid_value("org_id", new.org_id),
            app_id=check.optional_uuid("app_id", new.app_id),
            user_id=check.optional_uuid("user_id", new.user_id),
            name=check.text("name", new.name, max_length=200),
            policy_type=policy_type,
            config=config,
            priority=check.int_range(
                "priority", new.priority, minimum=check.INT32_MIN, maximum=check.INT32_MAX
            ),
            enabled=check.boolean("enabled", new.enabled),
            created_at=check.optional_aware("created_at", new.created_at),
        )

    async def get_by_id(self, org_id: uuid.UUID, policy_id: uuid.UUID) -> Policy | None:
        """The organization's policy with this id (another organization's: None)."""
        return await self._run(
            self._queries.get_by_id,
            org_id=check.uuid_value("org_id", org_id),
            id=check.uuid_value("policy_id", policy_id),
        )

    async def get_by_org_id(
        self, org_id: uuid.UUID, limit: int = 100, offset: int = 0
    ) -> builtins.list[Policy]:
        """Every policy of the organization (all levels), newest first."""
        return await self._read(
            self._queries.get_by_org_id,
            org_id=check.uuid_value("org_id", org_id),
            limit=check.limit(limit),
            offset=check.offset(offset),
        )

    async def get_by_app_id(
        self, org_id: uuid.UUID, app_id: uuid.UUID, limit: int = 100, offset: int = 0
    ) -> builtins.list[Policy]:
        """Policies that name this application, newest first."""
        return await self._read(
            self._queries.get_by_app_id,
            org_id=check.uuid_value("org_id", org_id),
            app_id=check.uuid_value("app_id", app_id),
            limit=check.limit(limit),
            offset=check.offset(offset),
        )

    async def get_by_user_id(
        self, org_id: uuid.UUID, user_id: uuid.UUID, limit: int = 100, offset: int = 0
    ) -> builtins.list[Policy]:
        """Policies that name this user, newest first."""
        return await self._read(
            self._queries.get_by_user_id,
            org_id=check.uuid_value("org_id", org_id),
            user_id=check.uuid_value("user_id", user_id),
            limit=check.limit(limit),
            offset=check.offset(offset),
        )

    async def get_applicable_policies(
        self, org_id: uuid.UUID, app_id: uuid.UUID, user_id: uuid.UUID | None = None
    ) -> builtins.list[Policy]:
        """Enabled policies that apply to a request, most specific first (one round trip;
        none when the admission cache has them: outside a transaction, with a cache)."""
        org = check.uuid_value("org_id", org_id)
        app = check.uuid_value("app_id", app_id)
        user = check.optional_uuid("user_id", user_id)

        async def load() -> builtins.list[Policy]:
            return await self._run(
                self._queries.get_applicable, org_id=org, app_id=app, user_id=user
            )

        if self._admission is not None and self._transactions.current() is None:
            return await self._admission.policies(org, app, user, load)
        return await load()

    async def resolve(
        self, org_id: uuid.UUID, app_id: uuid.UUID, user_id: uuid.UUID | None = None
    ) -> dict[PolicyType, Policy]:
        """The effective policy of each type for a request."""
        return resolve(await self.get_applicable_policies(org_id, app_id, user_id))

    async def update(self, policy: Policy) -> Policy:
        """Store name, config (and so type), priority and enabled if the version is current."""
        check.instance("policy", policy, Policy)
        policy_type, config = checked_config(policy.config)
        updated = await self._run(
            self._queries.update,
            org_id=check.uuid_value("org_id", policy.org_id),
            id=check.uuid_value("id", policy.id),
            version=check.int_range("version", policy.version, minimum=1, maximum=check.INT32_MAX),
            name=check.text("name", policy.name, max_length=200),
            policy_type=policy_type,
            config=config,
            priority=check.int_range(
                "priority", policy.priority, minimum=check.INT32_MIN, maximum=check.INT32_MAX
            ),
            enabled=check.boolean("enabled", policy.enabled),
        )
        if updated is None:
            raise await self._missing_or_stale(
                self._queries.version_of, policy.id, policy.version, org_id=policy.org_id
            )
        return updated

    async def delete(self, org_id: uuid.UUID, policy_id: uuid.UUID) -> None:
        deleted = await self._run(
            self._queries.delete,
            org_id=check.uuid_value("org_id", org_id),
            id=check.uuid_value("policy_id", policy_id),
        )
        if deleted == 0:
            raise self._not_found(policy_id)
