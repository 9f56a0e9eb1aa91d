"""Hypothesis strategies for llmcp's input structs, valid by construction.

Every value drawn here is one the repositories accept: texts within their
column's length, without the control characters and lone surrogates that
:mod:`llmcp.validation` refuses (SQL fragments and arbitrary Unicode are
included: they are valid data); aware datetimes whose UTC instant stays inside
the years 2..9998; keys in the shape their CHECK constraints want.

Unique columns end with a token taken from a per-process counter, so drawn
rows never collide with each other, nor with rows that earlier examples
committed: ``slug``, ``cognito_sub`` and ``api_key_hash`` (unique across
tenants), ``email`` (unique per organization, compared by
:func:`llmcp.validation.email_key`: case and look-alike forms do not make
another address) and an inference request's ``request_id`` (unique per
organization). ``unique=False`` drops the token (to provoke conflicts on
purpose).

Ids are left to the repository (``None``) unless ``ids=`` is given. Pass
``ids=unique_ids()`` for ids drawn by hypothesis yet unique per example and
per run (so tests whose writes commit never collide, in one run or across
runs), ``ids=st.uuids()`` for plain drawn ids, which repeat from example to
example and from run to run (they shrink towards a few simple values): insert
those in a transaction that is rolled back (:func:`llmcp.testing.rolled_back`).
:func:`tenant_plans` draws unique ids unless ``unique_ids=False``.

>>> from hypothesis import given
>>> from llmcp.testing import strategies as lst
>>> @given(lst.new_organizations())
... def test_create(new): ...
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import os
import string
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import msgspec
from hypothesis import strategies as st

from llmcp.generated.models import (
    Application,
    AuditAction,
    InferenceStatus,
    Organization,
    Policy,
    User,
    UserRole,
)
from llmcp.inputs import (
    NewApplication,
    NewAuditLog,
    NewInferenceRequest,
    NewOrganization,
    NewPolicy,
    NewUser,
)
from llmcp.json_types import JsonValue
from llmcp.policy_config import (
    ContentFilterConfig,
    CostBudgetConfig,
    ModelAllowlistConfig,
    PolicyConfig,
    RateLimitConfig,
    TokenBudgetConfig,
)

if TYPE_CHECKING:
    from llmcp.factory import Repositories
    from llmcp.factory_async import AsyncRepositories

__all__ = [
    "SQL_FRAGMENTS",
    "TenantPlan",
    "api_key_hashes",
    "aware_datetimes",
    "clustered_datetimes",
    "cognito_subs",
    "emails",
    "ip_addresses",
    "json_objects",
    "new_applications",
    "new_audit_logs",
    "new_inference_requests",
    "new_organizations",
    "new_policies",
    "new_users",
    "policy_configs",
    "slugs",
    "tenant_plans",
    "texts",
    "unique_ids",
    "unique_tokens",
]

T = TypeVar("T")
IdChoice: TypeAlias = "uuid.UUID | st.SearchStrategy[uuid.UUID]"
"""An id, or a strategy drawing one."""

INT32_MAX = 2**31 - 1

SQL_FRAGMENTS: tuple[str, ...] = (
    "'; DROP TABLE organizations; --",
    "Robert'); DROP TABLE users;--",
    "' OR '1'='1",
    '" OR ""="',
    "1; SELECT pg_sleep(10)",
    "' UNION SELECT id, slug FROM organizations --",
    "$1",
    "$$; DROP TABLE policies; $$",
    ":org_id",
    "%(name)s",
    "%s",
    "{}",
    "\\",
    "\\x00",
    "E'\\n'",
    "/* comment */",
    "-- comment",
    "NULL",
    "null",
    "''",
    "`rm -rf /`",
)
"""Strings that look like SQL: valid data, which must be stored as given."""

# What llmcp.validation refuses in text: C0 controls except tab, LF and CR.
_FORBIDDEN_CONTROLS = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r")
_TEXT_CHARS = st.characters(codec="utf-8", exclude_characters=_FORBIDDEN_CONTROLS)
# A model or category name (policy_config.ModelName): no C0 control at all.
_NAME_CHARS = st.characters(codec="utf-8", min_codepoint=0x20)
# No "@" and no whitespace, as Python's \s and PostgreSQL's [:space:] see it.
_EMAIL_CHARS = st.characters(
    codec="utf-8", min_codepoint=0x21, exclude_categories=["Z"], exclude_characters="@\x85"
).filter(lambda ch: not ch.isspace())

_LEAN_WORDS = ("", "a", "chat", "Zoë", "'; DROP TABLE organizations; --")

_RUN = os.urandom(3).hex()
_COUNTER = itertools.count()
UTC_MIN = datetime.datetime(2, 1, 1)
UTC_MAX = datetime.datetime(9998, 12, 31)


def _choice(value: T | st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


def _next_token() -> str:
    return f"{_RUN}{next(_COUNTER):x}"


def unique_tokens() -> st.SearchStrategy[str]:
    """Short lowercase-hex words, never the same twice in a process (nor, very likely, across)."""
    return st.builds(_next_token)


_ID_SALT = int.from_bytes(os.urandom(4)) << 32  # this run's, in bits 32..63
_ID_COUNTER = itertools.count()
_HIGH_HALF = ~((1 << 64) - 1)


def _made_unique(drawn: uuid.UUID) -> uuid.UUID:
    return uuid.UUID(int=(drawn.int & _HIGH_HALF) | _ID_SALT | (next(_ID_COUNTER) & 0xFFFFFFFF))


def unique_ids() -> st.SearchStrategy[uuid.UUID]:
    """UUIDs drawn by hypothesis, then made unique per example and per run.

    The first 64 bits are hypothesis's (they decide how ids compare, so examples
    still explore orders and ties and replay them), the last 64 a random salt of
    this run and a counter: never the same id twice in a process, and across runs
    only if two runs drew the same 32-bit salt.
    """
    return _UNIQUE_IDS


_UNIQUE_IDS = st.uuids().map(_made_unique)


def texts(*, min_size: int = 1, max_size: int = 200, lean: bool = False) -> st.SearchStrategy[str]:
    """Valid text of ``min_size``..``max_size`` characters: arbitrary Unicode (no lone
    surrogates, no C0 control but tab, LF and CR), SQL fragments, and strings of exactly
    ``max_size`` characters. ``lean``: one of a few short words (cheap to generate)."""
    if lean:
        return st.sampled_from([w for w in _LEAN_WORDS if min_size <= len(w) <= max_size])
    plain = st.text(_TEXT_CHARS, min_size=min_size, max_size=min(max_size, 48))
    fragment = st.sampled_from([f for f in SQL_FRAGMENTS if min_size <= len(f) <= max_size])
    longest = st.builds(lambda ch: ch * max_size, _TEXT_CHARS)
    mixed = st.builds(lambda a, b: a + b, plain, fragment).filter(lambda s: len(s) <= max_size)
    return st.one_of(plain, fragment, mixed, longest)


def _optional(strategy: st.SearchStrategy[T], lean: bool = False) -> st.SearchStrategy[T | None]:
    return st.none() if lean else st.none() | strategy


def _offsets() -> st.SearchStrategy[datetime.timezone]:
    whole_minutes = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
        lambda m: datetime.timezone(datetime.timedelta(minutes=m))
    )
    any_offset = st.timedeltas(
        min_value=datetime.timedelta(hours=-23, minutes=-59),
        max_value=datetime.timedelta(hours=23, minutes=59),
    ).map(datetime.timezone)
    return st.one_of(st.just(datetime.UTC), whole_minutes, any_offset)


def aware_datetimes(
    *,
    min_value: datetime.datetime = UTC_MIN,
    max_value: datetime.datetime = UTC_MAX,
) -> st.SearchStrategy[datetime.datetime]:
    """Timezone-aware datetimes (UTC or any fixed offset under a day), wall time between
    the naive ``min_value`` and ``max_value``; the defaults keep the UTC instant inside
    years 1..9999, which Python can read back."""
    return st.datetimes(min_value=min_value, max_value=max_value, timezones=_offsets())


def clustered_datetimes(
    count: int = 3,
    *,
    base: datetime.datetime = datetime.datetime(2024, 3, 1, 12, tzinfo=datetime.UTC),
    step: datetime.timedelta = datetime.timedelta(microseconds=1),
) -> st.SearchStrategy[datetime.datetime]:
    """One of ``count`` instants ``step`` apart, each expressed in a random offset: many
    rows share a ``created_at``, which exercises the ``id`` tie-breaker of every order."""
    instants = st.integers(0, count - 1).map(lambda i: base + i * step)
    return st.builds(lambda moment, tz: moment.astimezone(tz), instants, _offsets())


def slugs(*, unique: bool = True, lean: bool = False) -> st.SearchStrategy[str]:
    """Organization slugs: lowercase words joined by hyphens, at most 63 characters."""
    if lean and unique:
        return unique_tokens().map(lambda t: f"org-{t}")
    word = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)
    words = st.lists(word, min_size=1, max_size=4).map("-".join)
    if not unique:
        return words
    return st.builds(lambda w, t: f"{w[: 62 - len(t)].strip('-')}-{t}", words, unique_tokens())


def api_key_hashes(*, unique: bool = True, lean: bool = False) -> st.SearchStrategy[str]:
    """SHA-256 hex digests (64 lowercase hex digits)."""
    if lean and unique:
        return unique_tokens().map(lambda t: hashlib.sha256(t.encode()).hexdigest())
    drawn = st.text("0123456789abcdef", min_size=64, max_size=64)
    if not unique:
        return drawn
    return st.builds(
        lambda d, t: hashlib.sha256(f"{d}:{t}".encode()).hexdigest(), drawn, unique_tokens()
    )


def emails(*, unique: bool = True, lean: bool = False) -> st.SearchStrategy[str]:
    """E-mail addresses ``local@domain.tld`` (Unicode allowed; no "@", no whitespace)."""
    if lean and unique:
        return unique_tokens().map(lambda t: f"user.{t}@example.com")
    part = st.text(_EMAIL_CHARS, min_size=1, max_size=20)
    ascii_part = st.text(string.ascii_letters + string.digits + "._+-", min_size=1, max_size=20)
    local = ascii_part | part
    domain = st.builds(lambda a, b: f"{a}.{b}", ascii_part | part, ascii_part | part)
    if not unique:
        return st.builds(lambda lo, d: f"{lo}@{d}", local, domain)
    return st.builds(lambda lo, t, d: f"{lo}.{t}@{d}", local, unique_tokens(), domain)


def cognito_subs(*, unique: bool = True, lean: bool = False) -> st.SearchStrategy[str]:
    """Cognito subjects: any valid text up to 128 characters."""
    if lean and unique:
        return unique_tokens().map(lambda t: f"sub|{t}")
    drawn = texts(max_size=100)
    if not unique:
        return drawn
    return st.builds(lambda s, t: f"{s}|{t}", drawn, unique_tokens())


def ip_addresses() -> st.SearchStrategy[str]:
    """IPv4 and IPv6 addresses as text (as ``NewAuditLog.ip_address`` takes them)."""
    return st.ip_addresses().map(str)


def _json_strings() -> st.SearchStrategy[str]:
    return st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)


def json_objects(*, max_leaves: int = 12) -> st.SearchStrategy[dict[str, JsonValue]]:
    """JSON objects as jsonb stores them (no NUL, finite floats). Note that jsonb keeps
    numbers, not their Python type: a float such as ``1e16`` may come back as an int."""
    scalars: st.SearchStrategy[JsonValue] = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        _json_strings(),
        st.sampled_from(SQL_FRAGMENTS),
    )
    values: st.SearchStrategy[JsonValue] = st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(_json_strings(), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )
    return st.dictionaries(_json_strings(), values, max_size=5)


_PERIODS = ("hour", "day", "week", "month")
_POSITIVE = st.integers(1, INT32_MAX)
_MODEL_NAMES = st.one_of(
    st.text(_NAME_CHARS, min_size=1, max_size=40),
    st.sampled_from(("gpt-4o", "claude-3-5-sonnet", "llama-3.1-70b", *SQL_FRAGMENTS)),
)


_LEAN_CONFIGS: dict[type[Any], PolicyConfig] = {
    RateLimitConfig: RateLimitConfig(requests=60, window_seconds=60),
    TokenBudgetConfig: TokenBudgetConfig(max_tokens=100_000),
    CostBudgetConfig: CostBudgetConfig(max_cost=Decimal("12.50")),
    ModelAllowlistConfig: ModelAllowlistConfig(models=["gpt-4o"]),
    ContentFilterConfig: ContentFilterConfig(categories=["violence"]),
}


def policy_configs(
    types: Sequence[type[PolicyConfig]] | None = None, *, lean: bool = False
) -> st.SearchStrategy[PolicyConfig]:
    """Valid configs of the given types (default: every type); ``lean``: one fixed config
    per type."""
    if lean:
        return st.sampled_from([_LEAN_CONFIGS[kind] for kind in (types or _LEAN_CONFIGS)])
    builders: dict[type[Any], st.SearchStrategy[Any]] = {
        RateLimitConfig: st.builds(
            RateLimitConfig,
            requests=_POSITIVE,
            window_seconds=_POSITIVE,
            tokens=_optional(_POSITIVE),
        ),
        TokenBudgetConfig: st.builds(
            TokenBudgetConfig, max_tokens=_POSITIVE, period=st.sampled_from(_PERIODS)
        ),
        CostBudgetConfig: st.builds(
            CostBudgetConfig,
            max_cost=st.decimals(min_value=0, max_value=10**12, places=6),
            period=st.sampled_from(_PERIODS),
            currency=st.text(string.ascii_uppercase, min_size=3, max_size=3),
            alert_at=_optional(st.floats(min_value=0, max_value=1, exclude_min=True)),
        ),
        ModelAllowlistConfig: st.builds(
            ModelAllowlistConfig, models=st.lists(_MODEL_NAMES, min_size=1, max_size=5)
        ),
        ContentFilterConfig: st.builds(
            ContentFilterConfig,
            categories=st.lists(_MODEL_NAMES, min_size=1, max_size=5),
            action=st.sampled_from(("block", "flag")),
            threshold=st.floats(min_value=0, max_value=1),
        ),
    }
    chosen = list(builders) if types is None else list(types)
    return st.one_of([builders[kind] for kind in chosen])


def _created_at(
    created_at: st.SearchStrategy[datetime.datetime | None] | None,
    *,
    max_value: datetime.datetime = UTC_MAX,
) -> st.SearchStrategy[datetime.datetime | None]:
    if created_at is not None:
        return created_at
    return _optional(aware_datetimes(max_value=max_value))


PARTITIONED_MAX = datetime.datetime(2026, 12, 30)
"""The latest wall time the strategies give a partitioned table's ``created_at``
(audit logs, inference requests): a month with a partition on every database
migrated since llmcp partitioned them (everything before the month of migrating
goes to ``*_history``, and the migration makes the next three months)."""


def _ids(ids: st.SearchStrategy[uuid.UUID | None] | None) -> st.SearchStrategy[uuid.UUID | None]:
    return st.none() if ids is None else ids


def new_organizations(
    *,
    unique: bool = True,
    lean: bool = False,
    ids: st.SearchStrategy[uuid.UUID | None] | None = None,
    created_at: st.SearchStrategy[datetime.datetime | None] | None = None,
) -> st.SearchStrategy[NewOrganization]:
    """Organizations. Every ``new_*`` strategy takes ``unique`` (unique keys carry a
    token), ``lean`` (short words, optional fields left out: fast, for bulk rows),
    ``ids`` and ``created_at`` (strategies; default: left out, or any aware datetime)."""
    return st.builds(
        NewOrganization,
        name=texts(max_size=200, lean=lean),
        slug=slugs(unique=unique, lean=lean),
        id=_ids(ids),
        created_at=_created_at(created_at),
    )


def new_applications(
    org_id: IdChoice,
    *,
    unique: bool = True,
    lean: bool = False,
    ids: st.SearchStrategy[uuid.UUID | None] | None = None,
    created_at: st.SearchStrategy[datetime.datetime | None] | None = None,
) -> st.SearchStrategy[NewApplication]:
    """Applications of ``org_id`` (an id, or a strategy drawing one)."""
    return st.builds(
        NewApplication,
        org_id=_choice(org_id),
        name=texts(max_size=200, lean=lean),
        api_key_hash=api_key_hashes(unique=unique, lean=lean),
        description=_optional(texts(min_size=0, max_size=2000), lean),
        id=_ids(ids),
        created_at=_created_at(created_at),
    )


def new_users(
    org_id: IdChoice,
    *,
    unique: bool = True,
    lean: bool = False,
    ids: st.SearchStrategy[uuid.UUID | None] | None = None,
    created_at: st.SearchStrategy[datetime.datetime | None] | None = None,
) -> st.SearchStrategy[NewUser]:
    """Users of ``org_id``."""
    return st.builds(
        NewUser,
        org_id=_choice(org_id),
        email=emails(unique=unique, lean=lean),
        cognito_sub=cognito_subs(unique=unique, lean=lean),
        display_name=_optional(texts(min_size=0, max_size=200), lean),
        role=st.sampled_from(UserRole),
        id=_ids(ids),
        created_at=_created_at(created_at),
    )


@st.composite
def _scope(
    draw: st.DrawFn, app_ids: Sequence[uuid.UUID], user_ids: Sequence[uuid.UUID]
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """A policy level: (None, None) org, (app, None) app, (None, user) user, (app, user)."""
    levels = ["org"]
    levels += ["app"] if app_ids else []
    levels += ["user"] if user_ids else []
    levels += ["user+app"] if app_ids and user_ids else []
    level = draw(st.sampled_from(levels))
    app = draw(st.sampled_from(app_ids)) if level in ("app", "user+app") else None
    user = draw(st.sampled_from(user_ids)) if level in ("user", "user+app") else None
    return app, user


def new_policies(
    org_id: IdChoice,
    *,
    app_ids: Sequence[uuid.UUID] = (),
    user_ids: Sequence[uuid.UUID] = (),
    lean: bool = False,
    ids: st.SearchStrategy[uuid.UUID | None] | None = None,
    created_at: st.SearchStrategy[datetime.datetime | None] | None = None,
    priority: st.SearchStrategy[int] | None = None,
    enabled: st.SearchStrategy[bool] | None = None,
    config: st.SearchStrategy[PolicyConfig] | None = None,
) -> st.SearchStrategy[NewPolicy]:
    """Policies at a random level: organization, one of ``app_ids``, one of ``user_ids``
    (for any application) or a user for an application. The ids must be of ``org_id``."""
    return st.builds(
        lambda scope, **fields: NewPolicy(app_id=scope[0], user_id=scope[1], **fields),
        _scope(list(app_ids), list(user_ids)),
        org_id=_choice(org_id),
        name=texts(max_size=200, lean=lean),
        config=policy_configs(lean=lean) if config is None else config,
        priority=st.integers(-(2**31), INT32_MAX) if priority is None else priority,
        enabled=st.booleans() if enabled is None else enabled,
        id=_ids(ids),
        created_at=_created_at(created_at),
    )


SERVICE_ACTIONS = [a for a in AuditAction if a is not AuditAction.AUDIT_LOGS_PURGED]
"""The audit actions a service may write (``audit_logs_purged`` is the purge's own)."""


def new_audit_logs(
    org_id: IdChoice,
    *,
    app_ids: Sequence[uuid.UUID] = (),
    user_ids: Sequence[uuid.UUID] = (),
    actions: Sequence[AuditAction] | None = None,
    lean: bool = False,
    ids: st.SearchStrategy[uuid.UUID | None] | None = None,
    created_at: st.SearchStrategy[datetime.datetime | None] | None = None,
) -> st.SearchStrategy[NewAuditLog]:
    """Audit log entries of ``org_id``, with none or one of ``app_ids`` / ``user_ids``.

    Every action but ``audit_logs_purged`` by default: only a purge writes those.
    """
    return st.builds(
        NewAuditLog,
        org_id=_choice(org_id),
        action=st.sampled_from(list(actions or SERVICE_ACTIONS)),
        resource_type=texts(max_size=100, lean=lean),
        app_id=st.none() | st.sampled_from(app_ids) if app_ids else st.none(),
        user_id=st.none() | st.sampled_from(user_ids) if user_ids else st.none(),
        resource_id=_optional(st.uuids(), lean),
        request_id=_optional(texts(max_size=200), lean),
        details=st.builds(dict) if lean else json_objects(),
        ip_address=_optional(ip_addresses(), lean),
        user_agent=_optional(texts(min_size=0, max_size=1000), lean),
        id=_ids(ids),
        created_at=_created_at(created_at, max_value=PARTITIONED_MAX),
    )


@st.composite
def _new_inference_request(
    draw: st.DrawFn,
    org_id: st.SearchStrategy[uuid.UUID],
    app_ids: Sequence[uuid.UUID],
    user_ids: Sequence[uuid.UUID],
    statuses: Sequence[InferenceStatus],
    unique: bool,
    lean: bool,
    ids: st.SearchStrategy[uuid.UUID | None],
    created_at: st.SearchStrategy[datetime.datetime | None],
) -> NewInferenceRequest:
    request_id = draw(texts(max_size=180, lean=lean))
    if unique:
        request_id = f"{request_id}#{draw(unique_tokens())}"
    common = {
        "org_id": draw(org_id),
        "app_id": draw(st.sampled_from(app_ids)),
        "request_id": request_id,
        "user_id": draw(st.none() | st.sampled_from(user_ids)) if user_ids else None,
        "status": draw(st.sampled_from(statuses)),
        "id": draw(ids),
        "created_at": draw(created_at),
    }
    if lean:
        return NewInferenceRequest(
            provider="openai",
            model="gpt-4o",
            prompt_tokens=draw(st.integers(0, 1000)),
            completion_tokens=draw(st.integers(0, 1000)),
            **common,  # type: ignore[arg-type]
        )
    created = common["created_at"]
    if created is None:  # now(): only a far-future completion is surely not before it
        completed = draw(_optional(aware_datetimes(min_value=datetime.datetime(2200, 1, 1))))
    else:
        assert isinstance(created, datetime.datetime)
        after = st.timedeltas(datetime.timedelta(0), datetime.timedelta(days=1))
        completed = draw(_optional(after.map(lambda delta: created + delta)))
    prompt = draw(st.integers(0, INT32_MAX))
    return NewInferenceRequest(
        provider=draw(texts(max_size=100)),
        model=draw(texts(max_size=200)),
        prompt_tokens=prompt,
        completion_tokens=draw(st.integers(0, INT32_MAX - prompt)),
        cost=draw(st.decimals(min_value=0, max_value=Decimal("99999999.999999"), places=6)),
        latency_ms=draw(_optional(st.integers(0, INT32_MAX))),
        error_message=draw(_optional(texts(min_size=0, max_size=4000))),
        completed_at=completed,
        **common,  # type: ignore[arg-type]
    )


def new_inference_requests(
    org_id: IdChoice,
    app_ids: Sequence[uuid.UUID],
    *,
    user_ids: Sequence[uuid.UUID] = (),
    statuses: Sequence[InferenceStatus] | None = None,
    unique: bool = True,
    lean: bool = False,
    ids: st.SearchStrategy[uuid.UUID | None] | None = None,
    created_at: st.SearchStrategy[datetime.datetime | None] | None = None,
) -> st.SearchStrategy[NewInferenceRequest]:
    """Inference requests of ``org_id`` for one of ``app_ids`` (at least one), with none
    or one of ``user_ids``; ``completed_at``, when set, is not before ``created_at``."""
    if not app_ids:
        raise ValueError("new_inference_requests needs at least one application id")
    return _new_inference_request(
        _choice(org_id),
        list(app_ids),
        list(user_ids),
        list(statuses or InferenceStatus),
        unique,
        lean,
        _ids(ids),
        _created_at(created_at, max_value=PARTITIONED_MAX),
    )


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant as stored: its organization, applications, users and policies."""

    organization: Organization
    applications: list[Application]
    users: list[User]
    policies: list[Policy]


@dataclass(frozen=True, slots=True)
class TenantPlan:
    """A tenant to create: ids are fixed up front, so policies can name apps and users."""

    organization: NewOrganization
    applications: list[NewApplication]
    users: list[NewUser]
    policies: list[NewPolicy]

    def ids(self) -> list[uuid.UUID]:
        """Every id of the plan."""
        found = [self.organization.id]
        found += [app.id for app in self.applications]
        found += [user.id for user in self.users]
        found += [policy.id for policy in self.policies]
        return [row_id for row_id in found if row_id is not None]

    def create(self, repos: Repositories) -> Tenant:
        """Insert the tenant (organization first) through the sync repositories."""
        return Tenant(
            repos.organizations.create(self.organization),
            [repos.applications.create(app) for app in self.applications],
            [repos.users.create(user) for user in self.users],
            [repos.policies.create(policy) for policy in self.policies],
        )

    async def acreate(self, repos: AsyncRepositories) -> Tenant:
        """Insert the tenant through the async repositories."""
        org = await repos.organizations.create(self.organization)
        apps = [await repos.applications.create(app) for app in self.applications]
        users = [await repos.users.create(user) for user in self.users]
        policies = [await repos.policies.create(policy) for policy in self.policies]
        return Tenant(org, apps, users, policies)


_PLACEHOLDER = uuid.UUID(int=0)


def tenant_plans(
    *,
    applications: tuple[int, int] = (0, 3),
    users: tuple[int, int] = (0, 3),
    policies: tuple[int, int] = (0, 8),
    lean: bool = False,
    created_at: st.SearchStrategy[datetime.datetime | None] | None = None,
    priority: st.SearchStrategy[int] | None = None,
    enabled: st.SearchStrategy[bool] | None = None,
    config: st.SearchStrategy[PolicyConfig] | None = None,
    unique_ids: bool = True,
) -> st.SearchStrategy[TenantPlan]:
    """An organization with applications, users and policies at every level.

    ``(low, high)`` bound each count. Ids are drawn by :func:`unique_ids`, so a plan
    may be committed: it collides with no other plan, of this run or another one.
    ``unique_ids=False``: plain ``st.uuids()``, distinct within the plan only (check
    ``plan.ids()``); isolate each such example in a transaction that is rolled back.
    """
    # Built once, drawn many times (a strategy is validated on its first draw).
    orgs = new_organizations(lean=lean, created_at=created_at)
    apps = new_applications(_PLACEHOLDER, lean=lean, created_at=created_at)
    people = new_users(_PLACEHOLDER, lean=lean, created_at=created_at)
    rules = new_policies(
        _PLACEHOLDER,
        lean=lean,
        created_at=created_at,
        priority=priority,
        enabled=enabled,
        config=config,
    )
    replace = msgspec.structs.replace
    ids = _UNIQUE_IDS if unique_ids else st.uuids()

    @st.composite
    def plan(draw: st.DrawFn) -> TenantPlan:
        counts = [draw(st.integers(*bounds)) for bounds in (applications, users, policies)]
        fresh = iter(draw(st.lists(ids, min_size=1 + sum(counts), unique=True)))
        org_id = next(fresh)
        org = replace(draw(orgs), id=org_id)
        made_apps = [replace(draw(apps), org_id=org_id, id=next(fresh)) for _ in range(counts[0])]
        made_users = [
            replace(draw(people), org_id=org_id, id=next(fresh)) for _ in range(counts[1])
        ]
        app_ids = [app.id for app in made_apps if app.id is not None]
        user_ids = [user.id for user in made_users if user.id is not None]
        made_policies = []
        for _ in range(counts[2]):
            app_id, user_id = draw(_scope(app_ids, user_ids))
            made_policies.append(
                replace(draw(rules), org_id=org_id, app_id=app_id, user_id=user_id, id=next(fresh))
            )
        return TenantPlan(org, made_apps, made_users, made_policies)

    return plan()
