"""Users through the repository: create, look up (id, Cognito subject, e-mail), list, update, delete."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import ConflictError, NotFoundError, ReferenceViolationError, ValidationError
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import UserRole
from llmcp.inputs import NewUser
from tests.repositories.helpers_async import at, make_org, make_user, newest_first, token


async def test_create_and_every_lookup(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        word = token()
        user = await arepos.users.create(
            NewUser(
                org_id=org.id,
                email=f"Ada.{word}@Example.com",
                cognito_sub=f"sub-{word}",
                display_name="Ada",
                role=UserRole.ADMIN,
            )
        )
        assert (user.org_id, user.email, user.display_name, user.role, user.version) == (
            org.id,
            f"Ada.{word}@Example.com",
            "Ada",
            UserRole.ADMIN,
            1,
        )
        assert user.email_key == f"ada.{word}@example.com"
        assert await arepos.users.get_by_id(org.id, user.id) == user
        assert await arepos.users.get_by_cognito_sub(f"sub-{word}") == user
        assert await arepos.users.get_by_email(org.id, f"Ada.{word}@Example.com") == user
        assert await arepos.users.get_by_email(org.id, f"ada.{word}@example.COM") == user
        assert await arepos.users.get_by_id(org.id, uuid.uuid4()) is None
        assert await arepos.users.get_by_cognito_sub(f"SUB-{word}") is None
        assert await arepos.users.get_by_email(org.id, f"nobody-{word}@example.com") is None


async def test_role_defaults_to_member_and_accepts_its_value(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        assert (await make_user(arepos, org.id)).role is UserRole.MEMBER
        assert (await make_user(arepos, org.id, role="viewer")).role is UserRole.VIEWER
        with pytest.raises(ValidationError, match="role must be one of"):
            await make_user(arepos, org.id, role="boss")


async def test_get_by_org_id_lists_only_that_org_newest_first(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, other = await make_org(arepos), await make_org(arepos)
        users = [await make_user(arepos, org.id, created_at=at(-(i % 2))) for i in range(5)]
        await make_user(arepos, other.id)
        assert await arepos.users.get_by_org_id(org.id) == newest_first(users)
        assert (
            await arepos.users.get_by_org_id(org.id, limit=2, offset=4) == newest_first(users)[4:]
        )


async def test_update_is_optimistic(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        user = await make_user(arepos, (await make_org(arepos)).id, created_at=at(0))
        email = f"new-{token()}@example.com"
        updated = await arepos.users.update(
            msgspec.structs.replace(user, email=email, display_name="New", role=UserRole.OWNER)
        )
        assert (updated.email, updated.display_name, updated.role) == (
            email,
            "New",
            UserRole.OWNER,
        )
        assert (updated.version, updated.cognito_sub, updated.created_at) == (
            2,
            user.cognito_sub,
            user.created_at,
        )
        assert updated.updated_at > user.updated_at
        assert await arepos.users.get_by_email(user.org_id, user.email) is None
        assert await arepos.users.get_by_email(user.org_id, email.upper()) == updated
        assert updated.email_key == email
        cleared = await arepos.users.update(msgspec.structs.replace(updated, display_name=None))
        assert cleared.display_name is None and cleared.version == 3

        with pytest.raises(ConflictError) as caught:
            await arepos.users.update(msgspec.structs.replace(updated, display_name="stale"))
        assert caught.value.constraint == "version"
        assert await arepos.users.get_by_id(user.org_id, user.id) == cleared


async def test_delete_and_missing_rows(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        user, keep = await make_user(arepos, org.id), await make_user(arepos, org.id)
        await arepos.users.delete(org.id, user.id)
        assert await arepos.users.get_by_id(org.id, user.id) is None
        assert await arepos.users.get_by_email(org.id, user.email) is None
        assert await arepos.users.get_by_org_id(org.id) == [keep]
        with pytest.raises(NotFoundError):
            await arepos.users.delete(org.id, user.id)
        with pytest.raises(NotFoundError):
            await arepos.users.update(msgspec.structs.replace(user, display_name="ghost"))


async def test_email_in_another_case_is_a_conflict_in_its_org(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        user = await make_user(arepos, org.id, email=f"Grace-{token()}@Example.org")
        with pytest.raises(ConflictError) as caught:
            await make_user(arepos, org.id, email=user.email.lower())
        assert caught.value.constraint == "users_org_id_email_key"
        assert "email already exists" in str(caught.value)
        assert user.email.lower() not in str(caught.value).lower()
        assert await arepos.users.get_by_org_id(org.id) == [user]

        second = await make_user(arepos, org.id)
        with pytest.raises(ConflictError, match="email"):
            await arepos.users.update(msgspec.structs.replace(second, email=user.email.upper()))
        assert await arepos.users.get_by_id(org.id, second.id) == second


async def test_the_same_email_in_two_orgs_is_two_users(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org, other = await make_org(arepos), await make_org(arepos)
        email = f"Grace-{token()}@Example.org"
        user = await make_user(arepos, org.id, email=email)
        twin = await make_user(arepos, other.id, email=email.lower())
        assert twin.id != user.id and twin.email_key == user.email_key
        assert await arepos.users.get_by_email(org.id, email) == user
        assert await arepos.users.get_by_email(other.id, email) == twin
        assert await arepos.users.get_by_org_id(other.id) == [twin]
        # an update to an address another organization holds is no conflict either
        third = await make_user(arepos, other.id)
        moved = await arepos.users.update(msgspec.structs.replace(user, email=third.email.upper()))
        assert moved.email_key == third.email_key
        assert await arepos.users.get_by_email(other.id, third.email) == third


# A Kelvin sign (U+212A) folds to "k"; full-width letters are their ASCII forms
# under NFKC; the "ﬀ" ligature (U+FB00) is "ff".
LOOK_ALIKES = [
    pytest.param("\u212aate-{word}@example.com", "kate-{word}@example.com", id="kelvin-sign"),
    pytest.param(
        "kate-{word}@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
        "kate-{word}@example.com",
        id="full-width",
    ),
    pytest.param("\ufb00-{word}@example.com", "ff-{word}@example.com", id="ligature"),
]


@pytest.mark.parametrize(("look_alike", "plain"), LOOK_ALIKES)
async def test_a_look_alike_email_is_the_plain_address(
    shared_config: DatabaseConfig, look_alike: str, plain: str
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        word = token()
        look_alike, plain = look_alike.format(word=word), plain.format(word=word)
        assert look_alike != plain
        user = await make_user(arepos, org.id, email=plain)
        # it cannot be a second user next to the plain address ...
        with pytest.raises(ConflictError) as caught:
            await make_user(arepos, org.id, email=look_alike)
        assert caught.value.constraint == "users_org_id_email_key"
        second = await make_user(arepos, org.id)
        with pytest.raises(ConflictError, match="email"):
            await arepos.users.update(msgspec.structs.replace(second, email=look_alike))
        assert await arepos.users.get_by_org_id(org.id) == newest_first([user, second])
        # ... and it finds the plain address's user, in its organization only
        assert await arepos.users.get_by_email(org.id, look_alike) == user
        assert await arepos.users.get_by_email(org.id, look_alike.upper()) == user


@pytest.mark.parametrize(("look_alike", "plain"), LOOK_ALIKES)
async def test_a_look_alike_email_cannot_reach_another_orgs_user(
    shared_config: DatabaseConfig, look_alike: str, plain: str
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        mine, theirs = await make_org(arepos), await make_org(arepos)
        word = token()
        look_alike, plain = look_alike.format(word=word), plain.format(word=word)
        victim = await make_user(arepos, theirs.id, email=plain)
        assert await arepos.users.get_by_email(mine.id, look_alike) is None
        assert await arepos.users.get_by_email(mine.id, plain) is None
        # the look-alike is a user of my organization of its own, the victim untouched
        own = await make_user(arepos, mine.id, email=look_alike)
        assert own.email == look_alike and own.email_key == victim.email_key
        assert await arepos.users.get_by_email(mine.id, plain) == own
        assert await arepos.users.get_by_email(theirs.id, look_alike) == victim
        assert await arepos.users.get_by_id(theirs.id, victim.id) == victim


async def test_duplicate_cognito_sub_is_a_conflict(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        user = await make_user(arepos, org.id)
        with pytest.raises(ConflictError) as caught:
            await make_user(arepos, org.id, cognito_sub=user.cognito_sub)
        assert caught.value.constraint == "users_cognito_sub_key"
        assert "cognito_sub already exists" in str(caught.value)


async def test_unknown_org_is_a_reference_violation(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        with pytest.raises(ReferenceViolationError, match="org_id") as caught:
            await make_user(arepos, uuid.uuid4())
        assert caught.value.constraint == "users_org_id_fkey"


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "no-at-sign.example.com"},
        {"email": "two words@example.com"},
        {"email": f"{'x' * 310}@example.com"},
        {"display_name": "d" * 201},
        {"display_name": "tab\tok but nul \x00 is not"},
    ],
)
async def test_invalid_fields_are_rejected(
    shared_config: DatabaseConfig, fields: dict[str, str]
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        with pytest.raises(ValidationError, match=next(iter(fields))):
            await make_user(arepos, org.id, **fields)
        user = await make_user(arepos, org.id)
        with pytest.raises(ValidationError, match=next(iter(fields))):
            await arepos.users.update(msgspec.structs.replace(user, **fields))
        assert await arepos.users.get_by_org_id(org.id) == [user]


@pytest.mark.parametrize("fields", [{"cognito_sub": ""}, {"cognito_sub": "s" * 129}])
async def test_invalid_cognito_sub_is_rejected(
    shared_config: DatabaseConfig, fields: dict[str, str]
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        with pytest.raises(ValidationError, match="cognito_sub"):
            await make_user(arepos, org.id, **fields)
        assert await arepos.users.get_by_org_id(org.id) == []
