"""Reference models: small, obviously-correct Python versions of what the SQL does.

They are written from DESIGN.md and issue 12 (the security model), not from the SQL,
and share no code with llmcp.
"""

from __future__ import annotations

import datetime
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import msgspec

from llmcp.generated.models import AuditLog, InferenceRequest, Policy, PolicyType, User


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


# -- e-mail addresses ---------------------------------------------------------------


def email_key(address: str) -> str:
    """What two e-mail addresses are compared by (issue 12, item 5): NFKC, then full
    case folding, then NFKC again. Case never matters, and a compatibility form (a
    Kelvin sign, a full-width letter, a ligature) is the plain spelling it looks like."""
    once = unicodedata.normalize("NFKC", address)
    return unicodedata.normalize("NFKC", once.casefold())


def email_taken(
    users: Iterable[User], org_id: uuid.UUID, email: str, *, besides: uuid.UUID | None = None
) -> bool:
    """Whether a user of ``org_id`` other than ``besides`` has an address with the key of
    ``email``: e-mail addresses are unique per organization, not across organizations."""
    key = email_key(email)
    return any(
        user.org_id == org_id and user.id != besides and email_key(user.email) == key
        for user in users
    )


def request_id_taken(
    requests: Iterable[InferenceRequest], org_id: uuid.UUID, request_id: str
) -> bool:
    """A request id is unique per organization (another organization may use it too)."""
    return any(r.org_id == org_id and r.request_id == request_id for r in requests)


def request_trail(logs: Iterable[AuditLog], org_id: uuid.UUID, request_id: str) -> list[AuditLog]:
    """``audit_logs.get_by_request_id(org_id, request_id)``: that organization's entries
    naming the request, oldest first (another organization's entries never)."""
    return oldest_first(
        log for log in logs if log.org_id == org_id and log.request_id == request_id
    )


# -- deletions ------------------------------------------------------------------------

REFERENCE = {"organizations": "org_id", "applications": "app_id", "users": "user_id"}
"""The column by which a row names a row of each table that others reference."""

ON_DELETE: dict[str, dict[str, str]] = {
    "organizations": {
        "applications": "delete",
        "users": "delete",
        "policies": "delete",
        "inference_requests": "delete",
        "audit_logs": "keep",
    },
    "applications": {"policies": "delete", "inference_requests": "delete", "audit_logs": "keep"},
    "users": {"policies": "delete", "inference_requests": "set null", "audit_logs": "keep"},
}
"""What deleting a row does to the rows that name it: they go ("delete"), lose the
reference ("set null": an UPDATE, so a versioned row's version moves on), or stay as
they are ("keep"): the audit trail outlives what it records, ids intact."""


def delete(
    tables: Mapping[str, dict[uuid.UUID, Any]], table: str, row_id: uuid.UUID
) -> set[uuid.UUID]:
    """Delete ``row_id`` of ``table`` from ``tables`` (keyed by table name: organizations,
    applications, users, policies, audit_logs, inference_requests) with what follows
    (``ON_DELETE``, recursively). Returns the ids of the rows a "set null" updated."""
    touched: set[uuid.UUID] = set()
    del tables[table][row_id]
    column = REFERENCE.get(table)
    for other, effect in ON_DELETE.get(table, {}).items():
        rows = tables[other]
        for other_id, row in list(rows.items()):
            if other_id not in rows or getattr(row, column or "", None) != row_id:
                continue
            if effect == "delete":
                touched |= delete(tables, other, other_id)
            elif effect == "set null":
                changes: dict[str, Any] = {column or "": None}
                if hasattr(row, "version"):  # the touch trigger fires on the cascade
                    changes["version"] = row.version + 1
                rows[other_id] = msgspec.structs.replace(row, **changes)
                touched.add(other_id)
    return touched
