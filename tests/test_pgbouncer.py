"""Behind a transaction-mode PgBouncer (llmcp.pooled), in every pass.

``bouncer`` is a PgBouncer of this module's own in front of the test server
(Debian's ``pgbouncer``, which ``scripts/install-pgbouncer`` installs when it
is missing), so that it may be killed; the tests that need no PgBouncer of
their own run through ``LLMCP_TEST_POOLER_URL`` in the pooled pass, through
``bouncer`` otherwise.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from llmcp import conninfo
from llmcp.config import DatabaseConfig
from llmcp.database import Database
from llmcp.dev.pgbouncer import PgBouncer, binary
from llmcp.dev.scratch import TEST_APP_PASSWORD, TEST_APP_ROLE
from llmcp.errors import (
    CommitOutcomeUnknownError,
    DatabaseUnavailableError,
    MigrationError,
    ValidationError,
)
from llmcp.factory import RepositoryFactory
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import AuditAction
from llmcp.inputs import NewAuditLog
from llmcp.migrate import Migrator
from llmcp.testing import TestDatabases
from tests.repositories.helpers import make_app, make_log, make_org, make_user
from tests.repositories.helpers_async import make_app as amake_app
from tests.repositories.helpers_async import make_org as amake_org

ROOT = Path(__file__).resolve().parents[1]

_SLOW_COMMIT = """
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(60);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON applications
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();
"""


@pytest.fixture(scope="module")
def bouncer(databases: TestDatabases) -> Iterator[PgBouncer]:
    """A PgBouncer (transaction mode) of this module in front of the test server."""
    if binary() is None:  # installed by the suite, as CI's system PostgreSQL is
        subprocess.run([str(ROOT / "scripts" / "install-pgbouncer")], check=True)
    assert binary() is not None, "scripts/install-pgbouncer did not install pgbouncer"
    admin = conninfo.parse(databases.admin_url)
    server = {"host": admin.get("host") or "127.0.0.1", "port": admin.get("port") or "5432"}
    folder = Path(tempfile.mkdtemp(prefix="llmcp-pgbouncer-test-"))
    users = {TEST_APP_ROLE: TEST_APP_PASSWORD}
    with PgBouncer(folder, server=server, users=users, pool_size=4) as running:
        yield running
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pooled_url(request: pytest.FixtureRequest, databases: TestDatabases) -> Callable[[str], str]:
    """A database's URL as the application role through a PgBouncer: the pooled pass's,
    else ``bouncer``."""
    if databases.pooler_url is not None:
        return databases.url
    running: PgBouncer = request.getfixturevalue("bouncer")
    return lambda dbname: running.url(dbname, TEST_APP_ROLE)


def _config(url: str, **fields: object) -> DatabaseConfig:
    settings: dict[str, object] = {"min_size": 1, "max_size": 4, "acquire_timeout": 10.0}
    return DatabaseConfig(url=url, pooler="transaction", **{**settings, **fields})  # type: ignore[arg-type]


def test_a_pooler_is_detected_and_pooled_mode_keeps_no_session_state(
    databases: TestDatabases, fresh_name: str, pooled_url: Callable[[str], str]
) -> None:
    url = pooled_url(fresh_name)
    with Database.connect(DatabaseConfig(url=url, min_size=1, max_size=1)) as database:
        through_pooler = url != databases.direct_url(fresh_name)
        assert database.pooled is through_pooler  # detected, with pooler left None
    with Database.connect(DatabaseConfig(url=databases.direct_url(fresh_name))) as database:
        assert not database.pooled
    # on the server itself, pooled mode said by the setting: what it leaves on a session
    direct = databases.direct_url(fresh_name)
    for pooler, statements, timeout in ((None, True, "12500ms"), ("transaction", False, "0")):
        config = DatabaseConfig(url=direct, pooler=pooler, statement_timeout=12.5, max_size=1)  # type: ignore[arg-type]
        with RepositoryFactory.connect(config) as factory:
            repos, tx = factory.repositories(), factory.transaction_manager()
            with tx.pinned() as conn:
                org = make_org(repos)
                make_user(repos, org.id)
                assert repos.organizations.get_by_slug(org.slug) == org
                prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
                session = conn.execute(
                    "SELECT current_setting('statement_timeout'), current_setting('TimeZone')"
                ).fetchone()
            assert prepared is not None and (prepared[0] > 0) is statements
            # pooled: no session SET but the TimeZone PgBouncer tracks; the timeout rides in calls
            assert session == (timeout, "UTC")


def test_concurrent_clients_through_pgbouncer_each_get_their_own_answer(
    databases: TestDatabases, fresh_name: str, pooled_url: Callable[[str], str]
) -> None:
    """The bug of named statements through PgBouncer 1.18: a client's statement ``_llmcp_1``
    ran another client's ``_llmcp_1``. Several clients (pools of their own), each its
    own queries in its own order, many times: every answer is the asker's."""
    url = pooled_url(fresh_name)
    with RepositoryFactory.connect(_config(url)) as factory:
        repos = factory.repositories()
        orgs = [make_org(repos) for _ in range(4)]
        users = [make_user(repos, org.id) for org in orgs]
        apps = [make_app(repos, org.id) for org in orgs]
    wrong: list[str] = []

    def client(n: int) -> None:
        try:
            ask_often(n)
        except Exception as exc:
            wrong.append(f"client {n}: {exc!r}")

    def ask_often(n: int) -> None:
        org, user, app = orgs[n], users[n], apps[n]
        # each client asks in another order, so the same statement number means another query
        asks: list[Callable[[], object]] = [
            lambda: repos_n.users.get_by_email(org.id, user.email) == user,
            lambda: repos_n.organizations.get_by_slug(org.slug) == org,
            lambda: repos_n.applications.get_by_api_key_hash(app.api_key_hash) == app,
            lambda: repos_n.users.get_by_id(org.id, user.id) == user,
        ]
        asks = asks[n:] + asks[:n]
        with RepositoryFactory.connect(_config(url, max_size=2)) as own:
            repos_n = own.repositories()
            for round_ in range(60):
                for ask in asks:
                    if ask() is not True:
                        wrong.append(f"client {n}, round {round_}")
                if round_ % 20 == 0:  # a write between the reads, committed through the pooler
                    make_user(repos_n, org.id)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert wrong == []


@pytest.mark.parametrize("zone", ["Pacific/Chatham", "America/St_Johns"])
def test_utc_behind_pgbouncer_on_a_server_whose_time_zone_is_not_utc(
    fresh_name: str, fresh_owner_db: str, pooled_url: Callable[[str], str], zone: str
) -> None:
    with psycopg.connect(fresh_owner_db, autocommit=True) as conn:  # ALTER DATABASE: its owner
        conn.execute(f"ALTER DATABASE \"{fresh_name}\" SET TimeZone = '{zone}'")
        # the year 9999 gets the month partition of audit_logs an operator would make
        conn.execute("SELECT llmcp_create_month_partition('audit_logs', '9999-12-01+00')")
    with RepositoryFactory.connect(_config(pooled_url(fresh_name))) as factory:
        repos = factory.repositories()
        org = make_org(repos)
        for when in (
            datetime.datetime(1, 1, 1, tzinfo=datetime.UTC),
            datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC),
        ):
            log = make_log(repos, org.id, created_at=when)
            again = repos.audit_logs.get_by_id(org.id, log.id)
            assert again is not None and again.created_at == when
            queued = repos.audit_logs.async_insert(
                NewAuditLog(
                    org_id=org.id,
                    action=AuditAction.USER_CREATED,
                    resource_type="user",
                    created_at=when,
                )
            )
            factory.audit_writer.flush(timeout=30)
            stored = repos.audit_logs.get_by_id(org.id, queued)
            assert stored is not None and stored.created_at == when


def _advisory_locks(owner_url: str) -> int:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
    return int(row[0]) if row else -1


def test_migrations_refuse_to_run_through_pgbouncer(
    databases: TestDatabases, bouncer: PgBouncer
) -> None:
    name = databases.create_empty("unmigrated")
    owner = databases.owner_url(name)
    via_pooler = bouncer.url(name, TEST_APP_ROLE)
    for command in (Migrator(via_pooler).up, Migrator(via_pooler).rollback):
        with pytest.raises(MigrationError) as caught:
            command()
        assert "LLMCP_MIGRATION_URL" in str(caught.value) and "pooler" in str(caught.value)
        assert TEST_APP_PASSWORD not in str(caught.value)
    # a database that does not exist yet is not created through it either
    missing = f"{databases.prefix}_never"
    with pytest.raises(MigrationError):
        Migrator(bouncer.url(missing, TEST_APP_ROLE)).up()
    with psycopg.connect(owner, autocommit=True) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)  # dbmate never ran
        exists = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (missing,))
        assert exists.fetchone() == (0,)
    assert _advisory_locks(owner) == 0
    # said by the setting, migrate() refuses before connecting; a direct migration URL works
    config = _config(via_pooler)
    with (
        Database.connect(config) as database,
        pytest.raises(MigrationError, match="LLMCP_MIGRATION_URL"),
    ):
        database.migrate()
    with Database.connect(_config(via_pooler, migration_url=owner)) as database:
        database.migrate()
    assert _advisory_locks(owner) == 0


def _terminate_when_committing(owner_url: str, dbname: str) -> threading.Thread:
    """A thread that terminates the server backend of ``dbname`` that sleeps in the
    COMMIT's deferred trigger (found on the server: the client's pid is PgBouncer's)."""

    def run() -> None:
        deadline = time.monotonic() + 10
        with psycopg.connect(owner_url, autocommit=True) as admin:
            while True:
                row = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event = 'PgSleep'",
                    (dbname,),
                ).fetchone()
                if row is not None:
                    break
                assert time.monotonic() < deadline, "the COMMIT never reached its trigger"
                time.sleep(0.005)
            admin.execute("SELECT pg_terminate_backend(%s)", row)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _kill_when_committing(owner_url: str, dbname: str, running: PgBouncer) -> threading.Thread:
    """The same, but PgBouncer itself is killed (SIGKILL) while the COMMIT runs."""

    def run() -> None:
        deadline = time.monotonic() + 10
        with psycopg.connect(owner_url, autocommit=True) as admin:
            while admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event = 'PgSleep'",
                (dbname,),
            ).fetchone() == (0,):
                assert time.monotonic() < deadline, "the COMMIT never reached its trigger"
                time.sleep(0.005)
        running.kill()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("fault", ["server backend terminated", "pgbouncer killed"])
def test_a_connection_lost_during_commit_through_pgbouncer_leaves_the_outcome_unknown(
    databases: TestDatabases, fresh_name: str, fresh_owner_db: str, bouncer: PgBouncer,
    fault: str,
) -> None:  # fmt: skip
    with psycopg.connect(fresh_owner_db, autocommit=True) as conn:  # DDL: the owner
        conn.execute(_SLOW_COMMIT)
    url = bouncer.url(fresh_name, TEST_APP_ROLE)

    def watcher() -> threading.Thread:
        if fault == "pgbouncer killed":
            return _kill_when_committing(fresh_owner_db, fresh_name, bouncer)
        return _terminate_when_committing(fresh_owner_db, fresh_name)

    try:
        with RepositoryFactory.connect(_config(url, max_size=1)) as factory:
            repos, tm = factory.repositories(), factory.transaction_manager()
            org = make_org(repos)
            watching = watcher()
            with pytest.raises(CommitOutcomeUnknownError) as caught, tm.transaction():
                make_app(repos, org.id)
            watching.join(10)
            assert isinstance(caught.value, DatabaseUnavailableError)
            assert "may or may not have been committed" in str(caught.value)
            bouncer.start()  # after a kill; reused otherwise

        with RepositoryFactory.connect(_config(url, max_size=1)) as factory:
            repos = factory.repositories()  # a create on its own, committed as it ends
            org = make_org(repos)
            watching = watcher()
            with pytest.raises(CommitOutcomeUnknownError, match="on its own"):
                make_app(repos, org.id)
            watching.join(10)
            bouncer.start()

        async def begin_commit() -> None:
            async with await AsyncRepositoryFactory.connect(_config(url, max_size=1)) as afactory:
                arepos, atm = afactory.repositories(), afactory.transaction_manager()
                aorg = await amake_org(arepos)
                transaction = await atm.begin()
                await amake_app(arepos, aorg.id)
                watching = watcher()
                with pytest.raises(CommitOutcomeUnknownError):
                    await transaction.commit()
                watching.join(10)
                assert atm.current() is None

        asyncio.run(begin_commit())
    finally:
        bouncer.start()
    with psycopg.connect(fresh_owner_db, autocommit=True) as conn:  # no transaction left open
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state LIKE 'idle in%%'",
            (fresh_name,),
        ).fetchone()
        assert row == (0,)


def test_the_pooler_settings_and_their_environment() -> None:
    url = "postgresql://app@127.0.0.1:6432/app"
    env = {"LLMCP_DATABASE_URL": url, "LLMCP_POOLER": "Transaction"}
    config = DatabaseConfig.from_env(env | {"LLMCP_POOLER_PREPARED_STATEMENTS": "true"})
    assert (config.pooler, config.pooler_prepared_statements) == ("transaction", True)
    assert DatabaseConfig.from_env(env).pooler_prepared_statements is False
    assert (
        DatabaseConfig.from_env({"LLMCP_DATABASE_URL": url, "LLMCP_POOLER": "none"}).pooler is None
    )
    wrong: list[dict[str, Any]] = [
        {"pooler": "session"},
        {"pooler_prepared_statements": True},  # without a pooler
    ]
    for fields in wrong:
        with pytest.raises(ValidationError):
            DatabaseConfig(url=url, **fields)
    with pytest.raises(ValidationError):
        DatabaseConfig.from_env(env | {"LLMCP_POOLER_PREPARED_STATEMENTS": "maybe"})
    assert "pooler='transaction'" in repr(config)
