"""Policies through the repository: typed configs, levels, precedence, resolution."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import (
    ConflictError,
    LlmcpError,
    NotFoundError,
    ReferenceViolationError,
    ValidationError,
)
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import PolicyType
from llmcp.inputs import NewPolicy
from llmcp.policy_config import (
    ContentFilterConfig,
    CostBudgetConfig,
    ModelAllowlistConfig,
    RateLimitConfig,
    TokenBudgetConfig,
)
from tests.repositories.helpers_async import (
    at,
    make_app,
    make_org,
    make_policy,
    make_tenant,
    make_user,
    newest_first,
)
from tests.tenancy import aset_tenant

CONFIGS = [
    (RateLimitConfig(requests=10, window_seconds=60, tokens=5000), PolicyType.RATE_LIMIT),
    (TokenBudgetConfig(max_tokens=1_000_000, period="day"), PolicyType.TOKEN_BUDGET),
    (
        CostBudgetConfig(max_cost=Decimal("1234.567891"), currency="EUR", alert_at=0.8),
        PolicyType.COST_BUDGET,
    ),
    (ModelAllowlistConfig(models=["gpt-4o", "claude-3-5-sonnet"]), PolicyType.MODEL_ALLOWLIST),
    (
        ContentFilterConfig(categories=["violence"], action="flag", threshold=0.25),
        PolicyType.CONTENT_FILTER,
    ),
]

INVALID_CONFIGS = [
    RateLimitConfig(requests=0, window_seconds=60),
    RateLimitConfig(requests=1, window_seconds=-5),
    TokenBudgetConfig(max_tokens=100, period="year"),  # type: ignore[arg-type]
    CostBudgetConfig(max_cost=Decimal(10), currency="usd"),
    CostBudgetConfig(max_cost=Decimal(10), alert_at=1.5),
    ModelAllowlistConfig(models=[]),
    ModelAllowlistConfig(models=[""]),
    ContentFilterConfig(categories=["spam"], threshold=2.0),
    ContentFilterConfig(categories=["spam"], action="ignore"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("config", "policy_type"), CONFIGS)
async def test_each_config_type_round_trips(
    shared_config: DatabaseConfig, config: Any, policy_type: PolicyType
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        policy = await arepos.policies.create(
            NewPolicy(org_id=org.id, name="limits", config=config, priority=7, enabled=False)
        )
        assert policy.policy_type is policy_type
        assert policy.config == config and type(policy.config) is type(config)
        assert (policy.org_id, policy.app_id, policy.user_id) == (org.id, None, None)
        assert (policy.name, policy.priority, policy.enabled, policy.version) == (
            "limits",
            7,
            False,
            1,
        )
        assert await arepos.policies.get_by_id(org.id, policy.id) == policy


@pytest.mark.parametrize("config", INVALID_CONFIGS)
async def test_invalid_config_is_rejected_and_nothing_is_stored(
    shared_config: DatabaseConfig, config: Any
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        with pytest.raises(ValidationError, match="config") as caught:
            await make_policy(arepos, org.id, config)
        assert caught.value.__cause__ is None  # rejected before the database
        assert await arepos.policies.get_by_org_id(org.id) == []

        policy = await make_policy(arepos, org.id)
        with pytest.raises(ValidationError, match="config"):
            await arepos.policies.update(msgspec.structs.replace(policy, config=config))
        assert await arepos.policies.get_by_id(org.id, policy.id) == policy


async def test_a_config_given_as_a_mapping_is_typed(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        mapping = {"type": "token_budget", "max_tokens": 5}
        policy = await make_policy(arepos, org.id, mapping)  # type: ignore[arg-type]
        assert policy.config == TokenBudgetConfig(max_tokens=5)
        with pytest.raises(ValidationError, match="config"):
            await make_policy(arepos, org.id, {"type": "nonsense"})  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="config"):
            await make_policy(
                arepos,
                org.id,
                {"type": "token_budget", "max_tokens": 5, "extra": 1},  # type: ignore[arg-type]
            )
        assert await arepos.policies.get_by_org_id(org.id) == [policy]


async def test_listings_by_org_app_and_user(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        other_app = await make_app(arepos, org.id)
        org_level = await make_policy(arepos, org.id, created_at=at(0))
        app_level = await make_policy(arepos, org.id, app_id=app.id, created_at=at(1))
        user_level = await make_policy(arepos, org.id, user_id=user.id, created_at=at(2))
        both = await make_policy(
            arepos, org.id, app_id=app.id, user_id=user.id, created_at=at(2), enabled=False
        )
        elsewhere = await make_policy(arepos, org.id, app_id=other_app.id, created_at=at(3))
        await make_policy(arepos, (await make_org(arepos)).id)

        assert await arepos.policies.get_by_org_id(org.id) == newest_first(
            [org_level, app_level, user_level, both, elsewhere]
        )
        assert await arepos.policies.get_by_app_id(org.id, app.id) == newest_first(
            [app_level, both]
        )
        assert await arepos.policies.get_by_user_id(org.id, user.id) == newest_first(
            [user_level, both]
        )
        assert await arepos.policies.get_by_app_id(org.id, uuid.uuid4()) == []
        assert await arepos.policies.get_by_user_id(org.id, uuid.uuid4()) == []


async def test_applicable_policies_follow_precedence(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        other_app, other_user = await make_app(arepos, org.id), await make_user(arepos, org.id)
        stranger = await make_tenant(arepos)

        async def policy(**fields: Any) -> Any:
            return await make_policy(arepos, org.id, **fields)

        # made in an order unrelated to precedence
        org_low = await policy(priority=1, created_at=at(0))
        app_high = await policy(app_id=app.id, priority=9, created_at=at(5))
        user_any_app = await policy(user_id=user.id, priority=-3, created_at=at(6))
        both_early = await policy(app_id=app.id, user_id=user.id, priority=0, created_at=at(1))
        both_high = await policy(app_id=app.id, user_id=user.id, priority=5, created_at=at(9))
        org_high = await policy(priority=2, created_at=at(3))
        # same level, priority and time: the id decides
        ties = [await policy(app_id=app.id, priority=4, created_at=at(2)) for _ in range(3)]
        # never applicable to (org, app, user)
        await policy(enabled=False)
        await policy(app_id=app.id, user_id=user.id, enabled=False, priority=100)
        await policy(app_id=other_app.id, priority=100)
        await policy(user_id=other_user.id, priority=100)
        await policy(app_id=other_app.id, user_id=user.id, priority=100)
        stranger_org_level = await make_policy(arepos, stranger.org.id, priority=100)
        await make_policy(arepos, stranger.org.id, app_id=stranger.app.id, priority=100)

        expected = [
            both_high,
            both_early,
            user_any_app,
            app_high,
            *sorted(ties, key=lambda p: p.id),
            org_high,
            org_low,
        ]
        assert await arepos.policies.get_applicable_policies(org.id, app.id, user.id) == expected
        assert await arepos.policies.get_applicable_policies(org.id, app.id) == [
            app_high,
            *sorted(ties, key=lambda p: p.id),
            org_high,
            org_low,
        ]
        assert await arepos.policies.get_applicable_policies(org.id, app.id, None) == (
            await arepos.policies.get_applicable_policies(org.id, app.id)
        )
        # an app the org's app-level policies do not name: org level and the user's any-app one
        assert await arepos.policies.get_applicable_policies(org.id, stranger.app.id, user.id) == [
            user_any_app,
            org_high,
            org_low,
        ]
        # the org id scopes everything: another org sees none of these, only its own
        applicable = await arepos.policies.get_applicable_policies(stranger.org.id, app.id, user.id)
        assert applicable == [stranger_org_level]


async def test_resolve_picks_the_first_applicable_policy_per_type(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        budget = TokenBudgetConfig(max_tokens=1000)
        models = ModelAllowlistConfig(models=["gpt-4o"])
        org_rate = await make_policy(arepos, org.id, priority=50)
        app_rate = await make_policy(arepos, org.id, app_id=app.id)
        user_rate = await make_policy(arepos, org.id, user_id=user.id, priority=-1)
        org_budget = await make_policy(arepos, org.id, budget, priority=1)
        await make_policy(arepos, org.id, budget, priority=0)
        app_models = await make_policy(arepos, org.id, models, app_id=app.id)
        await make_policy(arepos, org.id, models, app_id=app.id, user_id=user.id, enabled=False)

        assert await arepos.policies.resolve(org.id, app.id, user.id) == {
            PolicyType.RATE_LIMIT: user_rate,
            PolicyType.TOKEN_BUDGET: org_budget,
            PolicyType.MODEL_ALLOWLIST: app_models,
        }
        assert await arepos.policies.resolve(org.id, app.id) == {
            PolicyType.RATE_LIMIT: app_rate,
            PolicyType.TOKEN_BUDGET: org_budget,
            PolicyType.MODEL_ALLOWLIST: app_models,
        }
        other_app = await make_app(arepos, org.id)
        assert await arepos.policies.resolve(org.id, other_app.id) == {
            PolicyType.RATE_LIMIT: org_rate,
            PolicyType.TOKEN_BUDGET: org_budget,
        }
        assert await arepos.policies.resolve(uuid.uuid4(), app.id, user.id) == {}


async def test_update_changes_config_type_and_is_optimistic(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        policy = await make_policy(arepos, org.id, created_at=at(0))
        budget = CostBudgetConfig(max_cost=Decimal("99.5"))
        updated = await arepos.policies.update(
            msgspec.structs.replace(
                policy, name="budget", config=budget, priority=-2, enabled=False
            )
        )
        assert (updated.name, updated.config, updated.policy_type) == (
            "budget",
            budget,
            PolicyType.COST_BUDGET,
        )
        assert (updated.priority, updated.enabled, updated.version) == (-2, False, 2)
        assert updated.updated_at > policy.updated_at and updated.created_at == policy.created_at
        assert await arepos.policies.get_by_id(org.id, policy.id) == updated

        with pytest.raises(ConflictError) as caught:
            await arepos.policies.update(msgspec.structs.replace(policy, priority=3))
        assert caught.value.constraint == "version"
        assert await arepos.policies.get_by_id(org.id, policy.id) == updated


async def test_delete_and_missing_rows(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        policy, keep = await make_policy(arepos, org.id), await make_policy(arepos, org.id)
        await arepos.policies.delete(org.id, policy.id)
        assert await arepos.policies.get_by_id(org.id, policy.id) is None
        assert await arepos.policies.get_by_id(org.id, uuid.uuid4()) is None
        assert await arepos.policies.get_by_org_id(org.id) == [keep]
        with pytest.raises(NotFoundError):
            await arepos.policies.delete(org.id, policy.id)
        with pytest.raises(NotFoundError):
            await arepos.policies.update(msgspec.structs.replace(policy, name="ghost"))


@pytest.mark.parametrize("field", ["app_id", "user_id"])
async def test_app_or_user_of_another_org_is_a_reference_violation(
    shared_config: DatabaseConfig, field: str
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        stranger = await make_tenant(arepos)
        foreign = {"app_id": stranger.app.id, "user_id": stranger.user.id}[field]
        with pytest.raises(ReferenceViolationError) as caught:
            # config given: the one-key dict can then only fill **fields
            await make_policy(arepos, org.id, config=None, **{field: foreign})
        assert caught.value.constraint == f"policies_{field.removesuffix('_id')}_fkey"
        assert f"{field} does not reference" in str(caught.value)
        assert await arepos.policies.get_by_org_id(org.id) == []
        assert await arepos.policies.get_by_org_id(stranger.org.id) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"priority": 2**31}, "priority"),
        ({"priority": -(2**31) - 1}, "priority"),
        ({"priority": True}, "priority"),
        ({"enabled": 1}, "enabled"),
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"app_id": "not-a-uuid"}, "app_id"),
    ],
)
async def test_invalid_fields_are_rejected(
    shared_config: DatabaseConfig, fields: dict[str, Any], field: str
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        with pytest.raises(ValidationError, match=field):
            await make_policy(arepos, org.id, **fields)
        assert await arepos.policies.get_by_org_id(org.id) == []


async def test_extreme_priorities_are_stored(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        high = await make_policy(arepos, org.id, priority=2**31 - 1)
        low = await make_policy(arepos, org.id, priority=-(2**31))
        assert await arepos.policies.get_applicable_policies(org.id, uuid.uuid4()) == [high, low]


async def test_a_stored_config_that_no_longer_decodes_is_an_llmcp_error(
    shared_config: DatabaseConfig,
) -> None:
    """Rows written outside the repository (a DBA, an older release) still come back as
    llmcp errors, never as a raw decoding error."""
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        policy = await make_policy(arepos, org.id)
        tm = afactory.transaction_manager()
        async with tm.transaction(), tm.connection() as conn:
            await aset_tenant(conn, org.id)  # row-level security: the policy's tenant
            await conn.execute(
                'UPDATE policies SET config = \'{"type": "rate_limit"}\' WHERE id = %s',
                (policy.id,),
            )
        with pytest.raises(LlmcpError):
            await arepos.policies.get_by_id(org.id, policy.id)
