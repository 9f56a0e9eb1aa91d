"""Applications: API clients of an organization, found by the hash of their key."""

from __future__ import annotations

import builtins
import uuid

from llmcp import tenancy
from llmcp import validation as check
from llmcp.api_keys import API_KEY_HASH
from llmcp.generated.applications import AsyncApplicationsQueries
from llmcp.generated.models import Application
from llmcp.inputs import NewApplication
from llmcp.repositories.base_async import AsyncCachedRepository


class AsyncApplicationRepository(AsyncCachedRepository):
    """Create, look up, list, update and delete applications."""

    entity = "applications"
    _queries = AsyncApplicationsQueries()

    async def create(self, new: NewApplication) -> Application:
        """Insert an application; ``api_key_hash`` is the SHA-256 of its key, lowercase hex."""
        check.instance("new", new, NewApplication)
        return await self._run(
            self._queries.create,
            id=check.optional_uuid("id", new.id) or uuid.uuid4(),
            org_id=check.uuid_value("org_id", new.org_id),
            name=check.text("name", new.name, max_length=200),
            description=check.optional_text(
                "description", new.description, max_length=2000, min_length=0
            ),
            api_key_hash=check.text(
                "api_key_hash", new.api_key_hash, max_length=64, pattern=API_KEY_HASH
            ),
            created_at=check.optional_aware("created_at", new.created_at),
        )

    async def get_by_id(self, org_id: uuid.UUID, app_id: uuid.UUID) -> Application | None:
        """The organization's application with this id (another organization's: None)."""
        return await self._run(
            self._queries.get_by_id,
            org_id=check.uuid_value("org_id", org_id),
            id=check.uuid_value("app_id", app_id),
        )

    async def get_by_api_key_hash(self, api_key_hash: str) -> Application | None:
        """The application of an API key, in any organization: the request path's
        lookup before the tenant is known (it reaches that one application only).
        Answered by the admission cache when there is one, outside a transaction."""
        key_hash = check.text("api_key_hash", api_key_hash, max_length=200)

        async def load() -> Application | None:
            with tenancy.scoped(tenancy.API_KEY_HASH, key_hash):
                return await self._run(self._queries.get_by_api_key_hash, api_key_hash=key_hash)

        if self._admission is not None and self._transactions.current() is None:
            return await self._admission.application(key_hash, load)
        return await load()

    async def get_by_org_id(
        self, org_id: uuid.UUID, limit: int = 100, offset: int = 0
    ) -> builtins.list[Application]:
        """The organization's applications, newest first."""
        return await self._read(
            self._queries.get_by_org_id,
            org_id=check.uuid_value("org_id", org_id),
            limit=check.limit(limit),
            offset=check.offset(offset),
        )

    async def update(self, app: Application) -> Application:
        """Store name, description and key hash if ``app.version`` is still current."""
        check.instance("app", app, Application)
        updated = await self._run(
            self._queries.update,
            org_id=check.uuid_value("org_id", app.org_id),
            id=check.uuid_value("id", app.id),
            version=check.int_range("version", app.version, minimum=1, maximum=check.INT32_MAX),
            name=check.text("name", app.name, max_length=200),
            description=check.optional_text(
                "description", app.description, max_length=2000, min_length=0
            ),
            api_key_hash=check.text(
                "api_key_hash", app.api_key_hash, max_length=64, pattern=API_KEY_HASH
            ),
        )
        if updated is None:
            raise await self._missing_or_stale(
                self._queries.version_of, app.id, app.version, org_id=app.org_id
            )
        return updated

    async def delete(self, org_id: uuid.UUID, app_id: uuid.UUID) -> None:
        """Delete the application, its policies and inference requests; audit logs stay."""
        deleted = await self._run(
            self._queries.delete,
            org_id=check.uuid_value("org_id", org_id),
            id=check.uuid_value("app_id", app_id),
        )
        if deleted == 0:
            raise self._not_found(app_id)
