"""``llmcp demo``: the whole flow on a real PostgreSQL, in a few seconds.

Migrates; creates an organization with applications and users; policies at
organization, application and user level; resolves them for one request;
records inference requests and their audit logs in one transaction; shows that
a rolled-back transaction leaves nothing behind; that another tenant cannot
see an application by its id; that a deleted user's audit trail stays; pages
through the audit log
with a keyset cursor; prints the metrics and the pool's health.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import uuid
from collections.abc import Sequence
from decimal import Decimal

import msgspec

from llmcp.config import DatabaseConfig
from llmcp.dev.scratch import database_url
from llmcp.factory import RepositoryFactory
from llmcp.generated.models import AuditAction, InferenceStatus, UserRole
from llmcp.inputs import (
    NewApplication,
    NewAuditLog,
    NewInferenceRequest,
    NewOrganization,
    NewPolicy,
    NewUser,
)
from llmcp.migrate import Migrator
from llmcp.policy_config import (
    ContentFilterConfig,
    CostBudgetConfig,
    ModelAllowlistConfig,
    RateLimitConfig,
    TokenBudgetConfig,
)
from llmcp.resolution import level

_LEVELS = ("user+app", "user", "app", "org")


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a small aligned table."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if n == 0:
            print("  " + "  ".join("-" * width for width in widths))


def run() -> int:
    with database_url() as url:
        Migrator(url).up()
        # a service sets LLMCP_CURSOR_SECRET; the demo's cursors live as long as it does
        config = DatabaseConfig(url=url, min_size=1, max_size=4, cursor_secret=os.urandom(32))
        with RepositoryFactory.connect(config) as factory:
            _flow(factory)
    return 0


def _flow(factory: RepositoryFactory) -> None:
    repos = factory.repositories()
    tx = factory.transaction_manager()
    health = factory.database.health_check()
    print(f"PostgreSQL {health.server_version}: round trip {health.latency_ms:.2f} ms, migrated")

    suffix = secrets.token_hex(3)
    org = repos.organizations.create(NewOrganization(name="Acme Corp", slug=f"acme-{suffix}"))
    chat, batch = (
        repos.applications.create(
            NewApplication(
                org_id=org.id,
                name=name,
                api_key_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
            )
        )
        for name in ("chat-frontend", "batch-summarizer")
    )
    ada, grace = (
        repos.users.create(
            NewUser(org_id=org.id, email=f"{name}-{suffix}@acme.example", cognito_sub=f"sub-{name}-{suffix}",
                    display_name=name.title(), role=role)
        )
        for name, role in (("ada", UserRole.ADMIN), ("grace", UserRole.MEMBER))
    )  # fmt: skip
    table(
        f"organization {org.slug}",
        ["kind", "name", "id"],
        [("app", a.name, a.id) for a in (chat, batch)]
        + [("user", u.email, u.id) for u in (ada, grace)],
    )

    policies = [
        NewPolicy(org_id=org.id, name="org rate limit", config=RateLimitConfig(requests=600, window_seconds=60)),
        NewPolicy(org_id=org.id, name="org budget", config=CostBudgetConfig(max_cost=Decimal("5000.00"))),
        NewPolicy(org_id=org.id, name="safety", config=ContentFilterConfig(categories=["violence", "self-harm"])),
        NewPolicy(org_id=org.id, app_id=chat.id, name="chat rate limit",
                  config=RateLimitConfig(requests=120, window_seconds=60)),
        NewPolicy(org_id=org.id, app_id=chat.id, name="chat models",
                  config=ModelAllowlistConfig(models=["gpt-4o-mini", "claude-haiku"])),
        NewPolicy(org_id=org.id, user_id=ada.id, name="ada tokens",
                  config=TokenBudgetConfig(max_tokens=2_000_000, period="day")),
        NewPolicy(org_id=org.id, user_id=ada.id, app_id=chat.id, name="ada on chat", priority=10,
                  config=RateLimitConfig(requests=30, window_seconds=60)),
        NewPolicy(org_id=org.id, user_id=grace.id, name="grace tokens",
                  config=TokenBudgetConfig(max_tokens=10, period="hour")),
    ]  # fmt: skip
    for policy in policies:
        repos.policies.create(policy)

    applicable = repos.policies.get_applicable_policies(org.id, chat.id, ada.id)
    table(
        "applicable policies for ada on chat-frontend (one query, most specific first)",
        ["level", "priority", "type", "name"],
        [(_LEVELS[level(p)], p.priority, p.policy_type, p.name) for p in applicable],
    )
    effective = repos.policies.resolve(org.id, chat.id, ada.id)
    table(
        "effective policy per type",
        ["type", "from", "config"],
        [(t, p.name, msgspec.json.encode(p.config).decode()) for t, p in sorted(effective.items())],
    )

    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    outcomes = [
        (InferenceStatus.COMPLETED, 812, 256, Decimal("0.004120"), 640),
        (InferenceStatus.COMPLETED, 1536, 498, Decimal("0.010170"), 1210),
        (InferenceStatus.FAILED, 402, 0, Decimal("0.000000"), 95),
        (InferenceStatus.REJECTED, 0, 0, Decimal("0.000000"), None),
        (InferenceStatus.COMPLETED, 96, 31, Decimal("0.000640"), 180),
    ]

    def record() -> int:
        with tx.transaction():  # all of these rows, or none
            for n, (status, prompt, completion, cost, latency) in enumerate(outcomes):
                created = start + dt.timedelta(minutes=10 * n)
                request = repos.inference_requests.create(
                    NewInferenceRequest(
                        org_id=org.id,
                        app_id=chat.id,
                        user_id=ada.id,
                        request_id=f"req-{suffix}-{n}",
                        provider="openai",
                        model="gpt-4o-mini",
                        status=status,
                        prompt_tokens=prompt,
                        completion_tokens=completion,
                        cost=cost,
                        latency_ms=latency,
                        created_at=created,
                        completed_at=None
                        if latency is None
                        else created + dt.timedelta(milliseconds=latency),
                        error_message="upstream timeout"
                        if status is InferenceStatus.FAILED
                        else None,
                    )
                )
                action = AuditAction(f"inference_{status.value}")
                repos.audit_logs.insert(
                    NewAuditLog(
                        org_id=org.id,
                        app_id=chat.id,
                        user_id=ada.id,
                        action=action,
                        resource_type="inference_request",
                        resource_id=request.id,
                        request_id=request.request_id,
                        details={"model": request.model},
                        created_at=created,
                    )
                )
        return len(outcomes)

    print(f"\nrecorded {record()} inference requests and their audit logs in one transaction")

    doomed = uuid.uuid4()
    try:
        with tx.transaction():
            repos.applications.create(
                NewApplication(org_id=org.id, name="doomed", api_key_hash="0" * 64, id=doomed)
            )
            raise RuntimeError("something went wrong after the insert")
    except RuntimeError as exc:
        print(f"rolled back a transaction ({exc}): application present afterwards? "
              f"{repos.applications.get_by_id(org.id, doomed) is not None}")  # fmt: skip

    globex = repos.organizations.create(NewOrganization(name="Globex", slug=f"globex-{suffix}"))
    theirs = repos.applications.get_by_id(globex.id, chat.id)
    print(f"another tenant asks for {chat.name} by its id: {theirs} (as if it did not exist)")
    repos.audit_logs.insert(
        NewAuditLog(org_id=org.id, user_id=grace.id, action=AuditAction.USER_DELETED,
                    resource_type="user", resource_id=grace.id)
    )  # fmt: skip
    repos.users.delete(org.id, grace.id)
    kept = repos.audit_logs.get_by_user_id(org.id, grace.id)
    print(f"deleted user {grace.display_name}: audit entries that still name her: {len(kept)}")

    page = repos.audit_logs.page_by_org_id(org.id, limit=2)
    number = 1
    rows = []
    while True:
        rows += [
            (number, log.created_at.strftime("%H:%M:%S"), log.action, log.request_id)
            for log in page.items
        ]
        if page.next_cursor is None:
            break
        number += 1
        page = repos.audit_logs.page_by_org_id(org.id, limit=2, cursor=page.next_cursor)
    table(
        "audit log, keyset pages of 2 (newest first)", ["page", "time", "action", "request"], rows
    )

    metrics = repos.inference_requests.get_metrics(org.id, start, start + dt.timedelta(hours=3))
    table(
        "inference metrics (last 3 hours)",
        ["requests", "completed", "failed", "rejected", "tokens", "cost", "avg latency ms"],
        [(metrics.total_requests, metrics.completed_requests, metrics.failed_requests,
          metrics.rejected_requests, metrics.total_tokens, metrics.total_cost,
          f"{metrics.avg_latency_ms:.1f}")],
    )  # fmt: skip
    stats = factory.database.pool_stats()
    print(
        f"\npool: {stats.size} connection(s), {stats.requests} requests served, {stats.errors} errors"
    )
