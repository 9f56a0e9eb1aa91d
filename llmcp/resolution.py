"""Policy resolution: the effective policy of each type, from the applicable ones."""

from __future__ import annotations

from collections.abc import Iterable

from llmcp.generated.models import Policy, PolicyType


def level(policy: Policy) -> int:
    """Specificity rank: 0 user+app, 1 user, 2 app, 3 organization (lower wins)."""
    if policy.user_id is not None:
        return 0 if policy.app_id is not None else 1
    return 2 if policy.app_id is not None else 3


def resolve(applicable: Iterable[Policy]) -> dict[PolicyType, Policy]:
    """Per policy type, the first of ``applicable`` (already in precedence order)."""
    effective: dict[PolicyType, Policy] = {}
    for policy in applicable:
        effective.setdefault(policy.policy_type, policy)
    return effective
