"""Pagination properties for every paged repository method, offset and keyset.

For a generated data set (several organizations with applications, users and
rows whose ``created_at`` are often equal) and a filter, the expected listing
is the reference model: the matching rows sorted by ``(created_at, id)``
descending. Then:

- offset pages: any ``(limit, offset)`` window is the same slice of it; pages
  of a drawn size concatenate to it, with the page past the end empty;
- keyset pages: following ``next_cursor`` with page sizes drawn page by page
  gives it exactly, ``next_cursor`` is None on the last page only, and every
  page but the last is full;
- keyset pages while rows are inserted and deleted between pages: the pages
  stay in strict order, no row comes twice, every row that was in the listing
  throughout comes exactly once, and nothing that never was comes at all;
- cursors that are tampered with, truncated, made for another listing or with
  another secret, and limits outside 1..1000 or negative offsets are
  ``ValidationError``.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmcp.config import DatabaseConfig
from llmcp.errors import ValidationError
from llmcp.factory import Repositories, RepositoryFactory
from llmcp.generated.models import (
    Application,
    AuditAction,
    AuditLog,
    InferenceRequest,
    InferenceStatus,
    Organization,
    Policy,
    User,
)
from llmcp.inputs import NewAuditLog
from llmcp.paging import Page
from llmcp.testing import rolled_back
from llmcp.testing import strategies as lst
from tests.properties import model, planner
from tests.properties.budget import examples

A = "audit_logs"
I = "inference_requests"  # noqa: E741
MISSING = uuid.UUID("00000000-0000-4000-8000-00000000dead")
BASE = datetime.datetime(2024, 3, 1, 12, tzinfo=datetime.UTC)
TICK = datetime.timedelta(microseconds=1)
# Rows are created at one of three instants, one microsecond apart (in random offsets):
# most rows tie on created_at, so the id tie-breaker decides their order.
CREATED = lst.clustered_datetimes(3, base=BASE, step=TICK)
# Range bounds: from before the first instant to after the last one.
BOUNDS = lst.clustered_datetimes(5, base=BASE - TICK, step=TICK)
# Few actions and statuses, so that filtering by them finds rows.
ACTIONS = [AuditAction.POLICY_CREATED, AuditAction.POLICY_VIOLATION, AuditAction.USER_DELETED]
STATUSES = [InferenceStatus.PENDING, InferenceStatus.COMPLETED, InferenceStatus.FAILED]


# -- data sets ------------------------------------------------------------------


@dataclass
class World:
    """What an example stored, as the repositories returned it: the reference data."""

    orgs: dict[uuid.UUID, Organization] = field(default_factory=dict)
    apps: dict[uuid.UUID, Application] = field(default_factory=dict)
    users: dict[uuid.UUID, User] = field(default_factory=dict)
    policies: dict[uuid.UUID, Policy] = field(default_factory=dict)
    audit_logs: dict[uuid.UUID, AuditLog] = field(default_factory=dict)
    inference_requests: dict[uuid.UUID, InferenceRequest] = field(default_factory=dict)

    def table(self, name: str) -> dict[uuid.UUID, Any]:
        table: dict[uuid.UUID, Any] = getattr(self, name)
        return table

    def tables(self) -> dict[str, dict[uuid.UUID, Any]]:
        """The tables under the schema's names (the same dicts), for ``model.delete``."""
        names = ("organizations", "applications", "users", "policies", A, I)
        mine = ("orgs", "apps", "users", "policies", A, I)
        return {name: self.table(own) for name, own in zip(names, mine, strict=True)}

    # What deleting a row does, applied to the reference data (model.ON_DELETE): the
    # audit trail of a deleted organization, application or user stays, ids intact.
    def delete_org(self, org_id: uuid.UUID) -> None:
        model.delete(self.tables(), "organizations", org_id)

    def delete_app(self, app_id: uuid.UUID) -> None:
        model.delete(self.tables(), "applications", app_id)

    def delete_user(self, user_id: uuid.UUID) -> None:
        model.delete(self.tables(), "users", user_id)


@dataclass(frozen=True)
class Plan:
    """A data set to insert: tenants, then audit logs and inference requests."""

    tenants: list[lst.TenantPlan]
    audit_logs: list[Any]
    inference_requests: list[Any]
    # "drawn", or "by id": rows inserted in ascending id order, so that a plan that returns
    # ties in the table's physical order gets them in exactly the wrong order
    order: str = "drawn"

    def _ordered(self, rows: list[Any]) -> list[Any]:
        return sorted(rows, key=lambda row: row.id.int) if self.order == "by id" else rows

    def insert(self, repos: Repositories) -> World:
        world = World()
        for plan in self.tenants:
            plan = dataclasses.replace(
                plan,
                applications=self._ordered(plan.applications),
                users=self._ordered(plan.users),
                policies=self._ordered(plan.policies),
            )
            tenant = plan.create(repos)
            world.orgs[tenant.organization.id] = tenant.organization
            world.apps.update((app.id, app) for app in tenant.applications)
            world.users.update((user.id, user) for user in tenant.users)
            world.policies.update((policy.id, policy) for policy in tenant.policies)
        for new_log in self._ordered(self.audit_logs):
            log = repos.audit_logs.insert(new_log)
            world.audit_logs[log.id] = log
        for new_request in self._ordered(self.inference_requests):
            request = repos.inference_requests.create(new_request)
            world.inference_requests[request.id] = request
        return world


def _distinct_ids(plans: list[lst.TenantPlan]) -> bool:
    found = [row_id for plan in plans for row_id in plan.ids()]
    return len(found) == len(set(found)) and MISSING not in found


@st.composite
def plans(draw: st.DrawFn, table: str) -> Plan:
    """A data set for listing ``table``: 1..3 tenants (more when listing organizations)
    and up to ~20 rows of the table under test, a few of them in other organizations."""
    many = (0, 14)
    tenants = draw(
        st.lists(
            lst.tenant_plans(
                applications=many if table == "apps" else (0, 0) if table == "orgs" else (1, 2),
                users=many if table == "users" else (0, 0) if table == "orgs" else (1, 2),
                policies=(0, 18) if table == "policies" else (0, 0),
                lean=True,
                created_at=CREATED,
            ),
            min_size=1,
            max_size=8 if table == "orgs" else 3,
        ).filter(_distinct_ids),
        label="tenants",
    )
    logs: list[Any] = []
    requests: list[Any] = []
    if table in ("audit_logs", "inference_requests"):
        row_ids = iter(draw(st.lists(st.uuids(), min_size=28, max_size=28, unique=True)))
        for index, plan in enumerate(tenants):
            count = draw(st.integers(0, 20 if index == 0 else 4), label="rows")
            for _ in range(count):
                row = draw(new_row(table, plan.organization.id, world_ids(plan)))
                (logs if table == A else requests).append(
                    msgspec.structs.replace(row, id=next(row_ids))
                )
    return Plan(tenants, logs, requests, draw(st.sampled_from(["drawn", "by id"]), label="order"))


PLACEHOLDER = uuid.UUID(int=0)
LOGS = lst.new_audit_logs(PLACEHOLDER, actions=ACTIONS, lean=True, created_at=CREATED)
REQUESTS = lst.new_inference_requests(
    PLACEHOLDER, [PLACEHOLDER], statuses=STATUSES, lean=True, created_at=CREATED
)


def world_ids(plan: lst.TenantPlan) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    apps = [app.id for app in plan.applications if app.id is not None]
    return apps, [user.id for user in plan.users if user.id is not None]


@st.composite
def new_row(
    draw: st.DrawFn, table: str, org_id: Any, refs: tuple[list[uuid.UUID], list[uuid.UUID]]
) -> Any:
    """An audit log or inference request of ``org_id`` naming one of its apps and users."""
    app_ids, user_ids = refs
    row = draw(LOGS if table == A else REQUESTS)
    app_id = draw(st.sampled_from(app_ids)) if app_ids else None
    if table == A and draw(st.booleans()):
        app_id = None
    user_id = draw(st.sampled_from(user_ids)) if bool(user_ids) and draw(st.booleans()) else None
    return msgspec.structs.replace(
        row, org_id=org_id, app_id=app_id, user_id=user_id, id=draw(st.uuids())
    )


# -- the listings -------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    org_id: uuid.UUID
    start: datetime.datetime
    end: datetime.datetime


Offset = Callable[[Repositories, Any, int, int], list[Any]]
Keyset = Callable[[Repositories, Any, int, "str | None"], Page[Any]]


@dataclass(frozen=True)
class Listing:
    """One paged listing: its offset method, its keyset method (if any), how to draw a
    filter for it from a world, and which rows of its table match a filter."""

    name: str
    table: str
    offset: Offset
    keyset: Keyset | None
    filters: Callable[[World, str], st.SearchStrategy[Any]]
    member: Callable[[Any, Any], bool]

    def filter_values(self, world: World) -> st.SearchStrategy[Any]:
        """Filters for this listing: mostly ones that match rows of the world."""
        return self.filters(world, self.table)

    def __str__(self) -> str:
        return self.name


def _pick(
    world: World, table: str, column: str, known: dict[uuid.UUID, Any]
) -> st.SearchStrategy[uuid.UUID]:
    """Mostly a value of ``column`` that rows of ``table`` have (so the listing is not
    empty), sometimes any id of ``known`` or one that exists nowhere."""
    hits = sorted({getattr(row, column) for row in world.table(table).values()} - {None})
    anything = st.sampled_from([*known, MISSING])
    return st.one_of([st.sampled_from(hits)] * 3 + [anything]) if hits else anything


def by_org(world: World, table: str) -> st.SearchStrategy[uuid.UUID]:
    return _pick(world, table, "org_id", world.orgs)


def _pick_in_org(
    world: World, table: str, column: str, known: dict[uuid.UUID, Any]
) -> st.SearchStrategy[tuple[uuid.UUID, uuid.UUID]]:
    """(organization, value of ``column``): mostly a pair that rows of ``table`` have,
    sometimes a value with another organization (which must list nothing: a listing is
    scoped to the organization it names) or ids that exist nowhere."""
    rows = world.table(table).values()
    hits = sorted({(row.org_id, getattr(row, column)) for row in rows if getattr(row, column)})
    anything = st.tuples(
        st.sampled_from([*world.orgs, MISSING]), st.sampled_from([*known, MISSING])
    )
    return st.one_of([st.sampled_from(hits)] * 3 + [anything]) if hits else anything


def by_app(world: World, table: str) -> st.SearchStrategy[tuple[uuid.UUID, uuid.UUID]]:
    return _pick_in_org(world, table, "app_id", world.apps)


def by_user(world: World, table: str) -> st.SearchStrategy[tuple[uuid.UUID, uuid.UUID]]:
    return _pick_in_org(world, table, "user_id", world.users)


def by_range(world: World, table: str) -> st.SearchStrategy[Range]:
    return st.builds(
        lambda org_id, a, b: Range(org_id, min(a, b), max(a, b)),
        by_org(world, table),
        BOUNDS,
        BOUNDS,
    )


def by_action(world: World, table: str) -> st.SearchStrategy[tuple[uuid.UUID, AuditAction]]:
    return st.tuples(by_org(world, table), st.sampled_from(ACTIONS))


def by_status(world: World, table: str) -> st.SearchStrategy[tuple[uuid.UUID, InferenceStatus]]:
    return st.tuples(by_org(world, table), st.sampled_from(STATUSES))


def in_range(row: AuditLog | InferenceRequest, bounds: Range) -> bool:
    return row.org_id == bounds.org_id and bounds.start <= row.created_at < bounds.end


LISTINGS = [
    Listing(
        "organizations.list", "orgs",
        lambda r, f, limit, offset: r.organizations.list(limit, offset), None,
        lambda w, t: st.none(), lambda row, f: True,
    ),
    Listing(
        "applications.get_by_org_id", "apps",
        lambda r, f, limit, offset: r.applications.get_by_org_id(f, limit, offset), None,
        by_org, lambda row, f: row.org_id == f,
    ),
    Listing(
        "users.get_by_org_id", "users",
        lambda r, f, limit, offset: r.users.get_by_org_id(f, limit, offset), None,
        by_org, lambda row, f: row.org_id == f,
    ),
    Listing(
        "policies.get_by_org_id", "policies",
        lambda r, f, limit, offset: r.policies.get_by_org_id(f, limit, offset), None,
        by_org, lambda row, f: row.org_id == f,
    ),
    Listing(
        "policies.get_by_app_id", "policies",
        lambda r, f, limit, offset: r.policies.get_by_app_id(f[0], f[1], limit, offset), None,
        by_app, lambda row, f: (row.org_id, row.app_id) == f,
    ),
    Listing(
        "policies.get_by_user_id", "policies",
        lambda r, f, limit, offset: r.policies.get_by_user_id(f[0], f[1], limit, offset), None,
        by_user, lambda row, f: (row.org_id, row.user_id) == f,
    ),
    Listing(
        "audit_logs.by_org_id", A,
        lambda r, f, limit, offset: r.audit_logs.get_by_org_id(f, limit, offset),
        lambda r, f, limit, cursor: r.audit_logs.page_by_org_id(f, limit, cursor),
        by_org, lambda row, f: row.org_id == f,
    ),
    Listing(
        "audit_logs.by_app_id", A,
        lambda r, f, limit, offset: r.audit_logs.get_by_app_id(f[0], f[1], limit, offset),
        lambda r, f, limit, cursor: r.audit_logs.page_by_app_id(f[0], f[1], limit, cursor),
        by_app, lambda row, f: (row.org_id, row.app_id) == f,
    ),
    Listing(
        "audit_logs.by_user_id", A,
        lambda r, f, limit, offset: r.audit_logs.get_by_user_id(f[0], f[1], limit, offset),
        lambda r, f, limit, cursor: r.audit_logs.page_by_user_id(f[0], f[1], limit, cursor),
        by_user, lambda row, f: (row.org_id, row.user_id) == f,
    ),
    Listing(
        "audit_logs.by_date_range", A,
        lambda r, f, limit, offset: r.audit_logs.get_by_date_range(
            f.org_id, f.start, f.end, limit, offset
        ),
        lambda r, f, limit, cursor: r.audit_logs.page_by_date_range(
            f.org_id, f.start, f.end, limit, cursor
        ),
        by_range, in_range,
    ),
    Listing(
        "audit_logs.by_action", A,
        lambda r, f, limit, offset: r.audit_logs.get_by_action(f[0], f[1], limit, offset),
        lambda r, f, limit, cursor: r.audit_logs.page_by_action(f[0], f[1], limit, cursor),
        by_action, lambda row, f: (row.org_id, row.action) == f,
    ),
    Listing(
        "inference_requests.by_org_id", I,
        lambda r, f, limit, offset: r.inference_requests.get_by_org_id(f, limit, offset),
        lambda r, f, limit, cursor: r.inference_requests.page_by_org_id(f, limit, cursor),
        by_org, lambda row, f: row.org_id == f,
    ),
    Listing(
        "inference_requests.by_app_id", I,
        lambda r, f, limit, offset: r.inference_requests.get_by_app_id(f[0], f[1], limit, offset),
        lambda r, f, limit, cursor: r.inference_requests.page_by_app_id(f[0], f[1], limit, cursor),
        by_app, lambda row, f: (row.org_id, row.app_id) == f,
    ),
    Listing(
        "inference_requests.by_user_id", I,
        lambda r, f, limit, offset: r.inference_requests.get_by_user_id(f[0], f[1], limit, offset),
        lambda r, f, limit, cursor: r.inference_requests.page_by_user_id(f[0], f[1], limit, cursor),
        by_user, lambda row, f: (row.org_id, row.user_id) == f,
    ),
    Listing(
        "inference_requests.by_status", I,
        lambda r, f, limit, offset: r.inference_requests.get_by_status(f[0], f[1], limit, offset),
        lambda r, f, limit, cursor: r.inference_requests.page_by_status(f[0], f[1], limit, cursor),
        by_status, lambda row, f: (row.org_id, row.status) == f,
    ),
    Listing(
        "inference_requests.by_date_range", I,
        lambda r, f, limit, offset: r.inference_requests.get_by_date_range(
            f.org_id, f.start, f.end, limit, offset
        ),
        lambda r, f, limit, cursor: r.inference_requests.page_by_date_range(
            f.org_id, f.start, f.end, limit, cursor
        ),
        by_range, in_range,
    ),
]  # fmt: skip
KEYSET_LISTINGS = [listing for listing in LISTINGS if listing.keyset is not None]


def expected(listing: Listing, world: World, flt: Any) -> list[Any]:
    """The reference: matching rows of the listing's table, newest first."""
    rows = world.table(listing.table).values()
    return model.newest_first(row for row in rows if listing.member(row, flt))


def page_sizes(total: int) -> st.SearchStrategy[int]:
    """1, sizes that divide ``total`` exactly, anything up to past it, and the maximum."""
    divisors = [k for k in range(1, total + 1) if total % k == 0] or [1]
    return st.one_of(
        st.just(1), st.sampled_from(divisors), st.integers(1, total + 2), st.just(1000)
    )


# -- properties -----------------------------------------------------------------------


@examples(25)
@pytest.mark.parametrize("listing", LISTINGS, ids=str)
@given(data=st.data())
def test_pages_concatenate_to_the_full_ordered_result(
    llmcp_factory: RepositoryFactory, listing: Listing, data: st.DataObject
) -> None:
    repos = llmcp_factory.repositories()
    plan = data.draw(plans(listing.table), label="plan")
    with rolled_back(llmcp_factory.transaction_manager()) as transaction:
        planner.use(transaction, data.draw(planner.MODES, label="planner"))
        world = plan.insert(repos)
        # the data set is the costly part: check several filters on it
        for _ in range(data.draw(st.integers(1, 3), label="filters")):
            flt = data.draw(listing.filter_values(world), label="filter")
            check_pages(listing, repos, flt, expected(listing, world, flt), data)


def check_pages(
    listing: Listing, repos: Repositories, flt: Any, want: list[Any], data: st.DataObject
) -> None:
    """Offset and keyset pages of ``listing`` for ``flt`` against the expected rows."""
    total = len(want)

    def offset_page(limit: int, offset: int) -> list[Any]:
        return listing.offset(repos, flt, limit, offset)

    # everything at once: the rows themselves, in the documented order
    assert offset_page(1000, 0) == want

    # offset pages of one size, until the page past the end
    size = data.draw(page_sizes(total), label="offset page size")
    pages = [offset_page(size, start) for start in range(0, total + 1, size)]
    assert [len(page) for page in pages[:-1]] == [size] * (len(pages) - 1)
    assert [row for page in pages for row in page] == want
    assert offset_page(size, math.ceil(total / size) * size) == []

    # any window, including offsets at and far past the end
    limit = data.draw(st.integers(1, total + 3), label="window limit")
    start = data.draw(
        st.integers(0, total + 3) | st.integers(total, 2**63 - 1), label="window offset"
    )
    assert offset_page(limit, start) == want[start : start + limit]

    if listing.keyset is None:
        return
    # keyset pages: the size may change from one page to the next
    seen: list[Any] = []
    cursor: str | None = None
    for _ in range(total + 2):
        size = data.draw(st.integers(1, 3) | page_sizes(total), label="keyset page size")
        page = listing.keyset(repos, flt, size, cursor)
        seen.extend(page.items)
        if page.next_cursor is None:
            assert len(page.items) <= size
            break
        assert len(page.items) == size, "only the last page may be short"
        cursor = page.next_cursor
    else:
        pytest.fail("keyset paging did not end")
    assert seen == want


@st.composite
def changes(draw: st.DrawFn, listing: Listing, world: World) -> tuple[str, Any]:
    """A change between two keyset pages: insert a row, delete an application, a user or
    an organization (with their cascades), or move an inference request to another status."""
    kinds = ["insert", "insert"]
    kinds += ["delete app"] if world.apps else []
    kinds += ["delete user"] if world.users else []
    kinds += ["delete org"] if world.orgs else []
    kinds += ["update status"] if listing.table == I and world.inference_requests else []
    kind = draw(st.sampled_from(kinds))
    if kind == "delete app":
        return kind, draw(st.sampled_from(sorted(world.apps)))
    if kind == "delete user":
        return kind, draw(st.sampled_from(sorted(world.users)))
    if kind == "delete org":
        return kind, draw(st.sampled_from(sorted(world.orgs)))
    if kind == "update status":
        row_id = draw(st.sampled_from(sorted(world.inference_requests)))
        return kind, (row_id, draw(st.sampled_from(STATUSES)))
    orgs = [org for org in world.orgs if any(a.org_id == org for a in world.apps.values())]
    if not orgs:
        return "nothing", None
    org_id = draw(st.sampled_from(sorted(orgs)))
    app_ids = sorted(a.id for a in world.apps.values() if a.org_id == org_id)
    user_ids = sorted(u.id for u in world.users.values() if u.org_id == org_id)
    return kind, draw(new_row(listing.table, org_id, (app_ids, user_ids)))


def apply(repos: Repositories, world: World, change: tuple[str, Any]) -> None:
    """Make ``change`` in the database and in the reference data."""
    kind, value = change
    if kind == "insert" and isinstance(value, NewAuditLog):
        log = repos.audit_logs.insert(value)
        world.audit_logs[log.id] = log
    elif kind == "insert":
        request = repos.inference_requests.create(value)
        world.inference_requests[request.id] = request
    elif kind == "delete app":
        repos.applications.delete(world.apps[value].org_id, value)
        world.delete_app(value)
    elif kind == "delete user":
        repos.users.delete(world.users[value].org_id, value)
        world.delete_user(value)
    elif kind == "delete org":
        repos.organizations.delete(value)
        world.delete_org(value)
    elif kind == "update status":
        row_id, status = value
        row = world.inference_requests[row_id]
        updated = repos.inference_requests.update(msgspec.structs.replace(row, status=status))
        world.inference_requests[row_id] = updated


@examples(25)
@pytest.mark.parametrize("listing", KEYSET_LISTINGS, ids=str)
@given(data=st.data())
def test_keyset_pages_survive_inserts_and_deletes_between_pages(
    llmcp_factory: RepositoryFactory, listing: Listing, data: st.DataObject
) -> None:
    repos = llmcp_factory.repositories()
    keyset = listing.keyset
    assert keyset is not None
    plan = data.draw(plans(listing.table), label="plan")
    with rolled_back(llmcp_factory.transaction_manager()) as transaction:
        planner.use(transaction, data.draw(planner.MODES, label="planner"))
        world = plan.insert(repos)
        flt = data.draw(listing.filter_values(world), label="filter")

        def members() -> set[uuid.UUID]:
            return {row.id for row in expected(listing, world, flt)}

        memberships = [members()]
        returned: list[Any] = []
        cursor: str | None = None
        for _ in range(100):
            size = data.draw(st.integers(1, 4), label="page size")
            page = keyset(repos, flt, size, cursor)
            returned.extend(page.items)
            if page.next_cursor is None:
                break
            assert len(page.items) == size
            cursor = page.next_cursor
            for _ in range(data.draw(st.integers(0, 3), label="changes")):
                change = data.draw(changes(listing, world), label="change")
                if change[0] == "insert" and change[1].id in world.table(listing.table):
                    continue  # a drawn id that is taken
                apply(repos, world, change)
                memberships.append(members())
        else:
            pytest.fail("keyset paging did not end")

        keys = [(row.created_at, row.id.int) for row in returned]
        assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys), (
            "pages must be in strict (created_at, id) descending order, without repeats"
        )
        got = {row.id for row in returned}
        throughout = set.intersection(*memberships)
        ever = set.union(*memberships)
        assert throughout <= got, "a row present all along was skipped"
        assert got <= ever, "a row that never matched was returned"


# -- invalid cursors, limits and offsets ---------------------------------------------------

OTHER_SECRET = b"another-secret-of-enough-length"


def _tampered(cursor: str, data: st.DataObject) -> list[str]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = data.draw(st.integers(0, len(cursor) - 1), label="tampered index")
    char = data.draw(st.sampled_from(alphabet).filter(lambda c: c != cursor[index]))
    cut = data.draw(st.integers(0, len(cursor) - 1), label="truncated at")
    extra = data.draw(st.text(alphabet, min_size=1, max_size=4), label="appended")
    return [
        cursor[:index] + char + cursor[index + 1 :],
        cursor[:cut],
        cursor + extra,
        cursor[1:],
        cursor[::-1],
    ]


@examples(40)
@given(data=st.data())
def test_tampered_truncated_and_foreign_cursors_are_rejected(
    llmcp_factory: RepositoryFactory, stranger: RepositoryFactory, data: st.DataObject
) -> None:
    repos = llmcp_factory.repositories()
    listing = data.draw(st.sampled_from(KEYSET_LISTINGS), label="listing")
    other = data.draw(
        st.sampled_from([x for x in KEYSET_LISTINGS if x is not listing]), label="other listing"
    )
    keyset, other_keyset = listing.keyset, other.keyset
    assert keyset is not None and other_keyset is not None
    plan = data.draw(plans(listing.table).filter(lambda p: len(p.tenants) >= 2), label="plan")
    with rolled_back(llmcp_factory.transaction_manager()) as transaction:
        planner.use(transaction, data.draw(planner.MODES, label="planner"))
        world = plan.insert(repos)
        # a filter with at least two rows, so that a first page of one row has a cursor
        candidates = [
            flt
            for flt in _filters_with_rows(listing, world)
            if len(expected(listing, world, flt)) >= 2
        ]
        if not candidates:
            return
        flt = data.draw(st.sampled_from(candidates), label="filter")
        cursor = keyset(repos, flt, 1, None).next_cursor
        assert cursor is not None
        assert keyset(repos, flt, 1, cursor).items  # the genuine cursor works

        bad: list[Any] = _tampered(cursor, data)
        # the same cursor for another filter of the same listing, another listing,
        # or the same listing of a repository with another secret
        other_filter = data.draw(listing.filter_values(world).filter(lambda f: f != flt))
        for attempt in bad:
            with pytest.raises(ValidationError):
                keyset(repos, flt, 1, attempt)
        with pytest.raises(ValidationError):
            keyset(repos, other_filter, 1, cursor)
        other_filter = data.draw(other.filter_values(world), label="other filter")
        with pytest.raises(ValidationError):
            other_keyset(repos, other_filter, 1, cursor)
        with pytest.raises(ValidationError):
            keyset(stranger.repositories(), flt, 1, cursor)
        # not a cursor at all
        junk = data.draw(
            st.text(max_size=600).filter(bool)
            | st.binary(max_size=40)
            | st.integers()
            | st.just(cursor.encode()),
            label="junk cursor",
        )
        with pytest.raises(ValidationError):
            keyset(repos, flt, 1, junk)  # type: ignore[arg-type]  # not a cursor, on purpose


def _filters_with_rows(listing: Listing, world: World) -> list[Any]:
    """Filters of ``listing`` built from its rows (so that they match something)."""
    rows = list(world.table(listing.table).values())
    if listing.name.endswith("org_id"):
        return [row.org_id for row in rows]
    if listing.name.endswith("app_id"):
        return [(row.org_id, row.app_id) for row in rows if row.app_id is not None]
    if listing.name.endswith("user_id"):
        return [(row.org_id, row.user_id) for row in rows if row.user_id is not None]
    if listing.name.endswith("action"):
        return [(row.org_id, row.action) for row in rows]
    if listing.name.endswith("status"):
        return [(row.org_id, row.status) for row in rows]
    return [Range(row.org_id, BASE - TICK, BASE + 3 * TICK) for row in rows]


@pytest.fixture(scope="module")
def stranger(llmcp_config: DatabaseConfig) -> Iterator[RepositoryFactory]:
    """A factory on the same database whose cursors are signed with another secret."""
    config = dataclasses.replace(llmcp_config, cursor_secret=OTHER_SECRET, min_size=0)
    with RepositoryFactory.connect(config) as factory:
        yield factory


NOT_A_LIMIT = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=1001),
    st.sampled_from([True, False, 1.0, 10.5, "10", None, b"1", [1], float("nan")]),
)
NOT_AN_OFFSET = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=2**63),
    st.sampled_from([True, 0.0, "0", None, float("inf")]),
)


@examples(60)
@given(listing=st.sampled_from(LISTINGS), limit=NOT_A_LIMIT, offset=NOT_AN_OFFSET, data=st.data())
def test_limits_outside_1_to_1000_and_negative_offsets_are_rejected(
    llmcp_factory: RepositoryFactory, listing: Listing, limit: Any, offset: Any, data: Any
) -> None:
    repos = llmcp_factory.repositories()
    flt = data.draw(listing.filter_values(World()), label="filter")
    with pytest.raises(ValidationError):
        listing.offset(repos, flt, limit, 0)
    with pytest.raises(ValidationError):
        listing.offset(repos, flt, 10, offset)
    if listing.keyset is not None:
        with pytest.raises(ValidationError):
            listing.keyset(repos, flt, limit, None)
