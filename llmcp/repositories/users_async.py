"""Users: people of an organization, known by e-mail and by their Cognito subject."""

from __future__ import annotations

import builtins
import re
import uuid

from llmcp import tenancy
from llmcp import validation as check
from llmcp.generated.models import User, UserRole
from llmcp.generated.users import AsyncUsersQueries
from llmcp.inputs import NewUser
from llmcp.repositories.base_async import AsyncCachedRepository

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AsyncUserRepository(AsyncCachedRepository):
    """Create, look up, list, update and delete users."""

    entity = "users"
    _queries = AsyncUsersQueries()

    async def create(self, new: NewUser) -> User:
        """Insert a user; an e-mail address is unique in its organization, compared
        by :func:`llmcp.validation.email_key`."""
        check.instance("new", new, NewUser)
        email = check.text("email", new.email, max_length=320, pattern=EMAIL)
        return await self._run(
            self._queries.create,
            id=check.optional_uuid("id", new.id) or uuid.uuid4(),
            org_id=check.uuid_value("org_id", new.org_id),
            email=email,
            email_key=check.email_key(email),
            cognito_sub=check.text("cognito_sub", new.cognito_sub, max_length=128),
            display_name=check.optional_text(
                "display_name", new.display_name, max_length=200, min_length=0
            ),
            role=check.member("role", new.role, UserRole),
            created_at=check.optional_aware("created_at", new.created_at),
        )

    async def get_by_id(self, org_id: uuid.UUID, user_id: uuid.UUID) -> User | None:
        """The organization's user with this id (another organization's: None)."""
        return await self._run(
            self._queries.get_by_id,
            org_id=check.uuid_value("org_id", org_id),
            id=check.uuid_value("user_id", user_id),
        )

    async def get_by_cognito_sub(self, cognito_sub: str) -> User | None:
        """The user of a Cognito subject, in any organization: the sign-in lookup
        before the tenant is known (it reaches that one user only). Answered by the
        admission cache when there is one, outside a transaction."""
        sub = check.text("cognito_sub", cognito_sub, max_length=128)

        async def load() -> User | None:
            with tenancy.scoped(tenancy.COGNITO_SUB, sub):
                return await self._run(self._queries.get_by_cognito_sub, cognito_sub=sub)

        if self._admission is not None and self._transactions.current() is None:
            return await self._admission.user(sub, load)
        return await load()

    async def get_by_email(self, org_id: uuid.UUID, email: str) -> User | None:
        """The organization's user with this e-mail address, compared by
        :func:`llmcp.validation.email_key` (case and look-alike forms ignored)."""
        address = check.text("email", email, max_length=320)
        return await self._run(
            self._queries.get_by_email,
            org_id=check.uuid_value("org_id", org_id),
            email_key=check.email_key(address),
        )

    async def get_by_org_id(
        self, org_id: uuid.UUID, limit: int = 100, offset: int = 0
    ) -> builtins.list[User]:
        """The organization's users, newest first."""
        return await self._read(
            self._queries.get_by_org_id,
            org_id=check.uuid_value("org_id", org_id),
            limit=check.limit(limit),
            offset=check.offset(offset),
        )

    async def update(self, user: User) -> User:
        """Store e-mail, display name and role if ``user.version`` is still current."""
        check.instance("user", user, User)
        email = check.text("email", user.email, max_length=320, pattern=EMAIL)
        updated = await self._run(
            self._queries.update,
            org_id=check.uuid_value("org_id", user.org_id),
            id=check.uuid_value("id", user.id),
            version=check.int_range("version", user.version, minimum=1, maximum=check.INT32_MAX),
            email=email,
            email_key=check.email_key(email),
            display_name=check.optional_text(
                "display_name", user.display_name, max_length=200, min_length=0
            ),
            role=check.member("role", user.role, UserRole),
        )
        if updated is None:
            raise await self._missing_or_stale(
                self._queries.version_of, user.id, user.version, org_id=user.org_id
            )
        return updated

    async def delete(self, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Delete the user and their policies; audit logs and inference requests stay."""
        deleted = await self._run(
            self._queries.delete,
            org_id=check.uuid_value("org_id", org_id),
            id=check.uuid_value("user_id", user_id),
        )
        if deleted == 0:
            raise self._not_found(user_id)
