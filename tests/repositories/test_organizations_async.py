"""Organizations through the repository: create, look up, list, update, delete."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import ConflictError, NotFoundError, ValidationError
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.inputs import NewOrganization
from tests.repositories.helpers_async import at, make_org, newest_first, token


async def test_create_returns_the_stored_row(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org_id, slug = uuid.uuid4(), f"acme-{token()}"
        org = await arepos.organizations.create(
            NewOrganization(id=org_id, name="Acme", slug=slug, created_at=at(0))
        )
        assert (org.id, org.name, org.slug, org.version) == (org_id, "Acme", slug, 1)
        assert org.created_at == org.updated_at == at(0)
        assert await arepos.organizations.get_by_id(org.id) == org


async def test_create_without_id_or_time_lets_them_be_chosen(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        first, second = await make_org(arepos), await make_org(arepos)
        assert first.id != second.id
        assert first.created_at.tzinfo is not None
        assert first.created_at > at(0)


async def test_get_by_id_and_slug(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        await make_org(arepos)
        assert await arepos.organizations.get_by_id(org.id) == org
        assert await arepos.organizations.get_by_id(str(org.id)) == org  # type: ignore[arg-type]
        assert await arepos.organizations.get_by_slug(org.slug) == org
        assert await arepos.organizations.get_by_id(uuid.uuid4()) is None
        assert await arepos.organizations.get_by_slug(f"missing-{token()}") is None
        assert await arepos.organizations.get_by_slug(org.slug.upper()) is None


async def test_list_pages_newest_first(db_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(db_config) as afactory:
        arepos = afactory.repositories()
        assert await arepos.organizations.list() == []
        # pairs share a creation time: the id breaks the tie
        orgs = [await make_org(arepos, created_at=at(i // 2)) for i in range(7)]
        everything = await arepos.organizations.list(limit=1000)
        assert everything == newest_first(orgs)
        assert await arepos.organizations.list() == everything  # default limit 100
        assert await arepos.organizations.list(limit=1) == everything[:1]
        pages = [await arepos.organizations.list(limit=3, offset=o) for o in (0, 3, 6)]
        assert [len(page) for page in pages] == [3, 3, 1]
        assert [org for page in pages for org in page] == everything
        assert await arepos.organizations.list(limit=3, offset=7) == []
        assert await arepos.organizations.list(limit=1000, offset=10**9) == []


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (1001, 0), (-1, 0), (10, -1)])
async def test_list_rejects_bad_paging(
    shared_config: DatabaseConfig, limit: int, offset: int
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        organizations = afactory.repositories().organizations
        with pytest.raises(ValidationError, match=r"^(limit|offset) must be between"):
            await organizations.list(limit=limit, offset=offset)


async def test_update_bumps_version_and_updated_at(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos, created_at=at(0))
        new_slug = f"renamed-{token()}"
        updated = await arepos.organizations.update(
            msgspec.structs.replace(org, name="Renamed", slug=new_slug)
        )
        assert (updated.id, updated.name, updated.slug) == (org.id, "Renamed", new_slug)
        assert updated.version == org.version + 1
        assert updated.created_at == org.created_at
        assert updated.updated_at > org.updated_at
        assert await arepos.organizations.get_by_id(org.id) == updated
        assert await arepos.organizations.get_by_slug(org.slug) is None
        again = await arepos.organizations.update(msgspec.structs.replace(updated, name="Again"))
        assert again.version == 3


async def test_stale_update_is_a_conflict_and_changes_nothing(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        current = await arepos.organizations.update(msgspec.structs.replace(org, name="First"))
        with pytest.raises(ConflictError) as caught:
            await arepos.organizations.update(msgspec.structs.replace(org, name="Second"))
        assert caught.value.constraint == "version"
        assert "version 2" in str(caught.value)
        assert await arepos.organizations.get_by_id(org.id) == current


async def test_update_or_delete_of_a_missing_row_is_not_found(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        await arepos.organizations.delete(org.id)
        assert await arepos.organizations.get_by_id(org.id) is None
        with pytest.raises(NotFoundError):
            await arepos.organizations.delete(org.id)
        with pytest.raises(NotFoundError):
            await arepos.organizations.update(msgspec.structs.replace(org, name="Ghost"))
        with pytest.raises(NotFoundError):
            await arepos.organizations.delete(uuid.uuid4())


async def test_duplicate_slug_is_a_conflict_naming_the_slug(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        with pytest.raises(ConflictError) as caught:
            await make_org(arepos, slug=org.slug)
        assert caught.value.constraint == "organizations_slug_key"
        assert "slug already exists" in str(caught.value)
        other = await make_org(arepos)
        with pytest.raises(ConflictError, match="slug"):
            await arepos.organizations.update(msgspec.structs.replace(other, slug=org.slug))
        assert await arepos.organizations.get_by_id(other.id) == other


@pytest.mark.parametrize(
    "fields",
    [
        {"slug": "Upper-Case"},
        {"slug": "trailing-"},
        {"slug": "a" * 64},
        {"name": ""},
        {"name": "n" * 201},
        {"name": "nul\x00inside"},
    ],
)
async def test_invalid_fields_are_rejected(
    shared_config: DatabaseConfig, fields: dict[str, str]
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        values = {"name": "Acme", "slug": f"acme-{token()}"} | fields
        with pytest.raises(ValidationError, match=next(iter(fields))):
            await arepos.organizations.create(
                NewOrganization(name=values["name"], slug=values["slug"])
            )
        assert await arepos.organizations.get_by_slug(values["slug"]) is None
        org = await make_org(arepos)
        with pytest.raises(ValidationError, match=next(iter(fields))):
            await arepos.organizations.update(msgspec.structs.replace(org, **fields))
        assert await arepos.organizations.get_by_id(org.id) == org
