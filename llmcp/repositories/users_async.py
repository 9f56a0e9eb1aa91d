"""Users: people of an organization, known by e-mail and by their Cognito subject."""

from __future__ import annotations

import builtins
import re
import uuid

from llmcp import validation as check
from llmcp.generated.models import User, UserRole
from llmcp.generated.users import AsyncUsersQueries
from llmcp.inputs import NewUser
from llmcp.repositories.base_async import AsyncRepository

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AsyncUserRepository(AsyncRepository):
    """Create, look up, list, update and delete users."""

    entity = "users"
    _queries = AsyncUsersQueries()

    async def create(self, new: NewUser) -> User:
        """Insert a user; e-mail addresses are unique regardless of case."""
        check.instance("new", new, NewUser)
        return await self._run(
            self._queries.create,
            id=check.optional_uuid("id", new.id) or uuid.uuid4(),
            org_id=check.uuid_value("org_id", new.org_id),
            email=check.text("email", new.email, max_length=320, pattern=EMAIL),
            cognito_sub=check.text("cognito_sub", new.cognito_sub, max_length=128),
            display_name=check.optional_text(
                "display_name", new.display_name, max_length=200, min_length=0
            ),
            role=check.member("role", new.role, UserRole),
            created_at=check.optional_aware("created_at", new.created_at),
        )

    async def get_by_id(self, user_id: uuid.UUID) -> User | None:
        return await self._run(self._queries.get_by_id, id=check.uuid_value("user_id", user_id))

    async def get_by_cognito_sub(self, cognito_sub: str) -> User | None:
        sub = check.text("cognito_sub", cognito_sub, max_length=128)
        return await self._run(self._queries.get_by_cognito_sub, cognito_sub=sub)

    async def get_by_email(self, email: str) -> User | None:
        """The user with this e-mail address, in any case."""
        address = check.text("email", email, max_length=320)
        return await self._run(self._queries.get_by_email, email=address)

    async def get_by_org_id(
        self, org_id: uuid.UUID, limit: int = 100, offset: int = 0
    ) -> builtins.list[User]:
        """The organization's users, newest first."""
        return await self._run(
            self._queries.get_by_org_id,
            org_id=check.uuid_value("org_id", org_id),
            limit=check.limit(limit),
            offset=check.offset(offset),
        )

    async def update(self, user: User) -> User:
        """Store e-mail, display name and role if ``user.version`` is still current."""
        check.instance("user", user, User)
        updated = await self._run(
            self._queries.update,
            id=check.uuid_value("id", user.id),
            version=check.int_range("version", user.version, minimum=1, maximum=check.INT32_MAX),
            email=check.text("email", user.email, max_length=320, pattern=EMAIL),
            display_name=check.optional_text(
                "display_name", user.display_name, max_length=200, min_length=0
            ),
            role=check.member("role", user.role, UserRole),
        )
        if updated is None:
            raise await self._missing_or_stale(self._queries.version_of, user.id, user.version)
        return updated

    async def delete(self, user_id: uuid.UUID) -> None:
        """Delete the user and their policies; audit logs and inference requests stay."""
        if await self._run(self._queries.delete, id=check.uuid_value("user_id", user_id)) == 0:
            raise self._not_found(user_id)
