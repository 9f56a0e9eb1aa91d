"""Synthetic data for benchmarks, query plans and demos: ``llmcp seed``.

:func:`seed` fills a migrated database with organizations, their applications,
users and policies (at every level: organization, application, user, user and
application), inference requests spread over a 30-day window, and audit logs
(one entry per created entity, then entries that follow the requests).

- Realistic shapes: a few large tenants and a long tail; more traffic in
  working hours; about 92% of requests completed, 4% failed, 3.5% rejected by a
  policy, pending only in the last minutes; log-normal prompt and completion
  tokens; cost from per-model prices; latency growing with the completion.
- Deterministic: every value comes from one ``random.Random(seed)`` and the
  window is fixed (it ends at :data:`WINDOW_END`), so the same arguments give
  the same rows, ids included. Names, slugs and e-mail addresses carry the
  seed, so two different seeds can fill one database side by side; the same
  seed twice collides (same ids) and fails with a :class:`ConflictError`.
- Valid: every CHECK and foreign key of the schema holds (composite
  ``(org_id, app_id)`` / ``(org_id, user_id)`` keys stay inside one
  organization, ``total_tokens = prompt_tokens + completion_tokens``,
  ``completed_at >= created_at``, unique slugs, e-mails, API key hashes and
  request ids).
- Fast: rows go in with COPY, in chunks; then ``VACUUM (ANALYZE)``, so that the
  planner sees statistics and a visibility map as a settled database has them.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import queue
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

import msgspec
import psycopg

from llmcp.error_map import map_error
from llmcp.errors import ValidationError
from llmcp.policy_config import (
    CONFIG_BY_TYPE,
    ContentFilterConfig,
    CostBudgetConfig,
    ModelAllowlistConfig,
    PolicyConfig,
    RateLimitConfig,
    TokenBudgetConfig,
)
from llmcp.validation import email_key

__all__ = ["WINDOW_DAYS", "WINDOW_END", "SeedSummary", "seed"]

WINDOW_END = datetime(2026, 1, 1, tzinfo=UTC)
"""The requests are created in the :data:`WINDOW_DAYS` days before this instant."""
WINDOW_DAYS = 30

_CHUNK = 10_000  # requests per COPY statement (and their audit entries in another)
_WINDOW_US = WINDOW_DAYS * 86_400_000_000
_WINDOW_START = WINDOW_END - timedelta(days=WINDOW_DAYS)
_PENDING_US = 10 * 60_000_000  # requests of the last 10 minutes may still be pending

# traffic by hour of day (UTC): a working-day curve
_HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 4, 7, 10, 12, 13, 13, 12, 13, 13, 12, 11, 9, 7, 6, 5, 4, 3, 2)
_HOUR_CUM = tuple(itertools.accumulate(_HOUR_WEIGHTS))


@dataclass(frozen=True, slots=True)
class _Model:
    provider: str
    name: str
    input_price: int  # micro-dollars per 1,000 tokens
    output_price: int
    ms_per_token: float  # generation speed
    weight: int  # share of the traffic


_MODELS = (
    _Model("openai", "gpt-4o", 2_500, 10_000, 12.0, 20),
    _Model("openai", "gpt-4o-mini", 150, 600, 6.0, 30),
    _Model("anthropic", "claude-sonnet-4", 3_000, 15_000, 14.0, 22),
    _Model("anthropic", "claude-haiku-3.5", 800, 4_000, 7.0, 12),
    _Model("google", "gemini-2.0-flash", 100, 400, 5.0, 10),
    _Model("mistral", "mistral-large", 2_000, 6_000, 11.0, 6),
)
_MODEL_CUM = tuple(itertools.accumulate(m.weight for m in _MODELS))

_FAILURES = (
    "upstream timeout after 30s",
    "provider returned 500",
    "provider rate limit (429)",
    "context length exceeded",
    "connection reset by provider",
)
_REJECTIONS = (
    "rejected by policy: rate_limit",
    "rejected by policy: token_budget",
    "rejected by policy: cost_budget",
    "rejected by policy: model_allowlist",
    "rejected by policy: content_filter",
)
_USER_AGENTS = (
    "llmcp-python/0.1",
    "openai-python/1.54.0",
    "anthropic-sdk-python/0.39.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
    "curl/8.7.1",
)
_ADJECTIVES = (
    "amber", "bold", "bright", "calm", "clear", "coral", "crisp", "deep", "eager", "fair",
    "green", "keen", "lucid", "north", "quiet", "rapid", "silver", "solid", "swift", "vivid",
)  # fmt: skip
_NOUNS = (
    "atlas", "beacon", "cedar", "delta", "ember", "falcon", "forge", "harbor", "lantern", "maple",
    "meadow", "orbit", "pine", "quarry", "river", "summit", "tide", "vale", "willow", "zenith",
)  # fmt: skip
_APP_NAMES = (
    "Support Assistant", "Search", "Code Review Bot", "Sales Copilot", "Docs Q&A",
    "Summarizer", "Translation Service", "Data Extraction", "Onboarding Guide", "Chat Widget",
)  # fmt: skip
_FIRST = (
    "ada", "alan", "grace", "linus", "margaret", "ken", "barbara", "dennis", "frances", "edsger",
    "radia", "donald", "sophie", "tim", "hedy", "john", "katherine", "guido", "anita", "bjarne",
)  # fmt: skip
_LAST = (
    "lovelace", "turing", "hopper", "torvalds", "hamilton", "thompson", "liskov", "ritchie",
    "allen", "dijkstra", "perlman", "knuth", "wilson", "berners-lee", "lamarr", "backus",
    "johnson", "van-rossum", "borg", "stroustrup",
)  # fmt: skip
_ROLES = ("owner", "admin", "member", "member", "member", "member", "viewer", "viewer")
_CATEGORIES = ("hate", "self_harm", "sexual", "violence", "pii", "prompt_injection")

_COLUMNS = {
    "organizations": ("id", "name", "slug", "version", "created_at", "updated_at"),
    "applications": (
        "id", "org_id", "name", "description", "api_key_hash", "version", "created_at",
        "updated_at",
    ),
    "users": (
        "id", "org_id", "email", "cognito_sub", "display_name", "role", "version", "created_at",
        "updated_at", "email_key",
    ),
    "policies": (
        "id", "org_id", "app_id", "user_id", "name", "policy_type", "config", "priority",
        "enabled", "version", "created_at", "updated_at",
    ),
    "inference_requests": (
        "id", "org_id", "app_id", "user_id", "request_id", "provider", "model", "status",
        "prompt_tokens", "completion_tokens", "total_tokens", "cost", "latency_ms",
        "error_message", "version", "created_at", "updated_at", "completed_at",
    ),
    "audit_logs": (
        "id", "org_id", "app_id", "user_id", "action", "resource_type", "resource_id",
        "request_id", "details", "ip_address", "user_agent", "created_at",
    ),
}  # fmt: skip
_TABLES = tuple(_COLUMNS)
# what uuid.UUID(int=..., version=4) does to the bits: RFC 4122 variant, version 4
_UUID_CLEAR = ~(0xC000 << 48) & ~(0xF000 << 64)
_UUID_SET = (0x8000 << 48) | (4 << 76)
_POLICY_TYPES = {config: name for name, config in CONFIG_BY_TYPE.items()}


@dataclass(frozen=True, slots=True)
class SeedSummary:
    """Rows written per table, and how long it took (COPY and VACUUM ANALYZE)."""

    organizations: int
    applications: int
    users: int
    policies: int
    inference_requests: int
    audit_logs: int
    seconds: float

    @property
    def rows(self) -> int:
        return (
            self.organizations
            + self.applications
            + self.users
            + self.policies
            + self.inference_requests
            + self.audit_logs
        )


@dataclass(slots=True)
class _Org:
    id: str  # ids are hex strings (PostgreSQL reads them as uuid): cheaper to COPY
    slug: str
    created_at: datetime
    apps: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)


Row = tuple[Any, ...]


class _Progress:
    """A one-line progress bar on stderr (nothing at all when disabled)."""

    def __init__(self, total: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._shown = -1
        self._lock = threading.Lock()

    def advance(self, count: int, label: str) -> None:
        with self._lock:
            self._advance(count, label)

    def _advance(self, count: int, label: str) -> None:
        self.done += count
        if not self.enabled:
            return
        percent = min(100, self.done * 100 // self.total)
        if percent == self._shown:
            return
        self._shown = percent
        filled = percent * 30 // 100
        bar = "#" * filled + "." * (30 - filled)
        self.stream.write(
            f"\rseeding [{bar}] {percent:3d}%  {self.done:,}/{self.total:,} rows  {label:<20}"
        )
        self.stream.flush()

    def status(self, message: str) -> None:
        """Replace the bar by ``message`` (same line)."""
        if self.enabled:
            self.stream.write(f"\r{message:<90}")
            self.stream.flush()

    def close(self) -> None:
        """Erase the line: the caller reports the outcome."""
        if self.enabled:
            self.stream.write("\r" + " " * 90 + "\r")
            self.stream.flush()


class _Generator:
    """Every row, drawn from one seeded random stream in a fixed order."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    # -- helpers ------------------------------------------------------------

    def uuid4(self) -> str:
        """``uuid.UUID(int=rng.getrandbits(128), version=4).hex``, without the object."""
        return f"{self.rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET:032x}"

    def before(self, moment: datetime, *, min_days: float, max_days: float) -> datetime:
        seconds = self.rng.uniform(min_days, max_days) * 86_400
        return (moment - timedelta(seconds=seconds)).replace(microsecond=0)

    def between(self, start: datetime, end: datetime) -> datetime:
        span = (end - start).total_seconds()
        return (start + timedelta(seconds=self.rng.uniform(0, span))).replace(microsecond=0)

    def ip(self) -> str:
        rng = self.rng
        if rng.random() < 0.1:
            return f"2001:db8:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}"
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"

    # -- tenants --------------------------------------------------------------

    def tenants(
        self, count: int
    ) -> tuple[list[_Org], list[Row], list[Row], list[Row], list[Row], list[Row]]:
        """Organizations with their applications, users and policies, and their audit entries."""
        rng = self.rng
        orgs: list[_Org] = []
        org_rows: list[Row] = []
        app_rows: list[Row] = []
        user_rows: list[Row] = []
        policy_rows: list[Row] = []
        audit: list[Row] = []
        user_number = itertools.count(1)
        for n in range(1, count + 1):
            words = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
            slug = f"{words.replace(' ', '-')}-{self.seed}-{n}"
            created = self.before(_WINDOW_START, min_days=120, max_days=720)
            org = _Org(self.uuid4(), slug, created)
            orgs.append(org)
            name = f"{words.title()} {n}"
            org_rows.append((org.id, name, slug, 1, created, created))
            audit.append(self._entity_audit(org.id, "organization", org.id, created, name))

            # the first organizations get the most traffic (see requests()): they are
            # also the ones with the most applications and users
            size = (0.6 + 0.4 * rng.random()) / n**0.35
            for index in range(1 + int(size * 12)):
                app_id = self.uuid4()
                app_created = self.between(created, _WINDOW_START)
                app_name = _APP_NAMES[(n + index) % len(_APP_NAMES)]
                description = None if rng.random() < 0.3 else f"{app_name} of {name}"
                key_hash = hashlib.sha256(rng.randbytes(32)).hexdigest()
                app_rows.append(
                    (app_id, org.id, app_name, description, key_hash, 1, app_created, app_created)
                )
                org.apps.append(app_id)
                audit.append(
                    self._entity_audit(org.id, "application", app_id, app_created, app_name)
                )
            for index in range(3 + int(size * size * 120)):
                user_id = self.uuid4()
                user_created = self.between(created, _WINDOW_START)
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                local = f"{first}.{last}.{next(user_number)}"
                if rng.random() < 0.2:  # some addresses are stored with capitals
                    local = local.title()
                email = f"{local}@{slug}.example.com"
                display = None if rng.random() < 0.15 else f"{first.title()} {last.title()}"
                role = "owner" if index == 0 else rng.choice(_ROLES)
                user_rows.append(
                    (user_id, org.id, email, str(uuid.UUID(self.uuid4())), display, role, 1,
                     user_created, user_created, email_key(email))
                )  # fmt: skip
                org.users.append(user_id)
                audit.append(self._entity_audit(org.id, "user", user_id, user_created, email))
            policy_rows += self._policies(org)
        for row in policy_rows:
            audit.append(self._entity_audit(row[1], "policy", row[0], row[10], row[4]))
        return orgs, org_rows, app_rows, user_rows, policy_rows, audit

    def _policies(self, org: _Org) -> list[Row]:
        """Organization-wide policies, some per application, per user, per user and application."""
        rng = self.rng
        rows: list[Row] = []

        def add(name: str, config: PolicyConfig, app: str | None, user: str | None) -> None:
            created = self.between(org.created_at, _WINDOW_START)
            policy_type = _POLICY_TYPES[type(config)]
            enabled = rng.random() < 0.9
            priority = rng.randrange(0, 11) * 10
            rows.append(
                (self.uuid4(), org.id, app, user, name, policy_type,
                 msgspec.json.encode(config).decode(), priority, enabled, 1, created, created)
            )  # fmt: skip

        add("org rate limit", RateLimitConfig(requests=rng.choice((600, 1200, 6000)),
                                              window_seconds=60), None, None)  # fmt: skip
        add("monthly token budget", TokenBudgetConfig(max_tokens=rng.choice((10, 50, 200)) * 10**6),
            None, None)  # fmt: skip
        add("monthly spend", CostBudgetConfig(max_cost=Decimal(rng.choice((500, 2000, 10000))),
                                              alert_at=0.8), None, None)  # fmt: skip
        if rng.random() < 0.5:
            models = sorted(rng.sample([m.name for m in _MODELS], 3))
            add("approved models", ModelAllowlistConfig(models=models), None, None)
        for app in org.apps:
            add("app rate limit", RateLimitConfig(requests=rng.choice((60, 120, 300)),
                                                  window_seconds=60), app, None)  # fmt: skip
            if rng.random() < 0.5:
                categories = sorted(rng.sample(_CATEGORIES, 3))
                add("content filter", ContentFilterConfig(categories=categories), app, None)
        for user in org.users:
            draw = rng.random()
            if draw < 0.2:
                add("personal token budget",
                    TokenBudgetConfig(max_tokens=rng.choice((1, 5)) * 10**6, period="day"),
                    None, user)  # fmt: skip
            elif draw < 0.3:
                add("user rate limit in app", RateLimitConfig(requests=20, window_seconds=60),
                    rng.choice(org.apps), user)  # fmt: skip
        return rows

    def _entity_audit(self, org_id: str, kind: str, resource: str, at: datetime, name: str) -> Row:
        details = msgspec.json.encode({"name": name}).decode()
        return (
            self.uuid4(), org_id, None, None, f"{kind}_created", kind, resource, None, details,
            self.ip(), self.rng.choice(_USER_AGENTS), at,
        )  # fmt: skip

    # -- traffic --------------------------------------------------------------

    def requests(
        self, orgs: Sequence[_Org], count: int, audit_count: int
    ) -> Iterator[tuple[list[Row], list[Row]]]:
        """Chunks of (inference request rows, audit rows that follow them)."""
        rng = self.rng
        # a few large tenants and a long tail
        weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(orgs))]
        org_cum = list(itertools.accumulate(weights))
        times = self._times(count)
        done = 0
        audit_done = 0
        while done < count:
            size = min(_CHUNK, count - done)
            requests: list[Row] = []
            audit: list[Row] = []
            chosen = rng.choices(orgs, cum_weights=org_cum, k=size)
            models = rng.choices(_MODELS, cum_weights=_MODEL_CUM, k=size)
            for org, model, offset_us in zip(chosen, models, times, strict=False):
                row = self._request(org, model, offset_us)
                requests.append(row)
                # spread the audit entries evenly over the requests (exact total)
                done += 1
                entries = done * audit_count // count - audit_done
                audit_done += entries
                if entries:
                    audit += self._request_audit(row, entries)
            yield requests, audit

    def _times(self, count: int) -> Iterator[int]:
        """``count`` creation times (microseconds into the window) in ascending order.

        Sorted uniform draws one at a time (each is the least of those left), mapped
        through the hour-of-day curve: traffic arrives in time order, as in production.
        """
        rng = self.rng
        per_day = _HOUR_CUM[-1]
        low = 0.0
        for left in range(count, 0, -1):
            low = 1.0 - (1.0 - low) * rng.random() ** (1.0 / left)
            target = low * per_day * WINDOW_DAYS
            day, within_day = divmod(target, per_day)
            hour = bisect.bisect_right(_HOUR_CUM, within_day)
            start = _HOUR_CUM[hour - 1] if hour else 0
            fraction = (within_day - start) / _HOUR_WEIGHTS[hour]
            offset = (int(day) * 24 + hour) * 3_600_000_000 + int(fraction * 3_600_000_000)
            yield min(offset, _WINDOW_US - 1)

    def _request(self, org: _Org, model: _Model, offset_us: int) -> Row:
        rng = self.rng
        created = _WINDOW_START + timedelta(microseconds=offset_us)
        app = rng.choice(org.apps)
        user = rng.choice(org.users) if rng.random() < 0.8 else None
        request_id = f"req_{rng.getrandbits(128):032x}"
        prompt = completion = 0
        cost = "0"
        latency: int | None
        error: str | None = None
        completed: datetime | None
        draw = rng.random()
        if _WINDOW_US - offset_us < _PENDING_US and draw < 0.7:
            status, latency, completed = "pending", None, None
        elif draw < 0.04:
            status = "failed"
            prompt = min(200_000, max(1, int(rng.lognormvariate(6.2, 1.0))))
            latency = int(rng.lognormvariate(8.0, 0.9))
            error = rng.choice(_FAILURES)
            completed = created + timedelta(milliseconds=latency)
        elif draw < 0.075:
            status = "rejected"
            latency = rng.randrange(1, 15)
            error = rng.choice(_REJECTIONS)
            completed = created + timedelta(milliseconds=latency)
        else:
            status = "completed"
            prompt = min(200_000, max(1, int(rng.lognormvariate(6.2, 1.0))))
            completion = min(8_192, max(1, int(rng.lognormvariate(5.3, 0.9))))
            micro = (prompt * model.input_price + completion * model.output_price) // 1000
            cost = f"{micro // 1_000_000}.{micro % 1_000_000:06d}"
            expected = 250 + completion * model.ms_per_token
            latency = int(rng.lognormvariate(math.log(expected), 0.3))
            completed = created + timedelta(milliseconds=latency)
        return (
            self.uuid4(), org.id, app, user, request_id, model.provider, model.name, status,
            prompt, completion, prompt + completion, cost, latency, error, 1, created,
            completed or created, completed,
        )  # fmt: skip

    def _request_audit(self, request: Row, entries: int) -> list[Row]:
        """``entries`` audit rows for one request: requested, a violation, the outcome."""
        rng = self.rng
        req_id, org_id, app_id, user_id, request_id, provider, model, status = request[:8]
        created, completed = request[15], request[17]
        outcome = "inference_requested" if status == "pending" else f"inference_{status}"
        actions = ["inference_requested"]
        if status == "rejected":
            actions.append("policy_violation")
        if outcome != "inference_requested":
            actions.append(outcome)
        if entries <= len(actions):
            actions = actions[len(actions) - entries :]
        else:  # retried calls: more "requested" entries first
            actions = ["inference_requested"] * (entries - len(actions)) + actions
        ip, agent = self.ip(), rng.choice(_USER_AGENTS)
        details = (
            f'{{"model": "{model}", "provider": "{provider}", "status": "{status}"'
            + (f', "error": "{request[13]}"' if request[13] else "")
            + "}"
        )
        rows = []
        for action in actions:
            at = completed if action not in ("inference_requested",) and completed else created
            rows.append(
                (self.uuid4(), org_id, app_id, user_id, action, "inference_request", req_id,
                 request_id, details, ip, agent, at)
            )  # fmt: skip
        return rows


def seed(
    conn_or_url: psycopg.Connection[Any] | str,
    *,
    organizations: int,
    requests: int,
    audit_logs: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> SeedSummary:
    """Fill a migrated database with synthetic data; see the module documentation.

    ``audit_logs`` is the exact number of audit rows: first one per created
    organization, application, user and policy, the rest spread evenly over
    the requests (requested, policy violation, outcome). ``None`` means those
    entity entries plus one per request. ``progress`` draws a progress bar on
    stderr.

    With a URL, two connections load inference requests and audit logs side by
    side (the tenants are committed first, so that both can reference them).
    With a connection, everything is loaded and committed on it, one table at
    a time. Either way the tables are vacuumed and analyzed at the end.
    """
    for name, value, minimum in (
        ("organizations", organizations, 1),
        ("requests", requests, 0),
        ("seed", seed, 0),
        ("audit_logs", 0 if audit_logs is None else audit_logs, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValidationError(f"{name}: must be an integer >= {minimum}")
    plan = _Plan(organizations, requests, audit_logs, seed, progress)
    if isinstance(conn_or_url, str):
        with _connect(conn_or_url) as conn, _connect(conn_or_url) as side:
            return _seed(conn, side, plan)
    return _seed(conn_or_url, None, plan)


@dataclass(frozen=True, slots=True)
class _Plan:
    organizations: int
    requests: int
    audit_logs: int | None
    seed: int
    progress: bool


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url)
    except psycopg.Error as exc:
        raise map_error(exc, operation="seed") from exc


def _seed(
    conn: psycopg.Connection[Any], side: psycopg.Connection[Any] | None, plan: _Plan
) -> SeedSummary:
    started = time.perf_counter()
    generator = _Generator(plan.seed)
    orgs, org_rows, app_rows, user_rows, policy_rows, entity_audit = generator.tenants(
        plan.organizations
    )
    audit_logs = len(entity_audit) + plan.requests if plan.audit_logs is None else plan.audit_logs
    entity_audit = entity_audit[:audit_logs]
    request_audit = audit_logs - len(entity_audit)
    if plan.requests == 0 and request_audit:  # nothing to follow: more entity entries instead
        entity_audit += _updates(generator, entity_audit, request_audit)
        request_audit = 0
    tenants = len(org_rows) + len(app_rows) + len(user_rows) + len(policy_rows)
    bar = _Progress(tenants + plan.requests + audit_logs, enabled=plan.progress)
    written = dict.fromkeys(_TABLES, 0)
    connections = [conn] if side is None else [conn, side]
    try:
        with conn.cursor() as cur:
            for table, rows in (
                ("organizations", org_rows),
                ("applications", app_rows),
                ("users", user_rows),
                ("policies", policy_rows),
                ("audit_logs", entity_audit),
            ):
                written[table] += _copy(cur, table, rows)
                bar.advance(len(rows), table)
            if side is not None:
                conn.commit()  # the other connection must see the tenants
            traffic = generator.requests(orgs, plan.requests, request_audit)
            with _AuditLoader(side or conn, bar, threaded=side is not None) as audit_loader:
                for chunk, audit in traffic:
                    written["inference_requests"] += _copy(cur, "inference_requests", chunk)
                    bar.advance(len(chunk), "inference_requests")
                    audit_loader.load(audit)
            written["audit_logs"] += audit_loader.written
        for connection in connections:
            connection.commit()
        bar.status(f"seeded {bar.done:,} rows; VACUUM (ANALYZE) ...")
        autocommit = conn.autocommit
        conn.autocommit = True
        try:
            conn.execute("VACUUM (ANALYZE)")
        finally:
            conn.autocommit = autocommit
    except psycopg.Error as exc:
        bar.close()
        for connection in connections:
            if not connection.closed and not connection.autocommit:
                connection.rollback()
        raise map_error(exc, operation="seed") from exc
    summary = SeedSummary(
        organizations=written["organizations"],
        applications=written["applications"],
        users=written["users"],
        policies=written["policies"],
        inference_requests=written["inference_requests"],
        audit_logs=written["audit_logs"],
        seconds=time.perf_counter() - started,
    )
    bar.close()
    return summary


class _AuditLoader:
    """COPY chunks of audit rows: on a thread of its own when it has its own connection."""

    def __init__(self, conn: psycopg.Connection[Any], bar: _Progress, *, threaded: bool) -> None:
        self.conn = conn
        self.bar = bar
        self.written = 0
        self._queue: queue.Queue[list[Row] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = (
            threading.Thread(target=self._run, name="llmcp-seed-audit", daemon=True)
            if threaded
            else None
        )

    def __enter__(self) -> _AuditLoader:
        if self._thread is not None:
            self._thread.start()
        return self

    def load(self, rows: list[Row]) -> None:
        if self._thread is None:
            self._copy(rows)
            return
        if self._error is not None:
            raise self._error
        self._queue.put(rows)

    def _copy(self, rows: list[Row]) -> None:
        with self.conn.cursor() as cur:
            self.written += _copy(cur, "audit_logs", rows)
        self.bar.advance(len(rows), "audit_logs")

    def _run(self) -> None:
        while (rows := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._copy(rows)
                except BaseException as exc:  # re-raised on the main thread
                    self._error = exc

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and exc_info[0] is None:
            raise self._error


def _updates(generator: _Generator, entities: list[Row], count: int) -> list[Row]:
    """``count`` "<kind>_updated" entries cycling over the created entities."""
    if not entities:
        return []
    rows = []
    for index in range(count):
        base = entities[index % len(entities)]
        kind = base[5]
        at = base[11] + timedelta(days=1 + index // len(entities))
        rows.append(
            (generator.uuid4(), base[1], None, None, f"{kind}_updated", kind, base[6], None,
             base[8], generator.ip(), base[10], at)
        )  # fmt: skip
    return rows


def _copy(cur: psycopg.Cursor[Any], table: str, rows: Iterable[Row]) -> int:
    columns = ", ".join(_COLUMNS[table])
    count = 0
    # table and column names are our constants, never input
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count
