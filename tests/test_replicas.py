"""Read routing on two local servers (an embedded primary and its streaming standby):
stale-tolerant reads go to the replica only when the caller allows it, never inside
a transaction, never after the context wrote; a replica that is down or drops its
connections is skipped for the primary. All as the application role.

Pausing the standby's replay (``pg_wal_replay_pause()``, as its superuser) makes
which server answered visible: a row created meanwhile is on the primary only.
Each scenario runs in a context of its own (``copy_context().run``), as a request
does in its task."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
import pytest

from llmcp import routing
from llmcp.config import DatabaseConfig
from llmcp.errors import ValidationError
from llmcp.factory import RepositoryFactory
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import AuditAction
from llmcp.inputs import NewApplication, NewAuditLog, NewOrganization
from tests.replication import Pair, primary_and_standby

T = TypeVar("T")


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with primary_and_standby() as servers:
        yield servers


@pytest.fixture(scope="module")
def factory(pair: Pair) -> Iterator[RepositoryFactory]:
    config = DatabaseConfig(
        url=pair.app_url(pair.primary), replica_urls=(pair.app_url(pair.standby),),
        min_size=1, max_size=4, replica_retry_after=0.2,
    )  # fmt: skip
    with RepositoryFactory.connect(config) as opened:
        yield opened


def _fresh(fn: Callable[[], T]) -> T:
    """``fn()`` in a new context: a request of its own, nothing written yet (a copy of
    the test's context, which other tests' writes marked, so the mark is dropped)."""

    def request() -> T:
        routing.forget_writes()
        return fn()

    return contextvars.copy_context().run(request)


def _replay(pair: Pair, *, paused: bool) -> None:
    with psycopg.connect(pair.owner_url(pair.standby), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


def _slug() -> str:
    return f"o-{uuid.uuid4().hex[:12]}"


def test_stale_ok_lists_go_to_the_replica_and_the_rest_to_the_primary(
    pair: Pair, factory: RepositoryFactory
) -> None:
    repos, tx = factory.repositories(), factory.transaction_manager()
    _replay(pair, paused=True)
    try:
        org = _fresh(lambda: repos.organizations.create(NewOrganization(name="N", slug=_slug())))

        def listed(*, stale: bool) -> bool:
            with tx.stale_ok(stale):
                return org.id in {o.id for o in repos.organizations.list(limit=1000)}

        assert not _fresh(lambda: listed(stale=True)), "a stale-ok list went to the primary"
        assert _fresh(lambda: listed(stale=False)), "a list without stale_ok used the replica"

        def in_a_transaction() -> bool:
            with tx.stale_ok(), tx.transaction(read_only=True):
                return org.id in {o.id for o in repos.organizations.list(limit=1000)}

        assert _fresh(in_a_transaction), "a read inside a transaction went to the replica"

        def point_lookup() -> bool:  # get_by_id is never stale
            with tx.stale_ok():
                return repos.organizations.get_by_id(org.id) == org

        assert _fresh(point_lookup)
    finally:
        _replay(pair, paused=False)


def test_after_a_write_the_context_reads_its_writes_even_with_replay_stopped(
    pair: Pair, factory: RepositoryFactory
) -> None:
    repos, tx = factory.repositories(), factory.transaction_manager()
    _replay(pair, paused=True)
    try:

        def create_then_list() -> tuple[bool, bool]:
            org = repos.organizations.create(NewOrganization(name="W", slug=_slug()))
            app = repos.applications.create(
                NewApplication(org_id=org.id, name="a", api_key_hash="ab" * 32)
            )
            with tx.stale_ok():
                orgs = {o.id for o in repos.organizations.list(limit=1000)}
                apps = {a.id for a in repos.applications.get_by_org_id(org.id)}
            return org.id in orgs, app.id in apps

        assert _fresh(create_then_list) == (True, True)

        def forgotten() -> bool:  # tx.forget_writes(): the replica again
            org = repos.organizations.create(NewOrganization(name="F", slug=_slug()))
            tx.forget_writes()
            with tx.stale_ok():
                return org.id in {o.id for o in repos.organizations.list(limit=1000)}

        assert not _fresh(forgotten)
    finally:
        _replay(pair, paused=False)


def test_500_create_then_list_in_a_context_miss_nothing(
    pair: Pair, factory: RepositoryFactory
) -> None:
    """With replay running: the promise holds under real (small) lag, and the same
    reads made from a context that did not write show what it prevents."""
    repos, tx = factory.repositories(), factory.transaction_manager()
    misses = baseline_misses = 0
    started = time.perf_counter()
    for _ in range(500):

        def request() -> tuple[bool, uuid.UUID]:
            org = repos.organizations.create(NewOrganization(name="R", slug=_slug()))
            with tx.stale_ok():
                return org.id in {o.id for o in repos.organizations.list(limit=5)}, org.id

        seen, org_id = _fresh(request)
        misses += not seen

        def other_request(org_id: uuid.UUID) -> bool:  # a context that did not write
            with tx.stale_ok():
                return org_id in {o.id for o in repos.organizations.list(limit=5)}

        baseline_misses += not _fresh(functools.partial(other_request, org_id))
    elapsed = time.perf_counter() - started
    print(f"\nread-your-writes: 0 of 500 promised, {misses} missed; the same list from a "
          f"context that did not write missed {baseline_misses} of 500 "
          f"(replica, right after the create); {elapsed:.2f} s")  # fmt: skip
    assert misses == 0


def test_the_replica_serves_the_reads_seen_on_the_standby(
    pair: Pair, factory: RepositoryFactory
) -> None:
    repos, tx = factory.repositories(), factory.transaction_manager()
    org = _fresh(lambda: repos.organizations.create(NewOrganization(name="S", slug=_slug())))
    pair.replay_caught_up()

    def reads() -> None:
        with tx.stale_ok():
            for _ in range(20):
                repos.inference_requests.get_by_org_id(org.id)

    _fresh(reads)
    with psycopg.connect(pair.owner_url(pair.standby), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE usename = current_user OR usename = %s",
            ("llmcp_test_app",),
        ).fetchall()
    assert any("FROM inference_requests" in str(row[0]) for row in rows)
    health = factory.database.health_check()
    assert [(r.index, r.ok) for r in health.replicas] == [(0, True)]


def test_a_replica_that_drops_its_connections_or_stops_is_skipped(
    pair: Pair, factory: RepositoryFactory
) -> None:
    repos, tx = factory.repositories(), factory.transaction_manager()
    org = _fresh(lambda: repos.organizations.create(NewOrganization(name="D", slug=_slug())))
    pair.replay_caught_up()

    def stale_list() -> bool:
        with tx.stale_ok():
            return org.id in {o.id for o in repos.organizations.list(limit=1000)}

    assert _fresh(stale_list)
    with psycopg.connect(pair.owner_url(pair.standby), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE usename = 'llmcp_test_app'")  # fmt: skip
    assert _fresh(stale_list)  # the dead connection is replaced, or the primary answers
    pair.standby.stop("immediate")
    try:
        for _ in range(20):  # every read answered: by the primary while the replica is away
            assert _fresh(stale_list)
        assert [r.ok for r in factory.database.health_check().replicas] == [False]
    finally:
        pair.standby.restart_stopped()
    pair.replay_caught_up()
    deadline = time.monotonic() + 10
    while not all(r.ok for r in factory.database.health_check().replicas):
        assert time.monotonic() < deadline, "the replica did not come back"
        time.sleep(0.05)


def test_synchronous_commit_is_set_for_single_writes_transactions_and_the_writer(
    pair: Pair,
) -> None:
    """``synchronous_commit='remote_apply'`` with replay paused: each kind of commit waits
    for the standby (seen on the primary: wait event ``SyncRep``) until replay resumes,
    which only that level does (the test servers run with ``synchronous_commit=off``)."""
    config = DatabaseConfig(url=pair.app_url(pair.primary), synchronous_commit="remote_apply",
                            min_size=1, max_size=4)  # fmt: skip
    pair.set_synchronous(True)
    try:
        with RepositoryFactory.connect(config) as factory:
            repos, tx = factory.repositories(), factory.transaction_manager()
            org = repos.organizations.create(NewOrganization(name="Y", slug=_slug()))

            def single() -> None:
                repos.organizations.create(NewOrganization(name="s", slug=_slug()))

            def in_a_transaction() -> None:
                with tx.transaction():
                    repos.organizations.create(NewOrganization(name="t", slug=_slug()))

            def by_the_writer() -> None:
                repos.audit_logs.async_insert(
                    NewAuditLog(
                        org_id=org.id, action=AuditAction.USER_CREATED, resource_type="user"
                    )
                )
                assert not repos.audit_logs.writer.flush(timeout=60)

            for write in (single, in_a_transaction, by_the_writer):
                _replay(pair, paused=True)
                try:
                    worker = threading.Thread(target=write)
                    worker.start()
                    _wait_for_sync_rep_wait(pair)
                finally:
                    _replay(pair, paused=False)
                worker.join(timeout=60)
                assert not worker.is_alive()
    finally:
        pair.set_synchronous(False)


def _wait_for_sync_rep_wait(pair: Pair) -> None:
    """Until a backend of the application role on the primary waits for the standby."""
    deadline = time.monotonic() + 30
    with psycopg.connect(pair.owner_url(pair.primary), autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE usename = 'llmcp_test_app' AND wait_event = 'SyncRep'"
            ).fetchone()
            if row and row[0]:
                return
            assert time.monotonic() < deadline, "no commit waited for the standby"
            time.sleep(0.01)


async def test_each_task_reads_its_own_writes_and_only_its_own(pair: Pair) -> None:
    """The async API: a task that wrote reads from the primary; a sibling task started
    from the same parent (which wrote nothing) still reads the replica."""
    config = DatabaseConfig(url=pair.app_url(pair.primary), min_size=1, max_size=4,
                            replica_urls=(pair.app_url(pair.standby),))  # fmt: skip
    async with await AsyncRepositoryFactory.connect(config) as factory:
        repos, tx = factory.repositories(), factory.transaction_manager()
        tx.forget_writes()  # the test's context is a copy of one that wrote (other tests)
        _replay(pair, paused=True)
        try:
            created = asyncio.Event()
            slug = _slug()

            async def writer_task() -> bool:
                await repos.organizations.create(NewOrganization(name="A", slug=slug))
                created.set()
                with tx.stale_ok():
                    return slug in {o.slug for o in await repos.organizations.list(limit=1000)}

            async def sibling_task() -> bool:
                await created.wait()
                with tx.stale_ok():
                    return slug in {o.slug for o in await repos.organizations.list(limit=1000)}

            mine, sibling = await asyncio.gather(writer_task(), sibling_task())
            assert (mine, sibling) == (True, False)
        finally:
            _replay(pair, paused=False)


def test_replica_urls_from_the_environment_masked_and_checked() -> None:
    first = "postgresql://svc:Replica-pw-1@db2:5432,db3:5432/llmcp?sslmode=require"
    second = "postgresql://svc:Replica-pw-2@db4/llmcp"
    env = {"LLMCP_DATABASE_URL": "postgresql://svc@db1/llmcp",
           "LLMCP_REPLICA_URLS": f" {first}\n{second} ", "LLMCP_SYNCHRONOUS_COMMIT": "on"}  # fmt: skip
    config = DatabaseConfig.from_env(env)
    assert config.replica_urls == (first, second)  # a comma stays inside its URL
    assert config.synchronous_commit == "on"
    shown = repr(config)
    assert "Replica-pw" not in shown and "db2:5432,db3:5432" in shown
    with pytest.raises(ValidationError, match="synchronous_commit"):
        DatabaseConfig(url="postgresql://db1/x", synchronous_commit="always")
    with pytest.raises(ValidationError, match="replica_urls"):
        DatabaseConfig(url="postgresql://db1/x", replica_urls=first)  # type: ignore[arg-type]
