"""Tenant-scoped calls through the adapter (llmcp.pipelined), on the migrated schema.

Each call runs as one pipeline on the connection: ``set_config('llmcp.org_id',
..., true)`` then the statement, one Sync. The queries are called directly, as
a member of ``llmcp_app`` (the role row-level security applies to), inside
``tenancy.scoped(...)``: a scoped call sees its tenant's rows only, an unscoped
one none; the setting lasts as long as the statement's transaction; errors
surface as psycopg's own and leave the connection usable; prepared statements
that vanished or whose plan changed are prepared again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import errors, pq

from llmcp import pipelined, tenancy
from llmcp.generated.applications import ApplicationsQueries, AsyncApplicationsQueries
from llmcp.generated.models import Application

Conn = psycopg.Connection[Any]
AConn = psycopg.AsyncConnection[Any]

_SETTING = "SELECT current_setting('llmcp.org_id', true)"


def key_hash() -> str:
    return uuid.uuid4().hex * 2  # 64 lowercase hex digits


class Tenants:
    """Two organizations with two applications each, made as the owner."""

    def __init__(self, owner: Conn) -> None:
        self.orgs = [uuid.uuid4(), uuid.uuid4()]
        self.apps: dict[uuid.UUID, list[uuid.UUID]] = {}
        for n, org in enumerate(self.orgs):
            owner.execute(
                "INSERT INTO organizations (id, name, slug) VALUES (%s, %s, %s)",
                (org, f"Org {n}", f"org-{n}-{org.hex[:8]}"),
            )
            self.apps[org] = [uuid.uuid4(), uuid.uuid4()]
            for m, app in enumerate(self.apps[org]):
                owner.execute(
                    "INSERT INTO applications (id, org_id, name, api_key_hash)"
                    " VALUES (%s, %s, %s, %s)",
                    (app, org, f"App {n}.{m}", key_hash()),
                )

    def org_of(self, app: uuid.UUID) -> uuid.UUID:
        """The organization that owns ``app`` (made here or by a test)."""
        return next((org for org, apps in self.apps.items() if app in apps), self.orgs[0])


@pytest.fixture
def owner(fresh_owner_db: str) -> Iterator[Conn]:
    """The fresh database as its owner, who makes the rows (row-level security aside)."""
    with psycopg.connect(fresh_owner_db, autocommit=True) as conn:
        yield conn


@pytest.fixture
def tenants(owner: Conn) -> Tenants:
    return Tenants(owner)


@pytest.fixture
def app_url(fresh_db: str, owner: Conn) -> str:
    """The fresh database as the test harness's login role, a member of llmcp_app."""
    return fresh_db


@pytest.fixture
def app_conn(app_url: str) -> Iterator[Conn]:
    with psycopg.connect(app_url, autocommit=True) as conn:
        yield conn


@contextmanager
def tenant(org: uuid.UUID) -> Iterator[None]:
    with tenancy.scoped(tenancy.ORG_ID, str(org)):
        yield


def clean(conn: Conn | AConn) -> None:
    """Not in a pipeline, not in a transaction, not closed."""
    assert not conn.closed
    assert conn.pgconn.pipeline_status == pq.PipelineStatus.OFF
    assert conn.info.transaction_status == pq.TransactionStatus.IDLE


def setting(conn: Conn) -> str | None:
    row = conn.execute(_SETTING).fetchone()
    assert row is not None
    value: str | None = row[0]
    return value or None  # a custom setting reads '' once its transaction is over


# -- sync ----------------------------------------------------------------------------


def test_a_scoped_call_sees_its_tenant_and_no_other(app_conn: Conn, tenants: Tenants) -> None:
    queries = ApplicationsQueries()
    mine, other = tenants.orgs
    with tenant(mine):
        found = queries.get_by_id(app_conn, org_id=mine, id=tenants.apps[mine][0])
        assert isinstance(found, Application) and found.org_id == mine
        assert queries.get_by_id(app_conn, org_id=other, id=tenants.apps[other][0]) is None
        listed = queries.get_by_org_id(app_conn, org_id=mine, limit=10, offset=0)
        assert sorted(a.id for a in listed) == sorted(tenants.apps[mine])
        assert queries.get_by_org_id(app_conn, org_id=other, limit=10, offset=0) == []
        assert queries.version_of(app_conn, org_id=mine, id=tenants.apps[mine][1]) == 1
        assert queries.version_of(app_conn, org_id=other, id=tenants.apps[other][1]) is None
    with tenant(other):
        assert queries.get_by_id(app_conn, org_id=mine, id=tenants.apps[mine][0]) is None
        found = queries.get_by_id(app_conn, org_id=other, id=tenants.apps[other][0])
        assert found is not None and found.org_id == other
    clean(app_conn)


def test_without_a_scope_a_call_sees_nothing(app_conn: Conn, tenants: Tenants) -> None:
    queries = ApplicationsQueries()
    for org in tenants.orgs:
        assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is None
        assert queries.get_by_org_id(app_conn, org_id=org, limit=10, offset=0) == []
        assert queries.delete(app_conn, org_id=org, id=tenants.apps[org][0]) == 0
    with tenant(tenants.orgs[0]):
        assert (
            queries.get_by_id(app_conn, org_id=tenants.orgs[0], id=tenants.apps[tenants.orgs[0]][0])
            is not None
        )


def test_the_setting_does_not_outlive_the_statement(app_conn: Conn, tenants: Tenants) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    with tenant(org):
        assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is not None
        assert setting(app_conn) is None  # plain psycopg, in the same scope: not set
    assert setting(app_conn) is None
    assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is None
    clean(app_conn)


def test_in_a_transaction_a_later_scoped_call_overrides_the_setting(
    app_conn: Conn, tenants: Tenants
) -> None:
    queries = ApplicationsQueries()
    first, second = tenants.orgs
    with app_conn.transaction():
        with tenant(first):
            assert queries.get_by_id(app_conn, org_id=first, id=tenants.apps[first][0]) is not None
        assert setting(app_conn) == str(first)  # transaction-local: until the transaction ends
        with tenant(second):
            assert queries.get_by_id(app_conn, org_id=first, id=tenants.apps[first][0]) is None
            assert (
                queries.get_by_id(app_conn, org_id=second, id=tenants.apps[second][0]) is not None
            )
        assert setting(app_conn) == str(second)
    assert setting(app_conn) is None
    clean(app_conn)


def test_writes_are_checked_against_the_tenant(app_conn: Conn, tenants: Tenants) -> None:
    queries = ApplicationsQueries()
    mine, other = tenants.orgs
    with tenant(mine):
        made = queries.create(app_conn, id=uuid.uuid4(), org_id=mine, name="New",
                              description=None, api_key_hash=key_hash(), created_at=None)  # fmt: skip
        assert made.org_id == mine and made.version == 1
        with pytest.raises(errors.InsufficientPrivilege) as refused:  # WITH CHECK of the policy
            queries.create(app_conn, id=uuid.uuid4(), org_id=other, name="Not mine",
                           description=None, api_key_hash=key_hash(), created_at=None)  # fmt: skip
        assert refused.value.sqlstate == "42501"
        clean(app_conn)
        updated = queries.update(app_conn, org_id=made.org_id, id=made.id, version=1, name="Renamed",
                                 description="d", api_key_hash=made.api_key_hash)  # fmt: skip
        assert updated is not None and updated.name == "Renamed" and updated.version == 2
        assert queries.delete(app_conn, org_id=other, id=tenants.apps[other][0]) == 0
        assert queries.delete(app_conn, org_id=made.org_id, id=made.id) == 1
    clean(app_conn)


def test_a_unique_violation_is_psycopgs_and_the_connection_is_reusable(
    app_conn: Conn, tenants: Tenants
) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    with tenant(org):
        taken = queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0])
        assert taken is not None
        for _ in range(2):  # the first Parse, then the prepared statement
            with pytest.raises(errors.UniqueViolation) as failed:
                queries.create(app_conn, id=uuid.uuid4(), org_id=org, name="Twin",
                               description=None, api_key_hash=taken.api_key_hash,
                               created_at=None)  # fmt: skip
            assert failed.value.sqlstate == "23505"
            assert failed.value.diag.constraint_name == "applications_api_key_hash_key"
            assert failed.value.diag.table_name == "applications"
            clean(app_conn)
            assert queries.get_by_id(app_conn, org_id=taken.org_id, id=taken.id) == taken


def test_bad_data_is_psycopgs_error(app_conn: Conn, tenants: Tenants) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    with tenant(org):
        with pytest.raises(errors.CheckViolation) as check:
            queries.create(app_conn, id=uuid.uuid4(), org_id=org, name="",
                           description=None, api_key_hash=key_hash(), created_at=None)  # fmt: skip
        assert check.value.diag.constraint_name == "applications_name_check"
        clean(app_conn)
        with pytest.raises(errors.InvalidTextRepresentation):
            queries.get_by_id(app_conn, org_id=org, id="not a uuid")  # type: ignore[arg-type]
        clean(app_conn)
        assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is not None
    # the policy's cast fails
    with (
        tenancy.scoped(tenancy.ORG_ID, "not a uuid"),
        pytest.raises(errors.InvalidTextRepresentation),
    ):
        queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0])
    clean(app_conn)


def test_an_error_in_the_setting_is_raised_and_the_statement_not_run(
    app_conn: Conn, tenants: Tenants
) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    with tenancy.scoped("no_dot_in_this_name", "x"), pytest.raises(errors.UndefinedObject):
        queries.delete(app_conn, org_id=org, id=tenants.apps[org][0])
    clean(app_conn)
    with tenant(org):
        assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is not None


def test_an_error_in_a_transaction_rolls_it_back(app_conn: Conn, tenants: Tenants) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    with tenant(org):
        made_id = uuid.uuid4()
        with pytest.raises(errors.CheckViolation), app_conn.transaction():
            queries.create(app_conn, id=made_id, org_id=org, name="Kept?",
                           description=None, api_key_hash=key_hash(), created_at=None)  # fmt: skip
            queries.create(app_conn, id=uuid.uuid4(), org_id=org, name="",
                           description=None, api_key_hash=key_hash(), created_at=None)  # fmt: skip
        clean(app_conn)
        assert queries.get_by_id(app_conn, org_id=org, id=made_id) is None
        assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is not None


def test_statements_are_prepared_once_per_connection(app_conn: Conn, tenants: Tenants) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    with tenant(org):
        for app in tenants.apps[org] * 3:
            assert queries.get_by_id(app_conn, org_id=tenants.org_of(app), id=app) is not None
    names = [r[0] for r in app_conn.execute("SELECT name FROM pg_prepared_statements")]
    ours = sorted(n for n in names if n.startswith("_llmcp_"))
    assert ours == ["_llmcp_1", "_llmcp_2"], names  # set_config and get_by_id


def test_statements_that_vanished_are_prepared_again(app_conn: Conn, tenants: Tenants) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    with tenant(org):
        assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is not None
        app_conn.execute("DISCARD ALL")
        assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is not None
        app_conn.execute("DEALLOCATE ALL")
        assert queries.version_of(app_conn, org_id=org, id=tenants.apps[org][1]) == 1
        assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is not None
    clean(app_conn)


def test_beyond_the_cap_the_least_recently_used_statement_is_closed(
    app_conn: Conn, tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    app = tenants.apps[org][0]
    monkeypatch.setattr(pipelined, "MAX_STATEMENTS", 2)

    def ours() -> list[str]:
        rows = app_conn.execute("SELECT statement FROM pg_prepared_statements").fetchall()
        return sorted(r[0] for r in rows)

    with tenant(org):
        assert (
            queries.get_by_id(app_conn, org_id=tenants.org_of(app), id=app) is not None
        )  # set_config, get_by_id
        assert (
            queries.version_of(app_conn, org_id=tenants.org_of(app), id=app) == 1
        )  # get_by_id evicted
        statements = ours()  # get_by_id is closed with the next exchange
        assert len(statements) == 3 and any("SELECT\n    id," in s for s in statements)
        assert queries.version_of(app_conn, org_id=tenants.org_of(app), id=app) == 1
        statements = ours()
        assert len(statements) == 2 and not any("SELECT\n    id," in s for s in statements)
        app_conn.execute("DISCARD ALL")  # what is due to be closed may be gone already
        assert queries.get_by_id(app_conn, org_id=tenants.org_of(app), id=app) is not None
        assert queries.get_by_id(app_conn, org_id=tenants.org_of(app), id=app) is not None
    clean(app_conn)


def test_a_plan_whose_result_type_changed_is_prepared_again(
    owner: Conn, app_conn: Conn, tenants: Tenants
) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    app = tenants.apps[org][0]
    with tenant(org):
        assert queries.get_by_id(app_conn, org_id=tenants.org_of(app), id=app) is not None
        owner.execute("ALTER TABLE applications ALTER COLUMN description TYPE varchar(2000)")
        found = queries.get_by_id(
            app_conn, org_id=tenants.org_of(app), id=app
        )  # retried once, transparently
        assert found is not None and found.id == app
        # in an explicit transaction the error is psycopg's (as with its own prepared
        # statements) and the transaction rolls back; the next call prepares afresh
        owner.execute("ALTER TABLE applications ALTER COLUMN description TYPE text")
        with pytest.raises(errors.FeatureNotSupported), app_conn.transaction():
            queries.get_by_id(app_conn, org_id=tenants.org_of(app), id=app)
        clean(app_conn)
        assert queries.get_by_id(app_conn, org_id=tenants.org_of(app), id=app) is not None


@pytest.mark.direct_connection(reason="terminates its backend by the client's backend_pid")
def test_a_lost_server_closes_the_connection(owner: Conn, app_conn: Conn, tenants: Tenants) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    with tenant(org):
        assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is not None
        owner.execute("SELECT pg_terminate_backend(%s)", (app_conn.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError):
            queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0])
    assert app_conn.closed


def test_a_keyboard_interrupt_cancels_the_statement(
    owner: Conn, app_conn: Conn, tenants: Tenants, fresh_owner_db: str
) -> None:
    """Ctrl-C while the server runs the statement: psycopg's wait() cancels it on the
    server and reads the exchange to its end, so the connection stays clean (had the
    exchange not ended, the connection would be closed)."""
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    pid = app_conn.info.backend_pid
    adapter: Any = queries._queries.driver_adapter

    def interrupt_when_sleeping() -> None:
        with psycopg.connect(fresh_owner_db, autocommit=True) as watcher:  # with its password
            for _ in range(1000):
                row = watcher.execute(
                    "SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                if row and row[0] == "PgSleep":
                    break
                threading.Event().wait(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    with tenant(org):
        assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is not None
        thread = threading.Thread(target=interrupt_when_sleeping)
        thread.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                adapter.select_value(app_conn, "sleep", "SELECT pg_sleep(%(s)s)", {"s": 30})
        finally:
            thread.join()
    assert not app_conn.closed
    clean(app_conn)
    with tenant(org):
        assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is not None


def test_an_exchange_interrupted_midway_closes_the_connection(
    app_conn: Conn, tenants: Tenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted with the pipeline's results unread: the connection's state is
    unknown, so it is closed (a pool then discards it)."""
    queries = ApplicationsQueries()
    org = tenants.orgs[0]

    def interrupted(pgconn: Any) -> Any:
        raise KeyboardInterrupt
        yield  # a generator, as psycopg's fetch_many

    monkeypatch.setattr(pipelined, "fetch_many", interrupted)
    with tenant(org), pytest.raises(KeyboardInterrupt):
        queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0])
    assert app_conn.closed


def test_without_prepared_statements_a_call_is_still_one_exchange(
    app_conn: Conn, tenants: Tenants
) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    app_conn.prepare_threshold = None  # psycopg's switch for poolers without them
    with tenant(org):
        for app in tenants.apps[org] * 2:
            assert queries.get_by_id(app_conn, org_id=tenants.org_of(app), id=app) is not None
        assert (
            queries.get_by_id(app_conn, org_id=tenants.orgs[1], id=tenants.apps[tenants.orgs[1]][0])
            is None
        )
        with pytest.raises(errors.CheckViolation):
            queries.create(app_conn, id=uuid.uuid4(), org_id=org, name="",
                           description=None, api_key_hash=key_hash(), created_at=None)  # fmt: skip
        clean(app_conn)
    assert app_conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)


def test_calls_from_threads_sharing_a_connection_keep_their_tenant(
    app_conn: Conn, tenants: Tenants
) -> None:
    queries = ApplicationsQueries()
    seen: dict[uuid.UUID, set[uuid.UUID]] = {}

    def work(org: uuid.UUID) -> None:
        found: set[uuid.UUID] = set()
        with tenant(org):
            for _ in range(100):
                for other in tenants.orgs:
                    for app in queries.get_by_org_id(app_conn, org_id=other, limit=10, offset=0):
                        found.add(app.org_id)
        seen[org] = found

    threads = [threading.Thread(target=work, args=(org,)) for org in tenants.orgs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {org: {org} for org in tenants.orgs}
    clean(app_conn)


def test_inside_a_pipeline_psycopgs_path_is_taken(app_conn: Conn, tenants: Tenants) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    with tenant(org), app_conn.pipeline():
        assert not pipelined.usable(app_conn)
        assert queries.get_by_id(app_conn, org_id=org, id=tenants.apps[org][0]) is not None
    clean(app_conn)


def test_a_connection_out_of_autocommit(app_url: str, tenants: Tenants) -> None:
    queries = ApplicationsQueries()
    org = tenants.orgs[0]
    with psycopg.connect(app_url) as conn, tenant(org):
        # idle: psycopg's path (it sends BEGIN); in the transaction: the pipeline
        assert queries.get_by_id(conn, org_id=org, id=tenants.apps[org][0]) is not None
        assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
        assert pipelined.usable(conn)
        assert queries.get_by_id(conn, org_id=org, id=tenants.apps[org][1]) is not None
        assert (
            queries.get_by_id(conn, org_id=tenants.orgs[1], id=tenants.apps[tenants.orgs[1]][0])
            is None
        )
        conn.rollback()


# -- async ---------------------------------------------------------------------------


@asynccontextmanager
async def aconnect(url: str) -> AsyncIterator[AConn]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        yield conn


async def asetting(conn: AConn) -> str | None:
    row = await (await conn.execute(_SETTING)).fetchone()
    assert row is not None
    value: str | None = row[0]
    return value or None


async def test_async_a_scoped_call_sees_its_tenant_and_no_other(
    app_url: str, tenants: Tenants
) -> None:
    queries = AsyncApplicationsQueries()
    mine, other = tenants.orgs
    async with aconnect(app_url) as conn:
        assert (
            await queries.get_by_id(conn, org_id=mine, id=tenants.apps[mine][0]) is None
        )  # unscoped
        with tenant(mine):
            found = await queries.get_by_id(conn, org_id=mine, id=tenants.apps[mine][0])
            assert found is not None and found.org_id == mine
            assert await queries.get_by_id(conn, org_id=other, id=tenants.apps[other][0]) is None
            listed = await queries.get_by_org_id(conn, org_id=mine, limit=10, offset=0)
            assert sorted(a.id for a in listed) == sorted(tenants.apps[mine])
            assert await queries.version_of(conn, org_id=other, id=tenants.apps[other][1]) is None
            assert await asetting(conn) is None
        async with conn.transaction():
            with tenant(mine):
                assert (
                    await queries.get_by_id(conn, org_id=mine, id=tenants.apps[mine][0]) is not None
                )
            assert await asetting(conn) == str(mine)
            with tenant(other):
                assert await queries.get_by_id(conn, org_id=mine, id=tenants.apps[mine][0]) is None
                assert (
                    await queries.get_by_id(conn, org_id=other, id=tenants.apps[other][0])
                    is not None
                )
            assert await asetting(conn) == str(other)
        assert await asetting(conn) is None
        clean(conn)


async def test_async_errors_are_psycopgs_and_the_connection_is_reusable(
    app_url: str, tenants: Tenants
) -> None:
    queries = AsyncApplicationsQueries()
    org = tenants.orgs[0]
    async with aconnect(app_url) as conn:
        with tenant(org):
            taken = await queries.get_by_id(conn, org_id=org, id=tenants.apps[org][0])
            assert taken is not None
            with pytest.raises(errors.UniqueViolation) as failed:
                await queries.create(conn, id=uuid.uuid4(), org_id=org, name="Twin",
                                     description=None, api_key_hash=taken.api_key_hash,
                                     created_at=None)  # fmt: skip
            assert failed.value.diag.constraint_name == "applications_api_key_hash_key"
            clean(conn)
            with pytest.raises(errors.CheckViolation):
                await queries.create(conn, id=uuid.uuid4(), org_id=org, name="",
                                     description=None, api_key_hash=key_hash(),
                                     created_at=None)  # fmt: skip
            clean(conn)
            await conn.execute("DISCARD ALL")
            assert await queries.get_by_id(conn, org_id=taken.org_id, id=taken.id) == taken
            made = await queries.create(conn, id=uuid.uuid4(), org_id=org, name="New",
                                        description=None, api_key_hash=key_hash(),
                                        created_at=None)  # fmt: skip
            assert await queries.delete(conn, org_id=made.org_id, id=made.id) == 1
        clean(conn)


async def test_async_a_cancelled_scoped_call_is_cancelled_on_the_server(
    owner: Conn, app_url: str, tenants: Tenants
) -> None:
    queries = AsyncApplicationsQueries()
    org = tenants.orgs[0]
    app = tenants.apps[org][0]
    async with aconnect(app_url) as conn:
        with tenant(org):
            before = await queries.get_by_id(conn, org_id=tenants.org_of(app), id=app)
            assert before is not None
            with owner.transaction():
                owner.execute("SELECT 1 FROM applications WHERE id = %s FOR UPDATE", (app,))
                renamed = queries.update(conn, org_id=tenants.org_of(app), id=app, version=1, name="Cancelled",
                                         description=None, api_key_hash=before.api_key_hash)  # fmt: skip
                update = asyncio.create_task(renamed)
                for _ in range(1000):
                    row = owner.execute(
                        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                        (conn.info.backend_pid,),
                    ).fetchone()
                    if row and row[0] == "Lock":
                        break
                    await asyncio.sleep(0.01)
                update.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await update
            # the lock is gone: an UPDATE still waiting on the server would happen now
            if not conn.closed:
                clean(conn)
                assert await queries.get_by_id(conn, org_id=tenants.org_of(app), id=app) == before
        row = owner.execute("SELECT name FROM applications WHERE id = %s", (app,)).fetchone()
        assert row == (before.name,)
