"""Organizations: the tenants. Deleting one deletes everything it owns but its audit trail.

These are the platform's operations on the tenants themselves: ``create``,
``list`` and ``get_by_slug`` run before any tenant is known; the others name
the organization they act on.
"""

from __future__ import annotations

import builtins
import re
import uuid

from llmcp import validation as check
from llmcp.generated.models import Organization
from llmcp.generated.organizations import AsyncOrganizationsQueries
from llmcp.inputs import NewOrganization
from llmcp.repositories.base_async import AsyncRepository

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class AsyncOrganizationRepository(AsyncRepository):
    """Create, look up, list, update and delete organizations."""

    entity = "organizations"
    _queries = AsyncOrganizationsQueries()

    async def create(self, new: NewOrganization) -> Organization:
        """Insert an organization (slug: lowercase words joined by hyphens, unique)."""
        check.instance("new", new, NewOrganization)
        return await self._run(
            self._queries.create,
            id=check.optional_uuid("id", new.id) or uuid.uuid4(),
            name=check.text("name", new.name, max_length=200),
            slug=check.text("slug", new.slug, max_length=63, pattern=SLUG),
            created_at=check.optional_aware("created_at", new.created_at),
        )

    async def get_by_id(self, org_id: uuid.UUID) -> Organization | None:
        return await self._run(self._queries.get_by_id, id=check.uuid_value("org_id", org_id))

    async def get_by_slug(self, slug: str) -> Organization | None:
        return await self._run(
            self._queries.get_by_slug, slug=check.text("slug", slug, max_length=200)
        )

    async def list(self, limit: int = 100, offset: int = 0) -> builtins.list[Organization]:
        """Newest first."""
        return await self._read(
            self._queries.list, limit=check.limit(limit), offset=check.offset(offset)
        )

    async def update(self, org: Organization) -> Organization:
        """Store ``org``'s name and slug if its version is still current; returns the new row."""
        check.instance("org", org, Organization)
        updated = await self._run(
            self._queries.update,
            id=check.uuid_value("id", org.id),
            version=check.int_range("version", org.version, minimum=1, maximum=check.INT32_MAX),
            name=check.text("name", org.name, max_length=200),
            slug=check.text("slug", org.slug, max_length=63, pattern=SLUG),
        )
        if updated is None:
            raise await self._missing_or_stale(self._queries.version_of, org.id, org.version)
        return updated

    async def delete(self, org_id: uuid.UUID) -> None:
        """Delete the organization and, by cascade, all its rows except its audit logs,
        which stay with their ids (see README, The audit trail)."""
        if await self._run(self._queries.delete, id=check.uuid_value("org_id", org_id)) == 0:
            raise self._not_found(org_id)
