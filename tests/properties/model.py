"""Reference models: small, obviously-correct Python versions of what the SQL does.

They are written from DESIGN.md, not from the SQL, and share no code with llmcp.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from llmcp.generated.models import Policy, PolicyType


class Keyed(Protocol):
    @property
    def id(self) -> uuid.UUID: ...

    @property
    def created_at(self) -> datetime.datetime: ...


K = TypeVar("K", bound=Keyed)


def newest_first(rows: Iterable[K]) -> list[K]:
    """The documented order of every listing: created_at descending, then id descending.

    PostgreSQL compares uuids byte by byte, which is the order of ``UUID.int``.
    """
    return sorted(rows, key=lambda row: (row.created_at, row.id.int), reverse=True)


def oldest_first(rows: Iterable[K]) -> list[K]:
    """A request's audit trail: created_at ascending, then id ascending."""
    return sorted(rows, key=lambda row: (row.created_at, row.id.int))


def ids(rows: Iterable[Keyed]) -> list[uuid.UUID]:
    return [row.id for row in rows]


def specificity(policy: Policy) -> int:
    """DESIGN.md: user+app > user > app > org (lower sorts first)."""
    if policy.user_id is not None and policy.app_id is not None:
        return 0
    if policy.user_id is not None:
        return 1
    if policy.app_id is not None:
        return 2
    return 3


def applies(
    policy: Policy, org_id: uuid.UUID, app_id: uuid.UUID, user_id: uuid.UUID | None
) -> bool:
    """Whether ``policy`` applies to a request of ``(org, app, user or None)``."""
    if not policy.enabled or policy.org_id != org_id:
        return False
    if policy.app_id is None and policy.user_id is None:
        return True  # organization level
    if policy.user_id is None:
        return policy.app_id == app_id  # application level: that application only
    # user level: that user, for any application or for that application
    return user_id is not None and policy.user_id == user_id and policy.app_id in (None, app_id)


def applicable(
    policies: Sequence[Policy], org_id: uuid.UUID, app_id: uuid.UUID, user_id: uuid.UUID | None
) -> list[Policy]:
    """``get_applicable_policies``: applicable ones, most specific first, then priority
    descending, then created_at ascending, then id ascending (a total order)."""
    chosen = [p for p in policies if applies(p, org_id, app_id, user_id)]
    return sorted(chosen, key=lambda p: (specificity(p), -p.priority, p.created_at, p.id.int))


def resolved(
    policies: Sequence[Policy], org_id: uuid.UUID, app_id: uuid.UUID, user_id: uuid.UUID | None
) -> dict[PolicyType, Policy]:
    """The resolver: per policy type, the first applicable policy."""
    effective: dict[PolicyType, Policy] = {}
    for policy in applicable(policies, org_id, app_id, user_id):
        effective.setdefault(policy.policy_type, policy)
    return effective
