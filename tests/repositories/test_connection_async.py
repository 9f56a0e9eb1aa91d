"""``connection()``: queries of one's own (here llmcp's generated ones, called
directly, as a service calls its own) on the connection of the context: the
transaction's, a pinned block's, or a pooled one; their errors mapped."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from llmcp.config import DatabaseConfig
from llmcp.errors import ConflictError, DatabaseUnavailableError, LlmcpError, TransactionError
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import Organization
from llmcp.generated.organizations import AsyncOrganizationsQueries
from tests.repositories.helpers_async import make_org, terminate_backends, token

QUERIES = AsyncOrganizationsQueries()


class Boom(Exception):
    """An error of the caller's own, raised inside a transaction."""


async def create_org(conn: psycopg.AsyncConnection[Any], slug: str | None = None) -> Organization:
    """An organization inserted by the generated query itself, not the repository."""
    return await QUERIES.create(
        conn, id=uuid.uuid4(), name="Own query", slug=slug or f"own-{token()}", created_at=None
    )


async def test_inside_a_transaction_it_is_the_transactions_connection(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        async with tm.transaction() as transaction:
            async with tm.connection() as conn:
                assert conn is transaction.connection
                own = await create_org(conn)
            # the repositories see the row: one transaction
            assert await arepos.organizations.get_by_id(own.id) == own
            via_repository = await make_org(arepos)
            async with tm.connection() as conn:
                assert await QUERIES.get_by_id(conn, id=via_repository.id) == via_repository
        assert await arepos.organizations.get_by_id(own.id) == own


async def test_a_rollback_undoes_what_ran_on_it(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        with pytest.raises(Boom):
            block = tm.transaction()
            async with block:
                async with tm.connection() as conn:
                    undone = await create_org(conn)
                raise Boom
        assert await arepos.organizations.get_by_id(undone.id) is None
        transaction = await tm.begin()
        async with tm.connection() as conn:
            assert conn is transaction.connection
            by_hand = await create_org(conn)
        await transaction.rollback()
        assert await arepos.organizations.get_by_id(by_hand.id) is None


async def test_inside_a_pinned_block_it_is_the_pinned_connection(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        before = afactory.database.pool_stats().requests
        async with tm.pinned() as pinned:
            async with tm.connection() as conn:
                assert conn is pinned
                own = await create_org(conn)
            assert await arepos.organizations.get_by_id(own.id) == own
        assert afactory.database.pool_stats().requests == before + 1


async def test_elsewhere_it_is_a_pooled_connection_for_the_block(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        before = afactory.database.pool_stats().requests
        async with tm.connection() as conn:
            assert conn.autocommit
            assert tm.bound_connection() is None  # held for the block, not bound to the context
            own = await create_org(conn)
            again = await QUERIES.get_by_id(conn, id=own.id)
        assert afactory.database.pool_stats().requests == before + 1
        assert again == own
        assert await arepos.organizations.get_by_id(own.id) == own  # committed


async def test_its_errors_are_llmcp_errors_everywhere(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        tm = afactory.transaction_manager()
        taken = await make_org(afactory.repositories())
        with pytest.raises(ConflictError, match=r"^own\.create: slug already exists") as pooled:
            named = tm.connection(operation="own.create")
            async with named as conn:
                await create_org(conn, slug=taken.slug)
        assert pooled.value.constraint == "organizations_slug_key"
        with pytest.raises(ConflictError, match=r"^connection: slug"):
            pinned = tm.pinned()
            async with pinned, tm.connection() as conn:
                await create_org(conn, slug=taken.slug)
        with pytest.raises(LlmcpError, match=r"^connection: database error 42601") as raised:
            block = tm.transaction()
            async with block, tm.connection() as conn:
                await conn.execute("SELEC 1")
        assert isinstance(raised.value.__cause__, psycopg.errors.SyntaxError)


async def test_a_failure_inside_a_transaction_spoils_it(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        taken = await make_org(arepos)
        with pytest.raises(TransactionError, match="rolled back, not committed"):
            block = tm.transaction()
            async with block:
                kept_back = await make_org(arepos)
                with pytest.raises(ConflictError):
                    own = tm.connection()
                    async with own as conn:
                        await create_org(conn, slug=taken.slug)
        assert await arepos.organizations.get_by_id(kept_back.id) is None


@pytest.mark.direct_connection(reason="terminates its backend by the client's backend_pid")
async def test_a_connection_that_dies_is_unavailable(one_connection: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        tm = afactory.transaction_manager()
        with pytest.raises(DatabaseUnavailableError):
            block = tm.connection()
            async with block as conn:
                terminate_backends(one_connection.url, conn.info.backend_pid)
                await create_org(conn)
        async with tm.connection() as conn:  # the pool has replaced it
            own = await create_org(conn)
        assert await afactory.repositories().organizations.get_by_id(own.id) == own
