"""Paging of every listing: offset pages (limit, offset) and keyset pages (cursor).

Each listing runs over the same seeded tenant, where rows share creation
times in pairs, so only the id tie-breaker makes the order total.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import ValidationError
from llmcp.factory_async import AsyncRepositories, AsyncRepositoryFactory
from llmcp.generated.models import AuditAction, InferenceStatus
from llmcp.paging import Page
from tests.repositories.helpers_async import (
    Tenant,
    at,
    make_app,
    make_log,
    make_policy,
    make_request,
    make_tenant,
    make_user,
    newest_first,
)

ROWS = 7  # rows per listing: not a multiple of the page sizes below
ACTION = AuditAction.INFERENCE_COMPLETED
STATUS = InferenceStatus.COMPLETED


class Seeded(NamedTuple):
    tenant: Tenant
    # listing name -> every row it must return, in no particular order
    expected: dict[str, list[Any]]


async def seed(arepos: AsyncRepositories) -> Seeded:
    """A tenant with ROWS rows in each listing, plus rows that only some listings return."""
    tenant = await make_tenant(arepos)
    org, app, user = tenant
    apps, users, policies, logs, requests = [app], [user], [], [], []
    for i in range(ROWS):
        when = at(i // 2)  # two rows per creation time
        if i < ROWS - 1:  # the tenant's own app and user make ROWS
            apps.append(await make_app(arepos, org.id, created_at=when))
            users.append(await make_user(arepos, org.id, created_at=when))
        policies.append(
            await make_policy(arepos, org.id, app_id=app.id, user_id=user.id, created_at=when)
        )
        logs.append(
            await make_log(
                arepos, org.id, app_id=app.id, user_id=user.id, action=ACTION, created_at=when
            )
        )
        requests.append(
            await make_request(
                arepos, org.id, app.id, user_id=user.id, status=STATUS, created_at=when
            )
        )
    # the tenant's rows that only the organization-wide listings return: another level,
    # app, user, action or status, and outside the date range [at(-10), at(100))
    org_policy = await make_policy(arepos, org.id, created_at=at(100))
    org_log = await make_log(arepos, org.id, action=AuditAction.USER_CREATED, created_at=at(100))
    org_request = await make_request(arepos, org.id, apps[1].id, created_at=at(100))
    # another tenant's rows, at the same times
    stranger = await make_tenant(arepos)
    await make_policy(arepos, stranger.org.id, app_id=stranger.app.id, created_at=at(0))
    await make_log(arepos, stranger.org.id, app_id=stranger.app.id, action=ACTION, created_at=at(0))
    await make_request(arepos, stranger.org.id, stranger.app.id, status=STATUS, created_at=at(0))
    expected: dict[str, list[Any]] = {
        "applications.org": apps,
        "users.org": users,
        "policies.org": [*policies, org_policy],
        "policies.app": policies,
        "policies.user": policies,
        "audit_logs.org": [*logs, org_log],
        "audit_logs.app": logs,
        "audit_logs.user": logs,
        "audit_logs.action": logs,
        "audit_logs.range": logs,
        "inference_requests.org": [*requests, org_request],
        "inference_requests.app": requests,
        "inference_requests.user": requests,
        "inference_requests.status": requests,
        "inference_requests.range": requests,
    }
    return Seeded(tenant, expected)


OffsetListing = Callable[[AsyncRepositories, Tenant, int, int], Awaitable[list[Any]]]

OFFSET_LISTINGS: dict[str, OffsetListing] = {
    "applications.org": lambda r, t, lim, off: r.applications.get_by_org_id(t.org.id, lim, off),
    "users.org": lambda r, t, lim, off: r.users.get_by_org_id(t.org.id, lim, off),
    "policies.org": lambda r, t, lim, off: r.policies.get_by_org_id(t.org.id, lim, off),
    "policies.app": lambda r, t, lim, off: r.policies.get_by_app_id(t.org.id, t.app.id, lim, off),
    "policies.user": lambda r, t, lim, off: r.policies.get_by_user_id(
        t.org.id, t.user.id, lim, off
    ),
    "audit_logs.org": lambda r, t, lim, off: r.audit_logs.get_by_org_id(t.org.id, lim, off),
    "audit_logs.app": lambda r, t, lim, off: r.audit_logs.get_by_app_id(
        t.org.id, t.app.id, lim, off
    ),
    "audit_logs.user": lambda r, t, lim, off: r.audit_logs.get_by_user_id(
        t.org.id, t.user.id, lim, off
    ),
    "audit_logs.action": lambda r, t, lim, off: r.audit_logs.get_by_action(
        t.org.id, ACTION, lim, off
    ),
    "audit_logs.range": lambda r, t, lim, off: r.audit_logs.get_by_date_range(
        t.org.id, at(-10), at(100), lim, off
    ),
    "inference_requests.org": lambda r, t, lim, off: r.inference_requests.get_by_org_id(
        t.org.id, lim, off
    ),
    "inference_requests.app": lambda r, t, lim, off: r.inference_requests.get_by_app_id(
        t.org.id, t.app.id, lim, off
    ),
    "inference_requests.user": lambda r, t, lim, off: r.inference_requests.get_by_user_id(
        t.org.id, t.user.id, lim, off
    ),
    "inference_requests.status": lambda r, t, lim, off: r.inference_requests.get_by_status(
        t.org.id, STATUS, lim, off
    ),
    "inference_requests.range": lambda r, t, lim, off: r.inference_requests.get_by_date_range(
        t.org.id, at(-10), at(100), lim, off
    ),
}

KeysetListing = Callable[[AsyncRepositories, Tenant, int, str | None], Awaitable[Page[Any]]]

KEYSET_LISTINGS: dict[str, KeysetListing] = {
    "audit_logs.org": lambda r, t, lim, cur: r.audit_logs.page_by_org_id(t.org.id, lim, cur),
    "audit_logs.app": lambda r, t, lim, cur: r.audit_logs.page_by_app_id(
        t.org.id, t.app.id, lim, cur
    ),
    "audit_logs.user": lambda r, t, lim, cur: r.audit_logs.page_by_user_id(
        t.org.id, t.user.id, lim, cur
    ),
    "audit_logs.action": lambda r, t, lim, cur: r.audit_logs.page_by_action(
        t.org.id, ACTION, lim, cur
    ),
    "audit_logs.range": lambda r, t, lim, cur: r.audit_logs.page_by_date_range(
        t.org.id, at(-10), at(100), lim, cur
    ),
    "inference_requests.org": lambda r, t, lim, cur: r.inference_requests.page_by_org_id(
        t.org.id, lim, cur
    ),
    "inference_requests.app": lambda r, t, lim, cur: r.inference_requests.page_by_app_id(
        t.org.id, t.app.id, lim, cur
    ),
    "inference_requests.user": lambda r, t, lim, cur: r.inference_requests.page_by_user_id(
        t.org.id, t.user.id, lim, cur
    ),
    "inference_requests.status": lambda r, t, lim, cur: r.inference_requests.page_by_status(
        t.org.id, STATUS, lim, cur
    ),
    "inference_requests.range": lambda r, t, lim, cur: r.inference_requests.page_by_date_range(
        t.org.id, at(-10), at(100), lim, cur
    ),
}


def ids(rows: list[Any]) -> list[uuid.UUID]:
    return [row.id for row in rows]


@pytest.mark.parametrize("name", list(OFFSET_LISTINGS))
async def test_offset_pages(shared_config: DatabaseConfig, name: str) -> None:
    listing = OFFSET_LISTINGS[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        seeded = await seed(arepos)
        tenant, expected = seeded.tenant, newest_first(seeded.expected[name])
        assert len(expected) >= ROWS

        everything = await listing(arepos, tenant, 1000, 0)
        assert everything == expected  # newest first, ties broken by id
        assert await listing(arepos, tenant, 1, 0) == expected[:1]
        assert await listing(arepos, tenant, 1, len(expected) - 1) == expected[-1:]
        for size in (1, 2, 3):
            pages = [
                await listing(arepos, tenant, size, offset)
                for offset in range(0, len(expected) + size, size)
            ]
            assert pages[-1] == []
            assert all(0 < len(page) <= size for page in pages[:-1])
            walked = [row for page in pages for row in page]
            assert walked == expected and len(set(ids(walked))) == len(walked)
        assert await listing(arepos, tenant, 10, len(expected)) == []
        assert await listing(arepos, tenant, 1000, 2**63 - 1) == []


@pytest.mark.parametrize("name", list(OFFSET_LISTINGS))
async def test_offset_pages_refuse_bad_limits_and_offsets(
    shared_config: DatabaseConfig, name: str
) -> None:
    listing = OFFSET_LISTINGS[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tenant = await make_tenant(arepos)
        for limit, offset in ((0, 0), (1001, 0), (-1, 0), (10, -1), (10, 2**63)):
            with pytest.raises(ValidationError, match="limit" if offset == 0 else "offset"):
                await listing(arepos, tenant, limit, offset)
        with pytest.raises(ValidationError, match="limit"):
            await listing(arepos, tenant, True, 0)  # a bool is an int to mypy, not to llmcp
        with pytest.raises(ValidationError, match="offset"):
            await listing(arepos, tenant, 1, 1.0)  # type: ignore[arg-type]


async def walk(
    listing: KeysetListing, arepos: AsyncRepositories, tenant: Tenant, size: int
) -> list[Page[Any]]:
    pages = [await listing(arepos, tenant, size, None)]
    while pages[-1].next_cursor is not None:
        assert len(pages) < 100, "the cursor does not advance"
        pages.append(await listing(arepos, tenant, size, pages[-1].next_cursor))
    return pages


@pytest.mark.parametrize("name", list(KEYSET_LISTINGS))
async def test_keyset_pages_walk_everything_once(shared_config: DatabaseConfig, name: str) -> None:
    listing = KEYSET_LISTINGS[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        seeded = await seed(arepos)
        tenant, expected = seeded.tenant, newest_first(seeded.expected[name])
        count = len(expected)

        whole = await listing(arepos, tenant, 1000, None)
        assert whole == Page(items=expected, next_cursor=None)
        exact = await listing(arepos, tenant, count, None)  # a full last page: no next
        assert exact == Page(items=expected, next_cursor=None)
        for size in (1, 2, 3, count - 1):
            pages = await walk(listing, arepos, tenant, size)
            assert len(pages) == -(-count // size)
            assert all(len(page.items) == size for page in pages[:-1])
            assert all(page.next_cursor is not None for page in pages[:-1])
            assert pages[-1].next_cursor is None and pages[-1].items
            walked = [row for page in pages for row in page.items]
            assert walked == expected and len(set(ids(walked))) == count


@pytest.mark.parametrize("name", list(KEYSET_LISTINGS))
async def test_keyset_pages_are_stable_when_newer_rows_arrive(
    shared_config: DatabaseConfig, name: str
) -> None:
    """A cursor is a position: a row inserted ahead of it while paging is neither
    returned by the next pages nor shifts them (an offset page would repeat a row)."""
    listing = KEYSET_LISTINGS[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        seeded = await seed(arepos)
        tenant, expected = seeded.tenant, newest_first(seeded.expected[name])
        first = await listing(arepos, tenant, 3, None)
        assert first.next_cursor is not None
        # a newer row arrives after the first page: it sorts before the cursor
        if name.startswith("audit_logs"):
            await make_log(
                arepos,
                tenant.org.id,
                app_id=tenant.app.id,
                user_id=tenant.user.id,
                action=ACTION,
                created_at=at(50),
            )
        else:
            await make_request(
                arepos,
                tenant.org.id,
                tenant.app.id,
                user_id=tenant.user.id,
                status=STATUS,
                created_at=at(50),
            )
        rest = await listing(arepos, tenant, 1000, first.next_cursor)
        assert rest == Page(items=expected[3:], next_cursor=None)


@pytest.mark.parametrize("name", list(KEYSET_LISTINGS))
async def test_keyset_pages_refuse_bad_limits(shared_config: DatabaseConfig, name: str) -> None:
    listing = KEYSET_LISTINGS[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tenant = await make_tenant(arepos)
        for limit in (0, 1001, -1):
            with pytest.raises(ValidationError, match="limit"):
                await listing(arepos, tenant, limit, None)


@pytest.mark.parametrize("name", list(KEYSET_LISTINGS))
async def test_keyset_pages_refuse_tampered_and_foreign_cursors(
    shared_config: DatabaseConfig, name: str
) -> None:
    listing = KEYSET_LISTINGS[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        seeded = await seed(arepos)
        tenant = seeded.tenant
        cursor = (await listing(arepos, tenant, 2, None)).next_cursor
        assert cursor is not None
        # the cursor works, and is the same whoever asks
        assert (await listing(arepos, tenant, 2, cursor)).items
        flipped = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
        bad = ["", "garbage!", cursor[:-1], cursor + "A", flipped, cursor[::-1], "A" * 600]
        # the same listing over another tenant (another scope)
        stranger = await seed(arepos)
        bad.append(str((await listing(arepos, stranger.tenant, 2, None)).next_cursor))
        # every other keyset listing over this tenant (another query)
        for other_name, other in KEYSET_LISTINGS.items():
            if other_name != name:
                bad.append(await listing_cursor(other, arepos, tenant))
        for tampered in bad:
            with pytest.raises(ValidationError, match=r"^invalid cursor$"):
                await listing(arepos, tenant, 2, tampered)
        with pytest.raises(ValidationError, match="invalid cursor"):
            await listing(arepos, tenant, 2, 12345)  # type: ignore[arg-type]


async def listing_cursor(listing: KeysetListing, arepos: AsyncRepositories, tenant: Tenant) -> str:
    cursor = (await listing(arepos, tenant, 2, None)).next_cursor
    assert cursor is not None
    return cursor


async def test_a_cursor_signed_with_another_secret_is_refused(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        seeded = await seed(arepos)
        tenant = seeded.tenant
        cursor = (await arepos.audit_logs.page_by_org_id(tenant.org.id, 2)).next_cursor
        assert cursor is not None
    rotated = dataclasses.replace(shared_config, cursor_secret=b"another-secret-of-32-bytes-long!")
    async with await AsyncRepositoryFactory.connect(rotated) as afactory:
        arepos = afactory.repositories()
        with pytest.raises(ValidationError, match="invalid cursor"):
            await arepos.audit_logs.page_by_org_id(tenant.org.id, 2, cursor)
    # another instance with the same secret accepts it
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        page = await afactory.repositories().audit_logs.page_by_org_id(tenant.org.id, 2, cursor)
        assert page.items
