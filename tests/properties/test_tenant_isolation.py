"""Hostile-tenant properties (issue 12, item 7): tenant A cannot reach tenant B.

Two tenants, A and B, each with a row in every table (an organization, an
application, a user, policies at every level, an audit log entry, an inference
request and so its hourly rollup), often sharing ``created_at``, request ids, and
e-mail addresses in other cases or look-alike forms. A caller scoped to A passes
A's organization (as ``org_id``, or as ``row.org_id`` in a row given to
``update``) and B's ids, keys and values everywhere else.

The property is non-interference, checked on twin worlds inside one rolled-back
transaction: the call runs once with B stored and once with B never created,
with the very same arguments. Whatever A gets back (rows, pages, counts,
``None``, or an error's class, message and constraint) must be the same in both,
so nothing A sees depends on B: a row of B is exactly a missing one, a
``ConflictError`` or ``ReferenceViolationError`` naming B's row reads as one
naming nothing, and B's e-mail addresses and request ids are free in A. A's own
rows must end the same in both worlds, and B's rows must be as they were
(nothing of B was changed or deleted).

Every public method of every repository is either probed so, or listed in
``NOT_PROBED`` with the reason (platform operations on the tenants themselves,
the two lookups that cross tenants on purpose, the queued audit insert):
``test_every_public_method_is_probed_or_documented`` fails on a new method that
is neither.

The properties run behind two walls, separately:

- ``predicates-alone``: as the server's administrator, whom row-level security
  does not apply to: only the queries' own ``org_id`` predicates keep B out;
- ``both-walls``: as a login role of ``llmcp_app`` (the service's role), the
  predicates and row-level security together;

and a third layer, ``RLS alone``: as the service's role, every query of the
tenant tables' ``sql/`` files with its ``org_id`` predicates removed (and plain
``SELECT`` of each tenant table) runs scoped to A through ``llmcp.tenancy``
and must still see A's rows only (the twin worlds again), and nothing without a
tenant. ``make test-teeth`` removes each wall in turn (tests/properties/breaks.py).

The service's login role is made here (``app_role``), as a member of
``llmcp_app``, until the shared harness connects as one itself; swap the fixture
for the shared one then.
"""

from __future__ import annotations

import datetime
import inspect
import re
import secrets
import typing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import import_module, resources
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiosql
import msgspec
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from llmcp import tenancy
from llmcp.adapter import SYNC_ADAPTER
from llmcp.config import DatabaseConfig
from llmcp.dev.scratch import with_database
from llmcp.errors import LlmcpError, NotFoundError
from llmcp.factory import Repositories, RepositoryFactory
from llmcp.factory_async import AsyncRepositories
from llmcp.generated import models
from llmcp.generated.models import AuditAction, InferenceStatus, UserRole
from llmcp.inputs import (
    NewApplication,
    NewAuditLog,
    NewInferenceRequest,
    NewOrganization,
    NewPolicy,
    NewUser,
)
from llmcp.policy_config import RateLimitConfig, TokenBudgetConfig
from llmcp.testing import TestDatabases, rolled_back
from llmcp.testing import strategies as lst
from llmcp.transactions import TransactionManager
from tests.properties.budget import examples

# -- what is probed, and what is not (with the reason) ---------------------------------------

REPOSITORY_CLASSES: dict[str, type] = typing.get_type_hints(Repositories)
ASYNC_REPOSITORY_CLASSES: dict[str, type] = typing.get_type_hints(AsyncRepositories)


def public_methods(classes: dict[str, type]) -> list[str]:
    return [
        f"{repo}.{name}"
        for repo, cls in classes.items()
        for name in sorted(dir(cls))
        if not name.startswith("_") and callable(getattr(cls, name))
    ]


METHODS = public_methods(REPOSITORY_CLASSES)

PLATFORM = (
    "a platform operation on the tenants themselves (issue 12: organizations are not tenant rows)"
)
NOT_PROBED: dict[str, str] = {
    **{method: PLATFORM for method in METHODS if method.startswith("organizations.")},
    "applications.get_by_api_key_hash": (
        "crosses tenants on purpose: the request path's lookup before the tenant is known; "
        "the key hash is the secret (README, issue 12 item 3)"
    ),
    "users.get_by_cognito_sub": (
        "crosses tenants on purpose: the sign-in lookup before the tenant is known; "
        "the Cognito subject is the identity (README, issue 12 item 3)"
    ),
    "audit_logs.async_insert": (
        "queued for the audit writer, outside the caller's transaction, so not on twin "
        "worlds: test_a_queued_audit_log_naming_another_tenant_is_refused_like_a_missing_one"
    ),
}
PROBED = [method for method in METHODS if method not in NOT_PROBED]


def test_every_public_method_is_probed_or_documented() -> None:
    """A new repository method is probed (it only needs strategies for its parameters'
    names in ``hostile_argument``) or is listed in NOT_PROBED with its reason."""
    assert set(NOT_PROBED) <= set(METHODS), sorted(set(NOT_PROBED) - set(METHODS))
    assert "applications.get_by_id" in PROBED and "audit_logs.purge" in PROBED
    assert len(PROBED) >= 40
    # the async API has the same methods, so this list covers it too
    assert public_methods(ASYNC_REPOSITORY_CLASSES) == METHODS
    for method in PROBED:  # every probed parameter has a hostile value (or the call fails)
        repo, name = method.split(".")
        for parameter in inspect.signature(getattr(REPOSITORY_CLASSES[repo], name)).parameters:
            assert parameter == "self" or parameter in HOSTILE_PARAMETERS, (method, parameter)


# -- two tenants --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One tenant's rows, to insert (ids fixed up front)."""

    org: NewOrganization
    app: NewApplication
    user: NewUser
    policies: list[NewPolicy]  # organization, application, user and user+app level
    log: NewAuditLog
    request: NewInferenceRequest


@dataclass(frozen=True)
class Side:
    """One tenant's rows, as stored."""

    org: Any
    app: Any
    user: Any
    policies: list[Any]
    log: Any
    request: Any

    def row_of(self, repo: str) -> Any:
        """The tenant's row of ``repo``'s table."""
        return {
            "applications": self.app,
            "users": self.user,
            "policies": self.policies[-1],
            "audit_logs": self.log,
            "inference_requests": self.request,
        }[repo]


def insert(repos: Repositories, plan: Plan) -> Side:
    return Side(
        repos.organizations.create(plan.org),
        repos.applications.create(plan.app),
        repos.users.create(plan.user),
        [repos.policies.create(policy) for policy in plan.policies],
        repos.audit_logs.insert(plan.log),
        repos.inference_requests.create(plan.request),
    )


CREATED = st.none() | lst.clustered_datetimes(3)
STATUSES = st.sampled_from([InferenceStatus.COMPLETED, InferenceStatus.FAILED])


def _look_alike(email: str) -> str:
    """The same key, another string: the "e"s spelled full-width (U+FF45)."""
    return email.replace("e", "\uff45")


@st.composite
def plans(draw: st.DrawFn) -> tuple[Plan, Plan, uuid.UUID]:
    """A and B, and an id that neither has (for a new row). B's e-mail address is often
    A's (in another case, or a look-alike form), and the two share request ids: both are
    unique per organization only."""
    fresh = iter(draw(st.lists(st.uuids(), min_size=21, max_size=21, unique=True)))
    token = draw(lst.unique_tokens())
    request_ids = [f"req-{token}-{n}" for n in range(2)]
    a_email = f"user.{token}@example.com"
    b_email = draw(
        st.sampled_from([a_email, a_email.upper(), _look_alike(a_email), f"b.{token}@example.com"])
    )
    made = []
    for side, email in (("a", a_email), ("b", b_email)):
        org_id, app_id, user_id = next(fresh), next(fresh), next(fresh)
        made.append(
            Plan(
                org=NewOrganization(name=side, slug=f"{side}-{token}", id=org_id),
                app=NewApplication(
                    org_id=org_id,
                    name=side,
                    api_key_hash=draw(lst.api_key_hashes(lean=True)),
                    id=app_id,
                    created_at=draw(CREATED),
                ),
                user=NewUser(
                    org_id=org_id,
                    email=email,
                    cognito_sub=f"{side}|{token}",
                    role=draw(st.sampled_from(UserRole)),
                    id=user_id,
                    created_at=draw(CREATED),
                ),
                policies=[
                    NewPolicy(
                        org_id=org_id,
                        name=f"{side} {level}",
                        config=draw(lst.policy_configs(lean=True)),
                        app_id=app_id if level in ("app", "user+app") else None,
                        user_id=user_id if level in ("user", "user+app") else None,
                        priority=draw(st.integers(-2, 2)),
                        id=next(fresh),
                        created_at=draw(CREATED),
                    )
                    for level in ("org", "app", "user", "user+app")
                ],
                log=NewAuditLog(
                    org_id=org_id,
                    action=draw(
                        st.sampled_from([AuditAction.POLICY_CREATED, AuditAction.USER_CREATED])
                    ),
                    resource_type="user",
                    app_id=draw(st.sampled_from([app_id, None])),
                    user_id=draw(st.sampled_from([user_id, None])),
                    request_id=draw(st.sampled_from(request_ids)),
                    id=next(fresh),
                    created_at=draw(CREATED),
                ),
                request=NewInferenceRequest(
                    org_id=org_id,
                    app_id=app_id,
                    user_id=draw(st.sampled_from([user_id, None])),
                    request_id=draw(st.sampled_from(request_ids)),
                    provider="openai",
                    model="gpt-4o",
                    status=draw(STATUSES),
                    prompt_tokens=draw(st.integers(0, 100)),
                    completion_tokens=draw(st.integers(0, 100)),
                    latency_ms=draw(st.none() | st.integers(0, 1000)),
                    id=next(fresh),
                    created_at=draw(CREATED),
                ),
            )
        )
    return made[0], made[1], next(fresh)


# -- the hostile arguments of a call scoped to A ---------------------------------------------------

EARLY = datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC)
LATE = datetime.datetime(3000, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Scene:
    """What the arguments may name: A's rows, B's rows, B's cursors, fresh ids."""

    a: Side
    b: Side
    cursors: dict[str, str | None]  # per repository, the first cursor B was given
    fresh: uuid.UUID  # an id that is nowhere, for a new row


def _changed(row: Any, org_id: uuid.UUID, draw: Draw) -> Any:
    """B's row claimed by A (``org_id``), with a change, at B's version or another one."""
    changes: dict[str, Any] = {"org_id": org_id}
    if isinstance(row, models.Application):
        changes |= {"name": "taken over", "api_key_hash": "0" * 64}
    elif isinstance(row, models.User):
        changes |= {"display_name": "taken over", "role": UserRole.ADMIN}
    elif isinstance(row, models.Policy):
        changes |= {"enabled": not row.enabled, "config": TokenBudgetConfig(max_tokens=1)}
    else:
        changes |= {"status": InferenceStatus.REJECTED, "prompt_tokens": 7}
    changes["version"] = draw(st.sampled_from([row.version, row.version + 1]))
    return msgspec.structs.replace(row, **changes)


def _new(repo: str, scene: Scene, draw: Draw) -> Any:
    """A new row of A naming B's application and user, or B's keys, or nothing of B."""
    a, b = scene.a, scene.b
    app = draw(st.sampled_from([b.app.id, b.app.id, a.app.id]), label="app of the new row")
    user = draw(st.sampled_from([b.user.id, b.user.id, a.user.id, None]), label="user")
    org = a.org.id
    if repo == "applications":  # an API key hash is a global identity: always a fresh one
        return NewApplication(org_id=org, name="new", api_key_hash="f" * 64, id=scene.fresh)
    if repo == "users":  # B's address, in any case or form: free in A
        email = draw(
            st.sampled_from([b.user.email, b.user.email.upper(), _look_alike(b.user.email)])
        )
        return NewUser(org_id=org, email=email, cognito_sub=f"new|{scene.fresh}", id=scene.fresh)
    if repo == "policies":
        config = RateLimitConfig(requests=1, window_seconds=1)
        app_or_none = draw(st.sampled_from([app, None]), label="app level")
        return NewPolicy(
            org_id=org, name="new", config=config, app_id=app_or_none, user_id=user, id=scene.fresh
        )
    request_id = draw(st.sampled_from([b.request.request_id, b.log.request_id]))
    if repo == "audit_logs":
        return NewAuditLog(
            org_id=org,
            action=AuditAction.USER_UPDATED,
            resource_type="user",
            app_id=draw(st.sampled_from([app, None])),
            user_id=user,
            resource_id=b.user.id,
            request_id=request_id,
            id=scene.fresh,
        )
    return NewInferenceRequest(
        org_id=org,
        app_id=app,
        user_id=user,
        request_id=request_id,  # B's request id: free in A
        provider="p",
        model="m",
        id=scene.fresh,
    )


Draw = Callable[..., Any]
Hostile = Callable[[str, Scene, Draw], Any]
HOSTILE_PARAMETERS: dict[str, Hostile] = {
    "org_id": lambda repo, s, draw: s.a.org.id,  # the caller is scoped to A
    "app_id": lambda repo, s, draw: draw(st.sampled_from([s.b.app.id, s.b.app.id, s.a.app.id])),
    "user_id": lambda repo, s, draw: draw(st.sampled_from([s.b.user.id, s.b.user.id, s.a.user.id])),
    "policy_id": lambda repo, s, draw: draw(st.sampled_from([p.id for p in s.b.policies])),
    "log_id": lambda repo, s, draw: s.b.log.id,
    "request_pk": lambda repo, s, draw: s.b.request.id,
    "email": lambda repo, s, draw: draw(
        st.sampled_from([s.b.user.email, s.b.user.email.upper(), _look_alike(s.b.user.email)])
    ),
    "request_id": lambda repo, s, draw: draw(
        st.sampled_from([s.b.request.request_id, s.b.log.request_id])
    ),
    "limit": lambda repo, s, draw: draw(st.sampled_from([1, 2, 1000])),
    "offset": lambda repo, s, draw: draw(st.integers(0, 2)),
    "cursor": lambda repo, s, draw: draw(st.sampled_from([None, s.cursors.get(repo)])),
    "action": lambda repo, s, draw: s.b.log.action,
    "status": lambda repo, s, draw: s.b.request.status,
    "start": lambda repo, s, draw: draw(st.sampled_from([EARLY, s.b.request.created_at])),
    "end": lambda repo, s, draw: LATE,
    "before": lambda repo, s, draw: LATE,
    "reason": lambda repo, s, draw: "tenant A purges",
    "new": lambda repo, s, draw: _new(repo, s, draw),
    "app": lambda repo, s, draw: _changed(s.b.app, s.a.org.id, draw),
    "user": lambda repo, s, draw: _changed(s.b.user, s.a.org.id, draw),
    "policy": lambda repo, s, draw: _changed(draw(st.sampled_from(s.b.policies)), s.a.org.id, draw),
    "request": lambda repo, s, draw: _changed(s.b.request, s.a.org.id, draw),
}
"""Per parameter name, what a caller scoped to A passes: A's organization, B's values."""


def hostile_arguments(method: str, scene: Scene, draw: Draw) -> dict[str, Any]:
    repo, name = method.split(".")
    signature = inspect.signature(getattr(REPOSITORY_CLASSES[repo], name))
    return {
        parameter: HOSTILE_PARAMETERS[parameter](repo, scene, draw)
        for parameter in signature.parameters
        if parameter != "self"
    }


# -- outcomes and snapshots --------------------------------------------------------------------


def outcome(tx: TransactionManager, call: Callable[[], object]) -> tuple[Any, ...]:
    """What the caller learns: the value, or the error's class, message and constraint.
    In a savepoint of its own: an error leaves the transaction usable."""
    try:
        with tx.transaction():
            value = call()
    except LlmcpError as exc:
        return ("error", type(exc).__name__, str(exc), getattr(exc, "constraint", None))
    return ("value", _without_purge_ids(value))


def _without_purge_ids(value: Any) -> Any:
    """The purge's own entry gets an id of the server's (another one in each world)."""
    if isinstance(value, list):
        return [_without_purge_ids(item) for item in value]
    if isinstance(value, models.AuditLog) and value.action == AuditAction.AUDIT_LOGS_PURGED:
        return msgspec.structs.replace(value, id=uuid.UUID(int=0))
    return value


def snapshot(repos: Repositories, org_id: uuid.UUID) -> dict[str, Any]:
    """Everything of one organization, as that organization reads it."""
    return {
        "org": repos.organizations.get_by_id(org_id),
        "apps": repos.applications.get_by_org_id(org_id, 1000),
        "users": repos.users.get_by_org_id(org_id, 1000),
        "policies": repos.policies.get_by_org_id(org_id, 1000),
        "logs": _without_purge_ids(repos.audit_logs.get_by_org_id(org_id, 1000)),
        "requests": repos.inference_requests.get_by_org_id(org_id, 1000),
        "metrics": repos.inference_requests.get_metrics(org_id, EARLY, LATE),
    }


class _Undo(Exception):
    """Rolls a world back."""


# -- the roles: the administrator (predicates alone) and the service's role (both walls) --------


def role_url(url: str, user: str, password: str | None = None) -> str:
    """``url`` with another user (and password)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    login = quote(user, safe="") + ("" if password is None else ":" + quote(password, safe=""))
    return urlunsplit((parts.scheme, f"{login}@{host}", parts.path, parts.query, parts.fragment))


@pytest.fixture(scope="module")
def isolation_db(databases: TestDatabases) -> Iterator[str]:
    """A database of this module alone."""
    name = databases.clone("isolation")
    yield name
    databases.drop(name)


@pytest.fixture(scope="module")
def app_role(databases: TestDatabases, isolation_db: str) -> Iterator[str]:
    """The URL of ``isolation_db`` as a new login role that is a member of ``llmcp_app``
    (and nothing else), made by the server's administrator and dropped afterwards.
    Local to this module until the shared harness (``databases.url``) connects as such
    a role itself."""
    name = f"llmcp_isolation_{uuid.uuid4().hex[:10]}"
    password = secrets.token_hex(16)
    with psycopg.connect(databases.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE llmcp_app").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    try:
        yield role_url(with_database(databases.admin_url, isolation_db), name, password)
    finally:
        with psycopg.connect(databases.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@dataclass(frozen=True)
class Walls:
    name: str
    factory: RepositoryFactory
    rls: bool  # whether row-level security applies to the role


def _factory(url: str) -> RepositoryFactory:
    config = DatabaseConfig(url=url, min_size=1, max_size=4, acquire_timeout=10.0)
    return RepositoryFactory.connect(config)


@pytest.fixture(scope="module")
def owner_factory(databases: TestDatabases, isolation_db: str) -> Iterator[RepositoryFactory]:
    """The database as the server's administrator: row-level security does not apply."""
    with _factory(with_database(databases.admin_url, isolation_db)) as factory:
        with factory.database.connection() as conn:
            row = conn.execute(
                "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
        if not (row and row[0]):
            pytest.skip("the administrator of this server is subject to row-level security")
        yield factory


@pytest.fixture(scope="module")
def app_factory(app_role: str) -> Iterator[RepositoryFactory]:
    """The database as the service's role: row-level security applies."""
    with _factory(app_role) as factory:
        yield factory


@pytest.fixture(scope="module", params=["predicates-alone", "both-walls"])
def walls(
    request: pytest.FixtureRequest,
    owner_factory: RepositoryFactory,
    app_factory: RepositoryFactory,
) -> Walls:
    if request.param == "predicates-alone":
        return Walls(request.param, owner_factory, rls=False)
    return Walls(request.param, app_factory, rls=True)


# -- layer 1: every method, scoped to A, on twin worlds --------------------------------------------


def _cursors(repos: Repositories, b: Side) -> dict[str, str | None]:
    """The first cursor B gets from each keyset listing by organization (one row a page)."""
    cursors: dict[str, str | None] = {}
    for repo in ("audit_logs", "inference_requests"):
        # two rows, so that B's first page of one has a cursor
        cursors[repo] = getattr(repos, repo).page_by_org_id(b.org.id, 1).next_cursor
    return cursors


@examples(6)
@pytest.mark.parametrize("method", PROBED)
@given(data=st.data())
def test_a_tenant_learns_nothing_of_another_and_changes_nothing_of_it(
    walls: Walls, method: str, data: st.DataObject
) -> None:
    """The call scoped to A returns, or fails with, exactly the same whether B exists or
    not; it leaves A the same in both worlds and B as it was."""
    repos = walls.factory.repositories()
    tx = walls.factory.transaction_manager()
    plan_a, plan_b, fresh = data.draw(plans(), label="tenants")
    repo, name = method.split(".")
    with rolled_back(tx):
        a = insert(repos, plan_a)
        mine = snapshot(repos, a.org.id)  # A sees its own rows (the twins are not both blind)
        assert all(mine[table] for table in ("apps", "users", "policies", "logs", "requests"))
        # the world with B: the call, and B afterwards
        try:
            with tx.transaction():
                b = insert(repos, plan_b)
                # a second audit log and request of B, so that its keyset listings have cursors
                repos.audit_logs.insert(msgspec.structs.replace(plan_b.log, id=uuid.uuid4()))
                repos.inference_requests.create(
                    msgspec.structs.replace(
                        plan_b.request, id=uuid.uuid4(), request_id=f"{plan_b.request.request_id}-2"
                    )
                )
                scene = Scene(a, b, _cursors(repos, b), fresh)
                arguments = hostile_arguments(method, scene, data.draw)
                b_before = snapshot(repos, b.org.id)
                call = getattr(getattr(repos, repo), name)
                with_b = outcome(tx, lambda: call(**arguments))
                a_with_b = snapshot(repos, a.org.id)
                assert snapshot(repos, b.org.id) == b_before, f"{method} changed B's rows"
                raise _Undo
        except _Undo:
            pass
        # the world without B: the same call, the same arguments
        without_b = outcome(tx, lambda: call(**arguments))
        a_without_b = snapshot(repos, a.org.id)
    assert with_b == without_b, f"{method}: what A learns depends on B ({walls.name})"
    assert a_with_b == a_without_b, f"{method}: A's rows depend on B ({walls.name})"


def test_the_twin_worlds_tell_a_tenant_that_sees_another_apart(
    owner_factory: RepositoryFactory,
) -> None:
    """The property can fail: a call that does reach B (a lookup that crosses tenants on
    purpose) gives another outcome with B than without it."""
    repos = owner_factory.repositories()
    tx = owner_factory.transaction_manager()
    token = uuid.uuid4().hex
    org = NewOrganization(name="b", slug=f"b-{token}")
    with rolled_back(tx):
        try:
            with tx.transaction():
                b_org = repos.organizations.create(org)
                repos.users.create(
                    NewUser(org_id=b_org.id, email=f"{token}@x.io", cognito_sub=token)
                )
                with_b = outcome(tx, lambda: repos.users.get_by_cognito_sub(token))
                raise _Undo
        except _Undo:
            pass
        without_b = outcome(tx, lambda: repos.users.get_by_cognito_sub(token))
    assert with_b != without_b


@pytest.mark.parametrize("which", ["app", "user"])
def test_a_queued_audit_log_naming_another_tenant_is_refused_like_a_missing_one(
    owner_factory: RepositoryFactory, which: str
) -> None:
    """``async_insert`` (the audit writer: committed on its own connections, so not on
    twin worlds): an entry of A naming B's application or user is refused exactly as one
    naming an id that exists nowhere; B's audit trail is untouched. As the administrator:
    the writer's COPY is refused under row-level security until the writer is changed."""
    repos = owner_factory.repositories()
    token = uuid.uuid4().hex
    a = repos.organizations.create(NewOrganization(name="a", slug=f"a-{token}"))
    b = repos.organizations.create(NewOrganization(name="b", slug=f"b-{token}"))
    b_row: Any = (
        repos.applications.create(
            NewApplication(org_id=b.id, name="b", api_key_hash=token.ljust(64, "0"))
        )
        if which == "app"
        else repos.users.create(NewUser(org_id=b.id, email=f"{token}@x.io", cognito_sub=token))
    )
    try:
        b_before = repos.audit_logs.get_by_org_id(b.id, 1000)
        naming_b, naming_nothing = uuid.uuid4(), uuid.uuid4()
        for log_id, target in ((naming_b, b_row.id), (naming_nothing, uuid.uuid4())):
            new = NewAuditLog(
                org_id=a.id,
                action=AuditAction.USER_UPDATED,
                resource_type="user",
                id=log_id,
                app_id=target if which == "app" else None,
                user_id=target if which == "user" else None,
            )
            assert repos.audit_logs.async_insert(new) == log_id
        owner_factory.audit_writer.flush(timeout=10)
        assert repos.audit_logs.get_by_id(a.id, naming_b) is None
        assert repos.audit_logs.get_by_id(a.id, naming_nothing) is None
        assert repos.audit_logs.get_by_org_id(b.id, 1000) == b_before
    finally:
        repos.organizations.delete(a.id)
        repos.organizations.delete(b.id)


# -- layer 2: row-level security alone ---------------------------------------------------------

TENANT_TABLES = (
    "applications",
    "users",
    "policies",
    "audit_logs",
    "inference_requests",
    "inference_hourly_metrics",
)
TENANT_SQL = ("applications", "users", "policies", "audit_logs", "inference_requests")
_ORG_PREDICATE = re.compile(r"\b(?:\w+\.)?org_id = :org_id\b")
_NAMED = re.compile(r"^-- name: (\w+)\(([^)]*)\)", re.MULTILINE)


def without_org_predicates(text: str) -> str:
    """A query with its ``org_id = :org_id`` predicates made always true (the parameter
    stays in the text: aiosql refuses a declared parameter that a query does not use)."""
    return _ORG_PREDICATE.sub("(cast(:org_id AS uuid) IS NULL OR TRUE)", text)


def _queries(file: str) -> list[tuple[str, tuple[str, ...], str]]:
    """(name, parameters, text) of each query of ``sql/<file>.sql`` (the installed one)."""
    text = resources.files("llmcp.sql").joinpath(f"{file}.sql").read_text()
    starts = list(_NAMED.finditer(text))
    found = []
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
        parameters = tuple(p.strip() for p in match.group(2).split(",") if p.strip())
        found.append((match.group(1), parameters, text[match.start() : end]))
    return found


STRIPPED = [f"{file}.{name}" for file in TENANT_SQL for name, _, _ in _queries(file)]


def test_every_tenant_query_has_an_org_predicate_or_is_a_documented_exception() -> None:
    """What layer 2 strips is there to strip: every query of a tenant table names its
    organization, but the inserts (org_id is a value) and the two cross-tenant lookups."""
    exceptions = {"get_by_api_key_hash", "get_by_cognito_sub", "create", "insert", "purge"}
    for file in TENANT_SQL:
        for name, _, text in _queries(file):
            if name not in exceptions:
                assert without_org_predicates(text) != text, f"{file}.{name} has no org predicate"


def _raw(file: str, name: str, text: str) -> Any:
    """The query, loaded with llmcp's adapter (rows decoded as the generated code does)."""
    module = import_module(f"llmcp.generated.{file}")
    queries = aiosql.from_str(
        text, SYNC_ADAPTER, kwargs={"rows": module.ROWS, "enums": models.ENUMS}
    )
    return getattr(queries, name)


def _raw_arguments(file: str, parameters: tuple[str, ...], a: Side, b: Side) -> dict[str, Any]:
    """B's values for every parameter (B's organization too: the insert's org_id is a
    value to check, not a predicate); fresh values for the unique keys of a new row."""
    row = msgspec.structs.asdict(b.row_of(file))
    if isinstance(b.row_of(file), models.User):
        row["email_key"] = b.user.email_key
    values: dict[str, Any] = row | {
        "org_id": b.org.id,
        "app_id": b.app.id,
        "user_id": b.user.id,
        "limit": 1000,
        "offset": 0,
        "after_created_at": LATE,
        "after_id": uuid.UUID(int=2**128 - 1),
        "start_time": EARLY,
        "end_time": LATE,
        "before": LATE,
        "reason": "tenant A purges B",
    }
    if "created_at" in parameters:  # a new row: fresh id and keys (only RLS may refuse it)
        values |= {
            "id": uuid.uuid4(),
            "created_at": None,
            "api_key_hash": "e" * 64,
            "email": "new@example.com",
            "email_key": "new@example.com",
            "cognito_sub": f"new|{uuid.uuid4()}",
            "request_id": f"new-{uuid.uuid4()}",
        }
    missing = [p for p in parameters if p not in values]
    assert not missing, f"{file}: no value for {missing}"
    return {p: values[p] for p in parameters}


@examples(6)
@pytest.mark.parametrize("query", STRIPPED)
@given(data=st.data())
def test_rls_alone_keeps_a_query_without_its_org_predicate_in_the_tenant(
    app_factory: RepositoryFactory, query: str, data: st.DataObject
) -> None:
    """As the service's role, scoped to A through ``llmcp.tenancy``: the query with its
    ``org_id`` predicates removed, given B's ids and values (and B's organization as the
    org_id of a new row), learns and changes the same whether B exists or not."""
    repos = app_factory.repositories()
    tx = app_factory.transaction_manager()
    file, name = query.split(".")
    parameters, text = next((p, t) for n, p, t in _queries(file) if n == name)
    run = _raw(file, name, without_org_predicates(text))
    plan_a, plan_b, _ = data.draw(plans(), label="tenants")

    def scoped_to_a(arguments: dict[str, Any]) -> Callable[[], object]:
        def call() -> object:
            with (
                tx.connection(operation=query) as conn,
                tenancy.scoped(tenancy.ORG_ID, str(a.org.id)),
            ):
                return run(conn, **arguments)

        return call

    with rolled_back(tx):
        a = insert(repos, plan_a)
        try:
            with tx.transaction():
                b = insert(repos, plan_b)
                arguments = _raw_arguments(file, parameters, a, b)
                b_before = snapshot(repos, b.org.id)
                with_b = outcome(tx, scoped_to_a(arguments))
                a_with_b = snapshot(repos, a.org.id)
                assert snapshot(repos, b.org.id) == b_before, f"{query} changed B's rows"
                raise _Undo
        except _Undo:
            pass
        without_b = outcome(tx, scoped_to_a(arguments))
        a_without_b = snapshot(repos, a.org.id)
    assert with_b == without_b, f"{query} without its org predicate: A's result depends on B"
    assert a_with_b == a_without_b


def _select_all(table: str) -> Any:
    """``SELECT org_id FROM <table>``: no predicate at all, through llmcp's adapter."""
    queries = aiosql.from_str(
        f"-- name: everything()\nSELECT org_id FROM {table};\n",
        SYNC_ADAPTER,
        kwargs={"rows": {"everything": lambda *columns: columns}, "enums": {}},
    )
    return queries.everything


@examples(15)
@given(data=st.data())
def test_rls_alone_shows_a_tenant_its_own_rows_of_every_table_and_nothing_else(
    app_factory: RepositoryFactory, data: st.DataObject
) -> None:
    """Plain ``SELECT ... FROM <table>`` scoped to A returns A's rows, all of them (as
    many as A's own listings hold) and no other; scoped to an organization that does
    not exist, nothing."""
    repos = app_factory.repositories()
    tx = app_factory.transaction_manager()
    plan_a, plan_b, _ = data.draw(plans(), label="tenants")
    nobody = data.draw(st.uuids(), label="no organization")
    with rolled_back(tx):
        a, b = insert(repos, plan_a), insert(repos, plan_b)
        mine = snapshot(repos, a.org.id)
        counts = {
            "applications": len(mine["apps"]),
            "users": len(mine["users"]),
            "policies": len(mine["policies"]),
            "audit_logs": len(mine["logs"]),
            "inference_requests": len(mine["requests"]),
        }
        for table in TENANT_TABLES:
            everything = _select_all(table)
            with tx.connection() as conn:
                with tenancy.scoped(tenancy.ORG_ID, str(a.org.id)):
                    seen = [row[0] for row in everything(conn)]
                with tenancy.scoped(tenancy.ORG_ID, str(nobody)):
                    assert everything(conn) == [], table
            assert seen and set(seen) == {a.org.id}, table
            assert table not in counts or len(seen) == counts[table], table
            assert b.org.id not in seen


def test_without_a_tenant_the_tenant_tables_show_nothing(
    app_factory: RepositoryFactory,
) -> None:
    """Committed rows of two tenants; a statement that names no tenant, on a pooled
    connection or in a transaction of its own, sees no row of any tenant table."""
    repos = app_factory.repositories()
    tx = app_factory.transaction_manager()
    token = uuid.uuid4().hex[:12]
    sides = []
    for side in ("a", "b"):
        org = repos.organizations.create(NewOrganization(name=side, slug=f"{side}-{token}"))
        app = repos.applications.create(
            NewApplication(org_id=org.id, name=side, api_key_hash=f"{side}{token}".ljust(64, "0"))
        )
        repos.users.create(
            NewUser(org_id=org.id, email=f"{side}{token}@x.io", cognito_sub=side + token)
        )
        repos.policies.create(
            NewPolicy(
                org_id=org.id, name=side, config=RateLimitConfig(requests=1, window_seconds=1)
            )
        )
        repos.audit_logs.insert(
            NewAuditLog(org_id=org.id, action=AuditAction.USER_CREATED, resource_type="user")
        )
        repos.inference_requests.create(
            NewInferenceRequest(
                org_id=org.id, app_id=app.id, request_id=token, provider="p", model="m",
                status=InferenceStatus.COMPLETED,
            )
        )  # fmt: skip
        sides.append(org)
    try:
        for table in TENANT_TABLES:
            everything = _select_all(table)
            with tx.connection() as conn:  # a pooled connection (autocommit)
                assert everything(conn) == [], table
            with tx.transaction(), tx.connection() as conn:
                assert everything(conn) == [], table
            with tx.connection() as conn, tenancy.scoped(tenancy.ORG_ID, str(sides[0].id)):
                assert {row[0] for row in everything(conn)} == {sides[0].id}, table
    finally:
        for org in sides:
            repos.organizations.delete(org.id)


def test_not_found_reads_the_same_for_another_tenants_row_and_a_missing_one(
    owner_factory: RepositoryFactory,
) -> None:
    """The messages themselves: a NotFoundError names the id asked for, nothing more."""
    repos = owner_factory.repositories()
    with rolled_back(owner_factory.transaction_manager()):
        token = uuid.uuid4().hex
        a = repos.organizations.create(NewOrganization(name="a", slug=f"a-{token}"))
        b = repos.organizations.create(NewOrganization(name="b", slug=f"b-{token}"))
        app = repos.applications.create(
            NewApplication(org_id=b.id, name="b", api_key_hash=token.ljust(64, "0"))
        )
        with pytest.raises(NotFoundError) as of_b:
            repos.applications.delete(a.id, app.id)
        missing = uuid.uuid4()
        with pytest.raises(NotFoundError) as of_nobody:
            repos.applications.delete(a.id, missing)
        assert str(of_b.value).replace(str(app.id), "ID") == str(of_nobody.value).replace(
            str(missing), "ID"
        )


def test_a_new_row_with_another_tenants_id_reads_like_one_with_a_fresh_id(
    owner_factory: RepositoryFactory,
) -> None:
    """A caller may choose a new row's id: one that another tenant's row has reads as a
    fresh one (the tenant tables' keys are (org_id, id)), so it tells nothing."""
    repos = owner_factory.repositories()
    tx = owner_factory.transaction_manager()
    token = uuid.uuid4().hex
    with rolled_back(tx):
        a = repos.organizations.create(NewOrganization(name="a", slug=f"a-{token}"))
        b = repos.organizations.create(NewOrganization(name="b", slug=f"b-{token}"))
        b_app = repos.applications.create(
            NewApplication(org_id=b.id, name="b", api_key_hash=token.ljust(64, "0"))
        )

        def create(app_id: uuid.UUID) -> tuple[Any, ...]:
            key_hash = uuid.uuid4().hex * 2  # a key of its own: the first call's stays
            new = NewApplication(org_id=a.id, name="a", api_key_hash=key_hash, id=app_id)
            found = outcome(tx, lambda: repos.applications.create(new))
            return found[:1] if found[0] == "value" else found[:2]  # a value, or an error's class

        assert create(b_app.id) == create(uuid.uuid4())
