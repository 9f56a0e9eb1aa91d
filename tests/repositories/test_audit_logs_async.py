"""Audit logs through the repository: insert, look up, offset listings (keyset: test_paging)."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import uuid
from typing import Any

import msgspec
import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import ReferenceViolationError, ValidationError
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import AuditAction
from llmcp.inputs import NewAuditLog
from llmcp.json_types import JsonValue
from tests.repositories.helpers_async import (
    at,
    make_log,
    make_org,
    make_tenant,
    newest_first,
    token,
)


async def test_insert_stores_every_field(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        resource, request = uuid.uuid4(), f"req-{token()}"
        details: dict[str, JsonValue] = {
            "before": {"name": "a"},
            "after": [1, 2.5, None, True, "ü"],
            "n": 2**53,
        }
        log = await arepos.audit_logs.insert(
            NewAuditLog(
                org_id=org.id,
                app_id=app.id,
                user_id=user.id,
                action=AuditAction.POLICY_UPDATED,
                resource_type="policy",
                resource_id=resource,
                request_id=request,
                details=details,
                ip_address="2001:db8::1",
                user_agent="curl/8.0",
                created_at=at(0),
            )
        )
        assert (log.org_id, log.app_id, log.user_id, log.action) == (
            org.id,
            app.id,
            user.id,
            AuditAction.POLICY_UPDATED,
        )
        assert (log.resource_type, log.resource_id, log.request_id) == ("policy", resource, request)
        assert log.details == details
        assert log.ip_address == "2001:db8::1"  # text (llmcp.adapter)
        assert (log.user_agent, log.created_at) == ("curl/8.0", at(0))
        assert await arepos.audit_logs.get_by_id(org.id, log.id) == log


async def test_minimal_log_and_text_forms(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        log = await make_log(arepos, org.id, action="user_created", ip_address="192.0.2.7")
        assert log.action is AuditAction.USER_CREATED
        assert log.ip_address == "192.0.2.7"
        assert (log.app_id, log.user_id, log.resource_id, log.request_id) == (None,) * 4
        assert log.details == {} and log.user_agent is None
        assert await arepos.audit_logs.get_by_id(org.id, log.id) == log
        assert await arepos.audit_logs.get_by_id(org.id, uuid.uuid4()) is None


async def test_get_by_request_id_is_oldest_first_in_its_org(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, other = await make_org(arepos), await make_org(arepos)
        request = f"req-{token()}"
        logs = [
            await make_log(arepos, org.id, request_id=request, created_at=at(-(i // 2)))
            for i in range(5)
        ]
        theirs = await make_log(arepos, other.id, request_id=request, created_at=at(-7))
        await make_log(arepos, org.id, request_id=f"req-{token()}")
        by_request = arepos.audit_logs.get_by_request_id
        assert await by_request(org.id, request) == newest_first(logs)[::-1]
        assert await by_request(other.id, request) == [theirs]
        assert await by_request(org.id, f"req-{token()}") == []
        assert await by_request(uuid.uuid4(), request) == []


async def test_listings_by_org_app_user_action_and_range(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        stranger = await make_tenant(arepos)
        plain = await make_log(arepos, org.id, created_at=at(0))
        by_app = await make_log(arepos, org.id, app_id=app.id, created_at=at(10))
        by_user = await make_log(
            arepos, org.id, user_id=user.id, action=AuditAction.USER_UPDATED, created_at=at(20)
        )
        both = await make_log(
            arepos,
            org.id,
            app_id=app.id,
            user_id=user.id,
            action=AuditAction.INFERENCE_REJECTED,
            created_at=at(30),
        )
        await make_log(arepos, stranger.org.id, app_id=stranger.app.id, created_at=at(10))
        logs = arepos.audit_logs

        assert await logs.get_by_org_id(org.id) == [both, by_user, by_app, plain]
        assert await logs.get_by_app_id(org.id, app.id) == [both, by_app]
        assert await logs.get_by_user_id(org.id, user.id) == [both, by_user]
        assert await logs.get_by_action(org.id, AuditAction.POLICY_CREATED) == [by_app, plain]
        assert await logs.get_by_action(org.id, "inference_rejected") == [both]  # type: ignore[arg-type]
        assert await logs.get_by_action(org.id, AuditAction.ORGANIZATION_DELETED) == []
        # [start, end): start included, end excluded
        assert await logs.get_by_date_range(org.id, at(10), at(30)) == [by_user, by_app]
        assert await logs.get_by_date_range(org.id, at(0), at(31)) == [both, by_user, by_app, plain]
        assert await logs.get_by_date_range(org.id, at(10), at(10)) == []
        assert await logs.get_by_date_range(stranger.org.id, at(0), at(31)) != []
        assert await logs.get_by_org_id(uuid.uuid4()) == []
        for empty in (logs.get_by_app_id, logs.get_by_user_id):
            assert await empty(org.id, uuid.uuid4()) == []
        assert await logs.get_by_app_id(org.id, stranger.app.id) == []
        assert await logs.get_by_app_id(stranger.org.id, stranger.app.id) != []


async def test_date_range_is_an_instant_whatever_the_offset(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        log = await make_log(arepos, org.id, created_at=at(0))
        start = at(0).astimezone(datetime.timezone(datetime.timedelta(hours=-7)))
        end = at(1).astimezone(datetime.timezone(datetime.timedelta(hours=9, minutes=30)))
        assert log.created_at == start
        assert await arepos.audit_logs.get_by_date_range(org.id, start, end) == [log]
        assert await arepos.audit_logs.get_by_date_range(org.id, end, at(2)) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"resource_type": ""}, "resource_type"),
        ({"resource_type": "r" * 101}, "resource_type"),
        ({"request_id": "r" * 201}, "request_id"),
        ({"request_id": ""}, "request_id"),
        ({"user_agent": "u" * 1001}, "user_agent"),
        ({"action": "made_up"}, "action"),
        ({"ip_address": "999.1.1.1"}, "ip_address"),
        ({"details": ["not", "an", "object"]}, "details"),
        ({"details": {"bad": float("nan")}}, "details"),
        ({"details": {"nul": "a\x00b"}}, "details"),
        ({"details": {1: "int key"}}, "details"),
        ({"resource_id": "nope"}, "resource_id"),
    ],
)
async def test_invalid_fields_are_rejected(
    shared_config: DatabaseConfig, fields: dict[str, Any], field: str
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        with pytest.raises(ValidationError, match=field):
            await make_log(arepos, org.id, **fields)
        assert await arepos.audit_logs.get_by_org_id(org.id) == []


@pytest.mark.parametrize("field", ["app_id", "user_id"])
async def test_app_or_user_of_another_org_is_a_reference_violation(
    shared_config: DatabaseConfig, field: str
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        stranger = await make_tenant(arepos)
        foreign = {"app_id": stranger.app.id, "user_id": stranger.user.id}[field]
        with pytest.raises(ReferenceViolationError, match=field) as caught:
            await make_log(arepos, org.id, **{field: foreign})
        assert caught.value.constraint == f"audit_logs_{field.removesuffix('_id')}_fkey"
        assert await arepos.audit_logs.get_by_org_id(org.id) == []


async def test_date_range_checks_its_bounds(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        logs = afactory.repositories().audit_logs
        org_id = uuid.uuid4()
        with pytest.raises(ValidationError, match="start"):
            await logs.get_by_date_range(org_id, at(1), at(0))
        with pytest.raises(ValidationError, match="timezone-aware"):
            await logs.get_by_date_range(org_id, at(0).replace(tzinfo=None), at(1))
        with pytest.raises(ValidationError, match="end"):
            await logs.page_by_date_range(org_id, at(0), at(1).replace(tzinfo=None))


class Boom(Exception):
    pass


async def test_async_insert_stores_the_row_once_flushed(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        request = f"req-{token()}"
        log_id = await arepos.audit_logs.async_insert(
            NewAuditLog(
                org_id=org.id,
                app_id=app.id,
                user_id=user.id,
                action=AuditAction.INFERENCE_COMPLETED,
                resource_type="inference",
                request_id=request,
                details={"tokens": [1, 2], "model": "gpt-4o"},
                ip_address=ipaddress.ip_address("10.1.2.3"),  # type: ignore[arg-type]  # an object too
                user_agent="sdk/1.0",
                created_at=at(0),
            )
        )
        await afactory.audit_writer.flush()
        log = await arepos.audit_logs.get_by_id(org.id, log_id)
        assert log is not None
        assert (log.org_id, log.app_id, log.user_id, log.action, log.request_id) == (
            org.id,
            app.id,
            user.id,
            AuditAction.INFERENCE_COMPLETED,
            request,
        )
        assert log.details == {"tokens": [1, 2], "model": "gpt-4o"}
        assert (log.ip_address, log.user_agent, log.created_at) == (
            "10.1.2.3",
            "sdk/1.0",
            at(0),
        )
        assert await arepos.audit_logs.get_by_request_id(org.id, request) == [log]

        # queued rows are not part of the caller's transaction
        given = uuid.uuid4()
        with pytest.raises(Boom):
            block = afactory.transaction_manager().transaction()
            async with block:
                assert await make_log(arepos, org.id, id=given) is not None
                queued = await arepos.audit_logs.async_insert(
                    NewAuditLog(
                        org_id=org.id, action=AuditAction.USER_CREATED, resource_type="user"
                    )
                )
                raise Boom
        await afactory.audit_writer.flush()
        assert await arepos.audit_logs.get_by_id(org.id, given) is None
        assert await arepos.audit_logs.get_by_id(org.id, queued) is not None

        # bad input is refused at once
        with pytest.raises(ValidationError, match="created_at"):
            await arepos.audit_logs.async_insert(
                NewAuditLog(
                    org_id=org.id,
                    action=AuditAction.USER_CREATED,
                    resource_type="user",
                    created_at=at(0).replace(tzinfo=None),
                )
            )
        assert afactory.audit_writer.stats.dropped == 0


async def test_closing_the_factory_stores_every_queued_row(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        org = await make_org(afactory.repositories())
        ids = [
            await afactory.repositories().audit_logs.async_insert(
                NewAuditLog(org_id=org.id, action=AuditAction.USER_UPDATED, resource_type="user")
            )
            for _ in range(25)
        ]
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        logs = await afactory.repositories().audit_logs.get_by_org_id(org.id)
        assert sorted(log.id for log in logs) == sorted(ids)


def _nested(depth: int) -> dict[str, JsonValue]:
    inner: dict[str, JsonValue] = {}
    outer = inner
    for _ in range(depth):
        inner = {"x": inner}
    outer["leaf"] = 1
    return inner


UNSTORABLE: list[tuple[dict[str, Any], str]] = [
    ({"n": 10**4301}, "more than 4300 digits"),  # the JSON encoder itself would raise
    ({"n": -(10**4300)}, "more than 4300 digits"),
    ({"n": [1, {"deep": 10**5000}]}, "more than 4300 digits"),
    ({"x": float("nan")}, "NaN or infinity"),
    ({"x": [float("-inf")]}, "NaN or infinity"),
    (_nested(9), "nested more than 8 levels"),
    ({"blob": "x" * 9000}, "more than 8192 bytes"),
]


@pytest.mark.parametrize(("details", "reason"), UNSTORABLE)
async def test_details_the_database_cannot_store_are_refused_at_the_call(
    shared_config: DatabaseConfig, details: dict[str, Any], reason: str
) -> None:
    config = dataclasses.replace(shared_config, audit_details_max_bytes=8192, json_max_depth=8)
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        new = NewAuditLog(
            org_id=org.id, action=AuditAction.USER_CREATED, resource_type="user", details=details
        )
        with pytest.raises(ValidationError, match=reason):
            await arepos.audit_logs.insert(new)
        with pytest.raises(ValidationError, match=reason):
            await arepos.audit_logs.async_insert(new)
        stats = afactory.audit_writer.stats
        assert (stats.accepted, stats.queue_depth) == (0, 0), "an unstorable row was accepted"
        # the limits themselves are storable, by both paths
        edge = {"n": 10**4300 - 1, "deep": _nested(6), "pad": "y" * 3000}
        ok = msgspec.structs.replace(new, details=edge)
        assert (await arepos.audit_logs.insert(ok)).details == edge
        queued = await arepos.audit_logs.async_insert(ok)
        await afactory.audit_writer.flush(timeout=30)
        stored = await arepos.audit_logs.get_by_id(org.id, queued)
        assert stored is not None and stored.details == edge
