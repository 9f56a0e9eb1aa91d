"""The factory and its database: health check, pool statistics, migrate, close."""

from __future__ import annotations

import asyncio  # sync: import time
import dataclasses
import datetime
import time

import psycopg
import pytest
from psycopg import conninfo

from llmcp.config import DatabaseConfig
from llmcp.dev.embedded import EmbeddedServer
from llmcp.dev.scratch import with_database
from llmcp.errors import DatabaseUnavailableError
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import AuditAction
from llmcp.inputs import NewAuditLog
from llmcp.migrate import Migrator
from tests.repositories.helpers_async import make_log, make_org, make_tenant, terminate_backends


async def test_health_check_reports_server_latency_and_pool(shared_config: DatabaseConfig) -> None:
    config = dataclasses.replace(shared_config, min_size=2, max_size=3)
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        health = await afactory.database.health_check()
        transaction = await afactory.transaction_manager().begin()
        cursor = await transaction.connection.execute("SHOW server_version")
        row = await cursor.fetchone()
        await transaction.rollback()
        assert row is not None and health.server_version == row[0]
        assert health.server_version[:2].isdigit()
        assert 0 < health.latency_ms < 10_000
        assert (health.pool.min_size, health.pool.max_size) == (2, 3)
        assert 1 <= health.pool.size <= 3
        assert health.pool.available <= health.pool.size
        assert health.pool.waiting == 0 and health.pool.errors == 0
        again = await afactory.database.health_check()
        assert again.pool.requests > health.pool.requests


async def test_the_factory_shares_one_database_and_one_manager(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        assert afactory.repositories() is afactory.repositories()
        assert afactory.transaction_manager() is afactory.transaction_manager()
        assert afactory.database.config == shared_config
        arepos = afactory.repositories()
        assert {name for name in type(arepos).__dataclass_fields__} == {
            "organizations",
            "applications",
            "users",
            "policies",
            "audit_logs",
            "inference_requests",
        }


async def test_close_is_idempotent_and_the_block_closes(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        org = await make_org(afactory.repositories())
    with pytest.raises(DatabaseUnavailableError):
        await afactory.repositories().organizations.get_by_id(org.id)
    await afactory.close()
    await afactory.close()
    with pytest.raises(DatabaseUnavailableError):
        await afactory.database.health_check()

    afactory = await AsyncRepositoryFactory.connect(shared_config)
    assert await afactory.repositories().organizations.get_by_id(org.id) == org
    await afactory.close()
    await afactory.close()
    await afactory.database.close()
    with pytest.raises(DatabaseUnavailableError):
        await afactory.repositories().organizations.get_by_id(org.id)


async def test_connect_to_a_missing_database_is_unavailable(shared_config: DatabaseConfig) -> None:
    missing = with_database(shared_config.url, "no_such_database_here")
    config = dataclasses.replace(shared_config, url=missing, connect_timeout=0.3)
    with pytest.raises(DatabaseUnavailableError, match="cannot connect"):
        await AsyncRepositoryFactory.connect(config)


async def test_migrate_an_empty_database_then_use_it(empty_db: str, empty_owner_db: str) -> None:
    # the service's pool as the application role, migrate() as the owner
    config = DatabaseConfig(
        url=empty_db, migration_url=empty_owner_db, min_size=1, max_size=2, acquire_timeout=5.0
    )
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        await afactory.database.migrate()
        await afactory.database.migrate()  # nothing left to apply: a no-op
        arepos = afactory.repositories()
        org, app, user = await make_tenant(arepos)
        assert await arepos.users.get_by_org_id(org.id) == [user]
        assert await arepos.applications.get_by_id(org.id, app.id) == app


async def test_a_connection_the_server_dropped_is_replaced_before_use(
    own_server: EmbeddedServer,
) -> None:
    """A pooled connection used a moment ago is not pinged, but one whose server went
    away (restart, terminated backend) is noticed without a round trip and replaced:
    the call succeeds."""
    url = own_server.url("own")
    # never old enough to be pinged: only the no-round-trip check can save the call
    config = DatabaseConfig(url=url, min_size=1, max_size=1, check_after_idle=3600)
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        own_server.stop()
        own_server.restart_stopped()
        assert await arepos.organizations.get_by_id(org.id) == org

        terminate_backends(url)
        assert await arepos.organizations.get_by_id(org.id) == org


# east of UTC, 9999-12-31 UTC is in the year 10000; west of it, 0001-01-01 UTC is BC
@pytest.mark.parametrize("zone", ["Pacific/Chatham", "America/St_Johns"])
@pytest.mark.direct_connection(
    reason="a URL with options (PgBouncer refuses the startup parameter) and session SETs read"
    " back with SHOW on a raw connection; tests/test_pgbouncer.py covers the time zones there"
)
async def test_utc_and_url_options_on_a_server_whose_time_zone_is_not_utc(
    fresh_db: str, fresh_owner_db: str, zone: str
) -> None:
    with psycopg.connect(fresh_owner_db, autocommit=True) as conn:  # ALTER DATABASE: its owner
        name = conn.info.dbname
        conn.execute(f"ALTER DATABASE \"{name}\" SET TimeZone = '{zone}'")
        # the year 9999 gets the month partition of audit_logs an operator would make
        conn.execute("SELECT llmcp_create_month_partition('audit_logs', '9999-12-01+00')")
    # the URL's own options and llmcp's settings combine: neither replaces the other
    url = conninfo.make_conninfo(fresh_db, options="-c work_mem=7MB")
    config = DatabaseConfig(url=url, min_size=1, max_size=2, statement_timeout=12.5)
    assert "options" not in config.connection_kwargs()  # a transaction-mode pooler refuses them
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        arepos = afactory.repositories()
        tx = afactory.transaction_manager()
        async with tx.connection() as conn:
            settings = []
            for setting in ("TimeZone", "work_mem", "statement_timeout"):
                cursor = await conn.execute(f"SHOW {setting}")
                row = await cursor.fetchone()
                assert row is not None
                settings.append(row[0])
        assert settings == ["UTC", "7MB", "12500ms"]
        org = await make_org(arepos)
        edges = [
            datetime.datetime(1, 1, 1, tzinfo=datetime.UTC),
            datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC),
        ]
        for when in edges:
            log = await make_log(arepos, org.id, created_at=when)
            again = await arepos.audit_logs.get_by_id(org.id, log.id)
            assert again is not None and again.created_at == when
            queued = await arepos.audit_logs.async_insert(
                NewAuditLog(
                    org_id=org.id,
                    action=AuditAction.USER_CREATED,
                    resource_type="user",
                    created_at=when,
                )
            )
            await afactory.audit_writer.flush(timeout=30)
            stored = await arepos.audit_logs.get_by_id(org.id, queued)
            assert stored is not None and stored.created_at == when


def _accepting(url: str) -> float:
    """When the server accepts connections again (monotonic clock)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return time.monotonic()
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "the server did not come back"
            time.sleep(0.01)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_an_idle_pool_of_ten_recovers_within_a_second_of_a_restart(mode: str) -> None:
    # durable: an immediate stop of a server without fsync may lose what it had
    with EmbeddedServer(durable=True) as own_server:
        Migrator(own_server.url("own")).up()
        await _recovers_within_a_second(own_server, mode)


async def _recovers_within_a_second(own_server: EmbeddedServer, mode: str) -> None:
    url = own_server.url("own")
    config = DatabaseConfig(url=url, min_size=10, max_size=10, acquire_timeout=30.0)
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        arepos = afactory.repositories()
        org = await make_org(arepos)
        deadline = time.monotonic() + 30
        while afactory.database.pool_stats().available < 10:  # ten idle connections
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        own_server.stop(mode)  # every pooled connection dies
        own_server.restart_stopped()
        ready = _accepting(url)
        assert await arepos.organizations.get_by_id(org.id) == org
        first = time.monotonic() - ready
        for _ in range(10):  # and the calls after it
            assert await arepos.organizations.get_by_id(org.id) == org
        ten = time.monotonic() - ready
        print(f"\n{mode} restart, idle pool of 10: first call {first * 1000:.0f} ms, "
              f"11 calls {ten * 1000:.0f} ms after the server accepted connections")  # fmt: skip
        assert first < 1.5 and ten < 1.5  # within 1 s, with slack for a loaded machine
