"""Tenant isolation through the repositories: organization A never reaches a row of B.

Every tenant-scoped method, given A's id and a row (or key) of B, answers
exactly as it does for a row that does not exist: None, [], an empty page, or a
NotFoundError with the same message but for the id. ``update`` is scoped by the
row's ``org_id``, so a row of B with A's id in ``org_id`` is not found either,
and nothing of B changes. The tests connect as the embedded superuser for now,
which bypasses row-level security: what they check is each query's own
``org_id`` predicate (RLS is the second wall, tested as the application role).

Also here: the audit trail is append-only for everyone (UPDATE, DELETE and
TRUNCATE refused, by llmcp's connection and by a plain psycopg one), and
``audit_logs.purge``, the one way to remove old entries, which records itself.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import msgspec
import psycopg
import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import (
    ConflictError,
    LlmcpError,
    NotFoundError,
    PermissionDeniedError,
    ReferenceViolationError,
    ValidationError,
)
from llmcp.factory_async import AsyncRepositories, AsyncRepositoryFactory
from llmcp.generated.models import (
    Application,
    AuditAction,
    AuditLog,
    InferenceRequest,
    InferenceStatus,
    Policy,
    User,
)
from llmcp.json_types import JsonValue
from llmcp.paging import Page
from tests.repositories.helpers_async import (
    Tenant,
    at,
    count_rows,
    make_log,
    make_org,
    make_policy,
    make_request,
    make_tenant,
    make_user,
    newest_first,
    token,
)

TABLES = ("applications", "users", "policies", "audit_logs", "inference_requests")
EMPTY_PAGE: Page[Any] = Page(items=[], next_cursor=None)


class World(NamedTuple):
    """Two organizations, each with an application and a user; B ("theirs") also
    with two policies, audit log entries and inference requests naming both."""

    mine: Tenant
    theirs: Tenant
    policies: list[Policy]
    logs: list[AuditLog]
    requests: list[InferenceRequest]


async def two_tenants(arepos: AsyncRepositories) -> World:
    mine, theirs = await make_tenant(arepos), await make_tenant(arepos)
    org, app, user = theirs
    request_id = f"req-{token()}"
    policies = [
        await make_policy(arepos, org.id, app_id=app.id, user_id=user.id, created_at=at(i))
        for i in range(2)
    ]
    logs = [
        await make_log(
            arepos, org.id, app_id=app.id, user_id=user.id, request_id=request_id, created_at=at(i)
        )
        for i in range(2)
    ]
    requests = [
        await make_request(arepos, org.id, app.id, user_id=user.id, created_at=at(i))
        for i in range(2)
    ]
    # A has rows of every kind too (under keys of its own)
    await make_policy(arepos, mine.org.id, app_id=mine.app.id, user_id=mine.user.id)
    await make_log(
        arepos, mine.org.id, app_id=mine.app.id, user_id=mine.user.id, request_id=_request_id()
    )
    await make_request(arepos, mine.org.id, mine.app.id, user_id=mine.user.id)
    return World(mine, theirs, policies, logs, requests)


async def snapshot(arepos: AsyncRepositories, world: World) -> list[Any]:
    """Every row of B, read as B."""
    org_id = world.theirs.org.id
    return [
        await arepos.applications.get_by_org_id(org_id),
        await arepos.users.get_by_org_id(org_id),
        await arepos.policies.get_by_org_id(org_id),
        await arepos.audit_logs.get_by_org_id(org_id),
        await arepos.inference_requests.get_by_org_id(org_id),
    ]


def without_id(error: BaseException, row_id: object) -> str:
    """The message of ``error`` with ``row_id`` blanked out."""
    return str(error).replace(str(row_id), "<id>")


# -- lookups: a key of B's asked for with A's id is a key that does not exist ----


class Lookup(NamedTuple):
    call: Callable[[AsyncRepositories, uuid.UUID, Any], Awaitable[Any]]
    key: Callable[[World], Any]  # the key of a row of B
    missing: Callable[[], Any]  # a key no row has


def _app(world: World) -> uuid.UUID:
    return world.theirs.app.id


def _user(world: World) -> uuid.UUID:
    return world.theirs.user.id


def _request_id() -> str:
    return f"req-{token()}"


LOOKUPS: dict[str, Lookup] = {
    "applications.get_by_id": Lookup(
        lambda r, org, key: r.applications.get_by_id(org, key), _app, uuid.uuid4
    ),
    "users.get_by_id": Lookup(lambda r, org, key: r.users.get_by_id(org, key), _user, uuid.uuid4),
    "users.get_by_email": Lookup(
        lambda r, org, key: r.users.get_by_email(org, key),
        lambda w: w.theirs.user.email,
        lambda: f"nobody-{token()}@example.com",
    ),
    "users.get_by_email.other_case": Lookup(
        lambda r, org, key: r.users.get_by_email(org, key),
        lambda w: w.theirs.user.email.upper(),
        lambda: f"NOBODY-{token()}@EXAMPLE.COM",
    ),
    "policies.get_by_id": Lookup(
        lambda r, org, key: r.policies.get_by_id(org, key), lambda w: w.policies[0].id, uuid.uuid4
    ),
    "policies.get_by_app_id": Lookup(
        lambda r, org, key: r.policies.get_by_app_id(org, key), _app, uuid.uuid4
    ),
    "policies.get_by_user_id": Lookup(
        lambda r, org, key: r.policies.get_by_user_id(org, key), _user, uuid.uuid4
    ),
    "audit_logs.get_by_id": Lookup(
        lambda r, org, key: r.audit_logs.get_by_id(org, key), lambda w: w.logs[0].id, uuid.uuid4
    ),
    "audit_logs.get_by_request_id": Lookup(
        lambda r, org, key: r.audit_logs.get_by_request_id(org, key),
        lambda w: w.logs[0].request_id,
        _request_id,
    ),
    "audit_logs.get_by_app_id": Lookup(
        lambda r, org, key: r.audit_logs.get_by_app_id(org, key), _app, uuid.uuid4
    ),
    "audit_logs.get_by_user_id": Lookup(
        lambda r, org, key: r.audit_logs.get_by_user_id(org, key), _user, uuid.uuid4
    ),
    "audit_logs.page_by_app_id": Lookup(
        lambda r, org, key: r.audit_logs.page_by_app_id(org, key), _app, uuid.uuid4
    ),
    "audit_logs.page_by_user_id": Lookup(
        lambda r, org, key: r.audit_logs.page_by_user_id(org, key), _user, uuid.uuid4
    ),
    "inference_requests.get_by_id": Lookup(
        lambda r, org, key: r.inference_requests.get_by_id(org, key),
        lambda w: w.requests[0].id,
        uuid.uuid4,
    ),
    "inference_requests.get_by_request_id": Lookup(
        lambda r, org, key: r.inference_requests.get_by_request_id(org, key),
        lambda w: w.requests[0].request_id,
        _request_id,
    ),
    "inference_requests.get_by_app_id": Lookup(
        lambda r, org, key: r.inference_requests.get_by_app_id(org, key), _app, uuid.uuid4
    ),
    "inference_requests.get_by_user_id": Lookup(
        lambda r, org, key: r.inference_requests.get_by_user_id(org, key), _user, uuid.uuid4
    ),
    "inference_requests.page_by_app_id": Lookup(
        lambda r, org, key: r.inference_requests.page_by_app_id(org, key), _app, uuid.uuid4
    ),
    "inference_requests.page_by_user_id": Lookup(
        lambda r, org, key: r.inference_requests.page_by_user_id(org, key), _user, uuid.uuid4
    ),
}


@pytest.mark.parametrize("name", list(LOOKUPS))
async def test_another_orgs_row_is_missing(shared_config: DatabaseConfig, name: str) -> None:
    lookup = LOOKUPS[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        world = await two_tenants(arepos)
        key = lookup.key(world)
        # B finds its row ...
        assert await lookup.call(arepos, world.theirs.org.id, key) not in (None, [], EMPTY_PAGE)
        # ... A gets what it gets for a key that does not exist
        missing = await lookup.call(arepos, world.mine.org.id, lookup.missing())
        assert missing in (None, [], EMPTY_PAGE)
        assert await lookup.call(arepos, world.mine.org.id, key) == missing
        # and so does an organization that does not exist
        assert await lookup.call(arepos, uuid.uuid4(), key) == missing


PAGES: dict[
    str, Callable[[AsyncRepositories, uuid.UUID, uuid.UUID, str | None], Awaitable[Any]]
] = {
    "audit_logs.page_by_app_id": lambda r, org, key, cursor: r.audit_logs.page_by_app_id(
        org, key, 1, cursor
    ),
    "audit_logs.page_by_user_id": lambda r, org, key, cursor: r.audit_logs.page_by_user_id(
        org, key, 1, cursor
    ),
    "inference_requests.page_by_app_id": lambda r, org, key, cursor: (
        r.inference_requests.page_by_app_id(org, key, 1, cursor)
    ),
    "inference_requests.page_by_user_id": lambda r, org, key, cursor: (
        r.inference_requests.page_by_user_id(org, key, 1, cursor)
    ),
}


@pytest.mark.parametrize("name", list(PAGES))
async def test_a_cursor_of_another_org_is_an_invalid_cursor(
    shared_config: DatabaseConfig, name: str
) -> None:
    page = PAGES[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        world = await two_tenants(arepos)
        key = _user(world) if name.endswith("user_id") else _app(world)
        first = await page(arepos, world.theirs.org.id, key, None)
        assert first.next_cursor is not None
        assert (await page(arepos, world.theirs.org.id, key, first.next_cursor)).items
        # with A's id the cursor is refused as a forged one would be, not answered
        with pytest.raises(ValidationError, match=r"^invalid cursor$"):
            await page(arepos, world.mine.org.id, key, first.next_cursor)
        with pytest.raises(ValidationError, match=r"^invalid cursor$"):
            await page(arepos, world.mine.org.id, key, first.next_cursor[::-1])


# -- deletes and updates: not found, and nothing of B changes --------------------

Delete = Callable[[AsyncRepositories, uuid.UUID, uuid.UUID], Awaitable[None]]

DELETES: dict[str, tuple[Delete, Callable[[World], uuid.UUID]]] = {
    "applications.delete": (lambda r, org, key: r.applications.delete(org, key), _app),
    "users.delete": (lambda r, org, key: r.users.delete(org, key), _user),
    "policies.delete": (
        lambda r, org, key: r.policies.delete(org, key),
        lambda w: w.policies[0].id,
    ),
}


@pytest.mark.parametrize("name", list(DELETES))
async def test_deleting_another_orgs_row_is_not_found(
    shared_config: DatabaseConfig, name: str
) -> None:
    delete, pick = DELETES[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        world = await two_tenants(arepos)
        before = await snapshot(arepos, world)
        key, missing_id = pick(world), uuid.uuid4()
        with pytest.raises(NotFoundError) as missing:
            await delete(arepos, world.mine.org.id, missing_id)
        with pytest.raises(NotFoundError) as foreign:
            await delete(arepos, world.mine.org.id, key)
        assert type(foreign.value) is type(missing.value)
        assert without_id(foreign.value, key) == without_id(missing.value, missing_id)
        with pytest.raises(NotFoundError) as nowhere:
            await delete(arepos, uuid.uuid4(), key)
        assert str(nowhere.value) == str(foreign.value)
        assert await snapshot(arepos, world) == before


class Update(NamedTuple):
    call: Callable[[AsyncRepositories, Any], Awaitable[Any]]
    row: Callable[[World], Any]
    changes: dict[str, Any]


UPDATES: dict[str, Update] = {
    "applications.update": Update(
        lambda r, row: r.applications.update(row), lambda w: w.theirs.app, {"name": "hijacked"}
    ),
    "users.update": Update(
        lambda r, row: r.users.update(row),
        lambda w: w.theirs.user,
        {"display_name": "hijacked", "email": "hijacked@example.com"},
    ),
    "policies.update": Update(
        lambda r, row: r.policies.update(row),
        lambda w: w.policies[0],
        {"name": "hijacked", "enabled": False, "priority": 99},
    ),
    "inference_requests.update": Update(
        lambda r, row: r.inference_requests.update(row),
        lambda w: w.requests[0],
        {"status": InferenceStatus.COMPLETED, "prompt_tokens": 7, "latency_ms": 1},
    ),
}


@pytest.mark.parametrize("name", list(UPDATES))
async def test_updating_another_orgs_row_is_not_found(
    shared_config: DatabaseConfig, name: str
) -> None:
    update = UPDATES[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        world = await two_tenants(arepos)
        before = await snapshot(arepos, world)
        row = update.row(world)
        mine = world.mine.org.id
        missing_id = uuid.uuid4()
        with pytest.raises(NotFoundError) as missing:
            await update.call(
                arepos, msgspec.structs.replace(row, org_id=mine, id=missing_id, **update.changes)
            )
        with pytest.raises(NotFoundError) as foreign:
            await update.call(arepos, msgspec.structs.replace(row, org_id=mine, **update.changes))
        assert type(foreign.value) is type(missing.value)
        assert without_id(foreign.value, row.id) == without_id(missing.value, missing_id)
        # a stale version does not tell the row exists (no version ConflictError)
        with pytest.raises(NotFoundError) as stale:
            await update.call(
                arepos,
                msgspec.structs.replace(
                    row, org_id=mine, version=row.version + 5, **update.changes
                ),
            )
        assert str(stale.value) == str(foreign.value)
        assert await snapshot(arepos, world) == before
        # B itself can still make the change (the changes are valid ones)
        changed = await update.call(arepos, msgspec.structs.replace(row, **update.changes))
        assert changed.version == row.version + 1 and changed.org_id == row.org_id


KINDS = {
    "applications.update": Application,
    "users.update": User,
    "policies.update": Policy,
    "inference_requests.update": InferenceRequest,
}


@pytest.mark.parametrize("name", list(UPDATES))
async def test_an_update_cannot_move_a_row_to_another_org(
    shared_config: DatabaseConfig, name: str
) -> None:
    """The ``org_id`` of a row is where it is looked for, never a value that is stored."""
    update, kind = UPDATES[name], KINDS[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        world = await two_tenants(arepos)
        row = update.row(world)
        assert isinstance(row, kind)
        with pytest.raises(NotFoundError):
            await update.call(arepos, msgspec.structs.replace(row, org_id=world.mine.org.id))
        assert await count_rows(afactory.transaction_manager(), name.split(".")[0], row.org_id)
        lookup = LOOKUPS[f"{name.split('.')[0]}.get_by_id"]
        assert await lookup.call(arepos, world.mine.org.id, row.id) is None
        assert await lookup.call(arepos, row.org_id, row.id) == row


# -- references: naming B's application or user is refused as naming none --------


@pytest.mark.parametrize("field", ["app_id", "user_id"])
@pytest.mark.parametrize("table", ["policies", "audit_logs", "inference_requests"])
async def test_naming_another_orgs_app_or_user_is_refused_as_a_missing_one(
    shared_config: DatabaseConfig, table: str, field: str
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        world = await two_tenants(arepos)
        mine = world.mine

        async def make(reference: uuid.UUID) -> object:
            fields = {field: reference}
            if table == "policies":
                return await make_policy(arepos, mine.org.id, config=None, **fields)
            if table == "audit_logs":
                return await make_log(arepos, mine.org.id, **fields)
            return await make_request(arepos, mine.org.id, **({"app_id": mine.app.id} | fields))

        foreign_id = {"app_id": _app(world), "user_id": _user(world)}[field]
        with pytest.raises(ReferenceViolationError) as missing:
            await make(uuid.uuid4())
        with pytest.raises(ReferenceViolationError) as foreign:
            await make(foreign_id)
        assert type(foreign.value) is type(missing.value)
        assert foreign.value.constraint == missing.value.constraint
        assert str(foreign.value) == str(missing.value)
        assert str(foreign_id) not in str(foreign.value)


# -- per-organization keys: a conflict names the field, never the other tenant ----


@pytest.mark.parametrize("field", ["email", "request_id"])
async def test_a_conflict_on_a_per_org_key_names_the_field(
    shared_config: DatabaseConfig, field: str
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        with pytest.raises(ConflictError) as caught:
            if field == "email":
                await make_user(arepos, org.id, email=user.email)
            else:
                row = await make_request(arepos, org.id, app.id)
                await make_request(arepos, org.id, app.id, request_id=row.request_id)
        operation = "users.create" if field == "email" else "inference_requests.create"
        assert str(caught.value).startswith(f"{operation}: {field} already exists (")


# -- the audit trail is append-only ----------------------------------------------


class Boom(Exception):
    """Raised where a refused statement went through, so that its block rolls back."""


TAMPERING = {
    "update": ("UPDATE audit_logs SET resource_type = 'tampered' WHERE id = %s", True),
    "update_all": ("UPDATE audit_logs SET details = '{}'", False),
    "delete": ("DELETE FROM audit_logs WHERE id = %s", True),
    "delete_all": ("DELETE FROM audit_logs", False),
    "truncate": ("TRUNCATE audit_logs", False),
}


@pytest.mark.parametrize("name", list(TAMPERING))
async def test_audit_logs_cannot_be_changed_through_llmcps_connection(
    shared_config: DatabaseConfig, name: str
) -> None:
    sql, by_id = TAMPERING[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        org = await make_org(arepos)
        log = await make_log(arepos, org.id)
        # in a transaction that never commits: were the statement let through, the
        # shared database would keep every entry all the same
        with pytest.raises(LlmcpError) as caught:
            block = tm.transaction()
            async with block:
                async with tm.connection(operation="audit_logs.tamper") as conn:
                    await conn.execute(sql, (log.id,) if by_id else None)
                raise Boom
        assert not isinstance(caught.value, Boom | psycopg.Error)
        assert isinstance(caught.value.__cause__, psycopg.errors.InsufficientPrivilege)
        assert str(caught.value).startswith("audit_logs.tamper: ")
        assert "42501" in str(caught.value)
        assert await arepos.audit_logs.get_by_id(org.id, log.id) == log
        assert await arepos.audit_logs.get_by_org_id(org.id) == [log]


@pytest.mark.parametrize("name", list(TAMPERING))
async def test_audit_logs_cannot_be_changed_through_a_plain_psycopg_connection(
    shared_config: DatabaseConfig, shared_owner_config: DatabaseConfig, name: str
) -> None:
    """Even the owner (here a superuser), whatever its privileges: a trigger refuses.
    (The application role has no such privilege in the first place: refused too.)"""
    sql, by_id = TAMPERING[name]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        log = await make_log(arepos, org.id)
    async with await psycopg.AsyncConnection.connect(shared_owner_config.url) as conn:
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege, match=r"append-only|permission denied"
        ):
            await conn.execute(sql, (log.id,) if by_id else None)
        await conn.rollback()
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        assert await afactory.repositories().audit_logs.get_by_org_id(org.id) == [log]


async def test_a_delete_by_hand_needs_a_reason_and_is_recorded_as_a_purge(
    shared_config: DatabaseConfig, shared_owner_config: DatabaseConfig
) -> None:
    """The owner may delete by hand only with a reason, and a trigger records it as
    a purge whoever deletes: no entry disappears without a trace."""
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        log = await make_log(arepos, org.id)
    async with await psycopg.AsyncConnection.connect(shared_owner_config.url) as conn:
        try:
            await conn.execute("SET LOCAL llmcp.audit_purge = 'on'")  # not the setting
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute("DELETE FROM audit_logs WHERE id = %s", (log.id,))
            await conn.rollback()
            await conn.execute("SET LOCAL llmcp.audit_purge_reason = 'by hand'")
            await conn.execute("DELETE FROM audit_logs WHERE id = %s", (log.id,))
            cur = await conn.execute(
                "SELECT details->>'purged', details->>'reason' FROM audit_logs "
                "WHERE org_id = %s AND action = 'audit_logs_purged'",
                (org.id,),
            )
            assert await cur.fetchall() == [("1", "by hand")]
        finally:
            await conn.rollback()  # never commit a delete that went through


async def test_the_service_can_neither_purge_nor_forge_a_purge_entry(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        log = await make_log(arepos, org.id, created_at=at(0))
        with pytest.raises(PermissionDeniedError):
            await arepos.audit_logs.purge(org.id, at(10), "retention")
        for named in (org.id, uuid.uuid4()):  # an organization that exists, or none
            with pytest.raises(PermissionDeniedError):
                await make_log(
                    arepos,
                    named,
                    action=AuditAction.AUDIT_LOGS_PURGED,
                    resource_type="audit_logs",
                    details={"purged": 0, "by": "someone else", "reason": "forged"},
                )
        assert await arepos.audit_logs.get_by_org_id(org.id) == [log]


# -- purge: the one way to remove entries, recorded as an entry of its own -------


def purge_details(log: AuditLog) -> dict[str, JsonValue]:
    """The details of a purge's own entry: before, purged (a count), by (a role), reason."""
    assert log.action is AuditAction.AUDIT_LOGS_PURGED and log.resource_type == "audit_logs"
    assert isinstance(log.details, dict)
    assert set(log.details) == {"before", "purged", "oldest", "newest", "by", "reason"}
    return log.details


async def test_purge_deletes_old_entries_keeps_newer_ones_and_records_itself(
    shared_owner_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_owner_config) as afactory:
        arepos = afactory.repositories()
        world = await two_tenants(arepos)
        org, app, user = world.mine
        old = [await make_log(arepos, org.id, app_id=app.id, created_at=at(i)) for i in range(3)]
        edge = await make_log(arepos, org.id, user_id=user.id, created_at=at(100))
        new = await make_log(arepos, org.id, created_at=at(200))
        kept = [
            log
            for log in await arepos.audit_logs.get_by_org_id(org.id)
            if log.id not in {row.id for row in old}
        ]
        assert edge in kept and new in kept
        theirs = await arepos.audit_logs.get_by_org_id(world.theirs.org.id)
        assert any(log.created_at < at(100) for log in theirs)

        purged = await arepos.audit_logs.purge(org.id, at(100), "retention: 100 seconds")

        assert purged == 3  # created_at < before: the entry at `before` itself stays
        after = await arepos.audit_logs.get_by_org_id(org.id)
        entries = await arepos.audit_logs.get_by_action(org.id, AuditAction.AUDIT_LOGS_PURGED)
        assert len(entries) == 1
        entry = entries[0]
        assert after == newest_first([*kept, entry])
        for log in old:
            assert await arepos.audit_logs.get_by_id(org.id, log.id) is None
        assert (entry.org_id, entry.app_id, entry.user_id) == (org.id, None, None)
        assert (entry.resource_type, entry.resource_id) == ("audit_logs", None)
        details = purge_details(entry)
        assert (details["purged"], details["reason"]) == (3, "retention: 100 seconds")
        assert isinstance(details["by"], str) and details["by"]  # the role that purged
        assert details["before"] is not None
        assert entry.created_at > at(200)  # written now
        # another organization's entries are untouched, old ones included
        assert await arepos.audit_logs.get_by_org_id(world.theirs.org.id) == theirs

        # nothing left to purge: 0, and the purge is recorded all the same
        assert await arepos.audit_logs.purge(org.id, at(100), "again") == 0
        entries = await arepos.audit_logs.get_by_action(org.id, AuditAction.AUDIT_LOGS_PURGED)
        assert [purge_details(log)["purged"] for log in entries] == [0, 3]
        # a later purge keeps the records of the earlier ones
        later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
        assert await arepos.audit_logs.purge(org.id, later, "erasure") == len(kept)
        left = await arepos.audit_logs.get_by_org_id(org.id)
        assert [log.action for log in left] == [AuditAction.AUDIT_LOGS_PURGED] * 3
        assert [(purge_details(log)["purged"], purge_details(log)["reason"]) for log in left] == [
            (len(kept), "erasure"),
            (0, "again"),
            (3, "retention: 100 seconds"),
        ]


async def test_purge_of_a_deleted_organization(shared_owner_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_owner_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        world = await two_tenants(arepos)
        org = world.theirs.org
        logs = await arepos.audit_logs.get_by_org_id(org.id)
        assert len(logs) == 2
        await arepos.organizations.delete(org.id)
        assert await arepos.audit_logs.get_by_org_id(org.id) == logs  # the trail outlived it

        assert await arepos.audit_logs.purge(org.id, at(1), "keep the newest") == 1
        left = await arepos.audit_logs.get_by_org_id(org.id)
        assert [log.action for log in left] == [AuditAction.AUDIT_LOGS_PURGED, logs[0].action]
        assert left[1] == logs[0]  # newest first: the one at at(1) stays

        later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
        assert await arepos.audit_logs.purge(org.id, later, "legal erasure") == 1
        entry, first = await arepos.audit_logs.get_by_org_id(org.id)
        assert (entry.action, first.action) == (AuditAction.AUDIT_LOGS_PURGED,) * 2
        details = purge_details(entry)
        assert (details["purged"], details["reason"]) == (1, "legal erasure")
        assert [await count_rows(tm, table, org.id) for table in TABLES] == [0, 0, 0, 2, 0]
        # only the purge may name an organization that is gone
        with pytest.raises(ReferenceViolationError):
            await make_log(arepos, org.id)


async def test_purge_in_a_transaction_that_rolls_back_purges_nothing(
    shared_owner_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_owner_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        logs = [await make_log(arepos, org.id, created_at=at(i)) for i in range(2)]
        with pytest.raises(Boom):
            block = afactory.transaction_manager().transaction()
            async with block:
                assert await arepos.audit_logs.purge(org.id, at(10), "oops") == 2
                raise Boom
        assert await arepos.audit_logs.get_by_org_id(org.id) == newest_first(logs)


@pytest.mark.parametrize(
    ("before", "reason", "word"),
    [
        (at(0).replace(tzinfo=None), "retention", "timezone-aware"),
        ("2024-01-01", "retention", "before"),
        (at(0), "", "reason"),
        (at(0), "r" * 1001, "reason"),
        (at(0), "nul\x00", "reason"),
    ],
)
async def test_purge_checks_its_arguments(
    shared_config: DatabaseConfig, before: Any, reason: str, word: str
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        log = await make_log(arepos, org.id, created_at=at(-1))
        with pytest.raises(ValidationError, match=word):
            await arepos.audit_logs.purge(org.id, before, reason)
        with pytest.raises(ValidationError, match="org_id"):
            await arepos.audit_logs.purge("acme", at(0), "retention")  # type: ignore[arg-type]
        assert await arepos.audit_logs.get_by_org_id(org.id) == [log]
