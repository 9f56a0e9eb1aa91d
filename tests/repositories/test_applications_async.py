"""Applications through the repository: create, look up, list, update, delete."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import ConflictError, NotFoundError, ReferenceViolationError, ValidationError
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.inputs import NewApplication
from tests.repositories.helpers_async import at, key_hash, make_app, make_org, newest_first


async def test_create_and_get(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        digest = key_hash()
        app = await arepos.applications.create(
            NewApplication(
                org_id=org.id, name="chat", description="the chat bot", api_key_hash=digest
            )
        )
        assert (app.org_id, app.name, app.description, app.api_key_hash) == (
            org.id,
            "chat",
            "the chat bot",
            digest,
        )
        assert app.version == 1 and app.created_at == app.updated_at
        assert await arepos.applications.get_by_id(org.id, app.id) == app
        assert await arepos.applications.get_by_api_key_hash(digest) == app
        assert await arepos.applications.get_by_id(org.id, uuid.uuid4()) is None
        assert await arepos.applications.get_by_api_key_hash(key_hash()) is None
        assert await arepos.applications.get_by_api_key_hash(digest.upper()) is None


async def test_description_is_optional_and_may_be_empty(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        assert (await make_app(arepos, org.id)).description is None
        assert (await make_app(arepos, org.id, description="")).description == ""
        long = await make_app(arepos, org.id, description="d" * 2000)
        assert await arepos.applications.get_by_id(org.id, long.id) == long


async def test_get_by_org_id_lists_only_that_org_newest_first(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, other = await make_org(arepos), await make_org(arepos)
        apps = [await make_app(arepos, org.id, created_at=at(i // 3)) for i in range(5)]
        await make_app(arepos, other.id)
        assert await arepos.applications.get_by_org_id(org.id) == newest_first(apps)
        assert await arepos.applications.get_by_org_id(uuid.uuid4()) == []


async def test_update_is_optimistic(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        app = await make_app(arepos, (await make_org(arepos)).id, created_at=at(0))
        digest = key_hash()
        updated = await arepos.applications.update(
            msgspec.structs.replace(
                app, name="renamed", description="now described", api_key_hash=digest
            )
        )
        assert (updated.name, updated.description, updated.api_key_hash) == (
            "renamed",
            "now described",
            digest,
        )
        assert (updated.version, updated.org_id, updated.created_at) == (
            2,
            app.org_id,
            app.created_at,
        )
        assert updated.updated_at > app.updated_at
        assert await arepos.applications.get_by_api_key_hash(app.api_key_hash) is None
        assert await arepos.applications.get_by_api_key_hash(digest) == updated

        with pytest.raises(ConflictError) as caught:
            await arepos.applications.update(msgspec.structs.replace(app, name="stale"))
        assert caught.value.constraint == "version"
        assert await arepos.applications.get_by_id(app.org_id, app.id) == updated


async def test_delete_and_missing_rows(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        app, keep = await make_app(arepos, org.id), await make_app(arepos, org.id)
        await arepos.applications.delete(org.id, app.id)
        assert await arepos.applications.get_by_id(org.id, app.id) is None
        assert await arepos.applications.get_by_org_id(org.id) == [keep]
        with pytest.raises(NotFoundError):
            await arepos.applications.delete(org.id, app.id)
        with pytest.raises(NotFoundError):
            await arepos.applications.update(msgspec.structs.replace(app, name="ghost"))


async def test_duplicate_key_hash_is_a_conflict(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, other = await make_org(arepos), await make_org(arepos)
        app = await make_app(arepos, org.id)
        with pytest.raises(ConflictError) as caught:
            await make_app(arepos, other.id, api_key_hash=app.api_key_hash)
        assert caught.value.constraint == "applications_api_key_hash_key"
        assert "api_key_hash already exists" in str(caught.value)
        assert app.api_key_hash not in str(caught.value)  # the value is never quoted
        assert await arepos.applications.get_by_org_id(other.id) == []


async def test_unknown_org_is_a_reference_violation(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        with pytest.raises(ReferenceViolationError) as caught:
            await make_app(arepos, uuid.uuid4())
        assert caught.value.constraint == "applications_org_id_fkey"
        assert "org_id" in str(caught.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"api_key_hash": "A" * 64},
        {"api_key_hash": "ab" * 31},
        {"name": ""},
        {"name": "n" * 201},
        {"description": "d" * 2001},
        {"description": "bell\x07"},
    ],
)
async def test_invalid_fields_are_rejected(
    shared_config: DatabaseConfig, fields: dict[str, str]
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        with pytest.raises(ValidationError, match=next(iter(fields))):
            await make_app(arepos, org.id, **fields)
        app = await make_app(arepos, org.id)
        with pytest.raises(ValidationError, match=next(iter(fields))):
            await arepos.applications.update(msgspec.structs.replace(app, **fields))
        assert await arepos.applications.get_by_org_id(org.id) == [app]
