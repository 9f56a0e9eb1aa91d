"""Transactions: commit, rollback, savepoints, begin(), options, retry, visibility."""

from __future__ import annotations

import dataclasses
import threading
import time

import msgspec
import psycopg
import pytest

from llmcp import routing
from llmcp.config import DatabaseConfig
from llmcp.errors import (
    CommitOutcomeUnknownError,
    ConflictError,
    DatabaseUnavailableError,
    LlmcpError,
    TransactionError,
    ValidationError,
)
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import Organization
from llmcp.transactions_async import AsyncTransaction
from llmcp.transactions_base import IsolationLevel
from tests.repositories.helpers_async import (
    count_rows,
    make_app,
    make_org,
    terminate_backends,
    token,
)


class Boom(Exception):
    """An error of the caller's own, raised inside a transaction."""


async def show(transaction: AsyncTransaction, setting: str) -> str:
    cursor = await transaction.connection.execute(f"SHOW {setting}")
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def test_a_block_commits_when_it_ends(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        assert tm.current() is None
        async with tm.transaction() as transaction:
            assert tm.current() is transaction
            org = await make_org(arepos)
            app = await make_app(arepos, org.id)
            # every call of the block runs on the transaction's connection
            assert await arepos.applications.get_by_id(org.id, app.id) == app
        assert tm.current() is None
        assert await arepos.organizations.get_by_id(org.id) == org
        assert await arepos.applications.get_by_id(org.id, app.id) == app


async def test_a_block_rolls_back_when_it_raises(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        kept = await make_org(arepos)
        with pytest.raises(Boom):
            block = tm.transaction()
            async with block:
                org = await make_org(arepos)
                await arepos.organizations.update(msgspec.structs.replace(kept, name="Changed"))
                assert await arepos.organizations.get_by_id(org.id) == org
                raise Boom
        assert tm.current() is None
        assert await arepos.organizations.get_by_id(org.id) is None
        assert await arepos.organizations.get_by_id(kept.id) == kept


async def test_a_failed_nested_block_rolls_back_only_itself(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        taken = await make_org(arepos)
        async with tm.transaction() as outer:
            before = await make_org(arepos)
            with pytest.raises(Boom):
                savepoint = tm.transaction()
                async with savepoint as inner:
                    assert inner is outer  # a savepoint of the same transaction
                    inside = await make_org(arepos)
                    raise Boom
            # a database error inside a savepoint: the transaction goes on
            with pytest.raises(ConflictError):
                savepoint = tm.transaction()
                async with savepoint:
                    await make_org(arepos, slug=taken.slug)
            async with tm.transaction():
                nested_ok = await make_org(arepos)
            after = await make_org(arepos)
        for org in (before, nested_ok, after):
            assert await arepos.organizations.get_by_id(org.id) == org
        assert await arepos.organizations.get_by_id(inside.id) is None


async def test_an_outer_rollback_undoes_committed_savepoints(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        with pytest.raises(Boom):
            block = tm.transaction()
            async with block:
                async with tm.transaction():
                    org = await make_org(arepos)
                raise Boom
        assert await arepos.organizations.get_by_id(org.id) is None


async def test_in_transaction_returns_the_value_or_reraises(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        made: list[Organization] = []

        async def create(transaction: AsyncTransaction) -> Organization:
            assert tm.current() is transaction
            made.append(await make_org(arepos))
            return made[-1]

        async def create_then_fail(transaction: AsyncTransaction) -> Organization:
            await create(transaction)
            raise Boom

        org = await tm.in_transaction(create)
        assert org == made[0]
        assert await arepos.organizations.get_by_id(org.id) == org
        with pytest.raises(Boom):
            await tm.in_transaction(create_then_fail)
        assert len(made) == 2
        assert await arepos.organizations.get_by_id(made[1].id) is None
        assert tm.current() is None


async def test_begin_then_commit_or_rollback(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()

        transaction = await tm.begin()
        assert tm.current() is transaction
        committed = await make_org(arepos)
        await transaction.commit()
        assert tm.current() is None
        assert await arepos.organizations.get_by_id(committed.id) == committed

        transaction = await tm.begin()
        rolled_back = await make_org(arepos)
        await transaction.rollback()
        assert tm.current() is None
        assert await arepos.organizations.get_by_id(rolled_back.id) is None

        # finished is finished
        with pytest.raises(TransactionError):
            await transaction.commit()
        with pytest.raises(TransactionError):
            await transaction.rollback()


async def test_begin_as_a_context_manager(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        async with await tm.begin():
            committed = await make_org(arepos)
        with pytest.raises(Boom):
            transaction = await tm.begin()
            async with transaction:
                rolled_back = await make_org(arepos)
                raise Boom
        assert tm.current() is None
        assert await arepos.organizations.get_by_id(committed.id) == committed
        assert await arepos.organizations.get_by_id(rolled_back.id) is None


async def test_begin_while_a_transaction_is_active_is_refused(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        transaction = await tm.begin()
        org = await make_org(arepos)
        with pytest.raises(TransactionError, match="already active"):
            await tm.begin()
        assert tm.current() is transaction  # still the same, still usable
        await transaction.commit()
        assert await arepos.organizations.get_by_id(org.id) == org

        async with tm.transaction() as block_transaction:
            assert tm.current() is block_transaction
            with pytest.raises(TransactionError, match="already active"):
                await tm.begin()
            assert tm.current() is block_transaction


async def test_a_block_transaction_is_not_finished_by_hand(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        async with tm.transaction() as transaction:
            org = await make_org(arepos)
            with pytest.raises(TransactionError, match="begin"):
                await transaction.rollback()
            with pytest.raises(TransactionError, match="begin"):
                await transaction.commit()
        assert await arepos.organizations.get_by_id(org.id) == org


async def test_isolation_level_and_read_only_apply_to_that_transaction_only(
    shared_config: DatabaseConfig,
) -> None:
    # one connection in the pool: a setting that leaked would show in the next transaction
    config = dataclasses.replace(shared_config, min_size=1, max_size=1)
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        tm = afactory.transaction_manager()
        async with tm.transaction() as transaction:
            assert await show(transaction, "transaction_isolation") == "read committed"
            assert await show(transaction, "transaction_read_only") == "off"
        for level in IsolationLevel:
            async with tm.transaction(isolation_level=level, read_only=True) as transaction:
                assert await show(transaction, "transaction_isolation") == level.value.lower()
                assert await show(transaction, "transaction_read_only") == "on"
        transaction = await tm.begin(isolation_level=IsolationLevel.SERIALIZABLE)
        assert await show(transaction, "transaction_isolation") == "serializable"
        await transaction.rollback()

        async def isolation(transaction: AsyncTransaction) -> str:
            return await show(transaction, "transaction_isolation")

        level = IsolationLevel.REPEATABLE_READ
        assert await tm.in_transaction(isolation, isolation_level=level) == "repeatable read"
        assert await tm.in_transaction(isolation) == "read committed"
        async with tm.transaction() as transaction:
            assert await show(transaction, "transaction_read_only") == "off"


async def test_options_on_a_nested_block_are_refused(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        async with tm.transaction():
            org = await make_org(arepos)
            with pytest.raises(ValidationError, match="outermost"):
                savepoint = tm.transaction(read_only=True)
                async with savepoint:
                    pass
            with pytest.raises(ValidationError, match="outermost"):
                savepoint = tm.transaction(isolation_level=IsolationLevel.SERIALIZABLE)
                async with savepoint:
                    pass
        assert await arepos.organizations.get_by_id(org.id) == org


async def test_a_write_in_a_read_only_transaction_is_a_mapped_error(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        org = await make_org(arepos)
        slug = f"read-only-{token()}"
        with pytest.raises(LlmcpError) as caught:
            block = tm.transaction(read_only=True)
            async with block:
                assert await arepos.organizations.get_by_id(org.id) == org  # reads are fine
                await make_org(arepos, slug=slug)
        assert type(caught.value) is TransactionError
        assert "ReadOnlySqlTransaction" in str(caught.value)
        assert not isinstance(caught.value, psycopg.Error)
        assert isinstance(caught.value.__cause__, psycopg.Error)
        assert await arepos.organizations.get_by_slug(slug) is None


async def test_repeatable_read_keeps_its_snapshot(shared_config: DatabaseConfig) -> None:
    async with (
        await AsyncRepositoryFactory.connect(shared_config) as afactory,
        await AsyncRepositoryFactory.connect(shared_config) as other,
    ):
        arepos, orepos = afactory.repositories(), other.repositories()
        tm = afactory.transaction_manager()
        org = await make_org(arepos)
        async with tm.transaction(isolation_level=IsolationLevel.REPEATABLE_READ):
            assert await arepos.organizations.get_by_id(org.id) == org
            changed = await orepos.organizations.update(msgspec.structs.replace(org, name="New"))
            assert await arepos.organizations.get_by_id(org.id) == org
        async with tm.transaction(isolation_level=IsolationLevel.READ_COMMITTED):
            assert await arepos.organizations.get_by_id(org.id) == changed


async def test_a_transaction_is_visible_only_inside_until_it_commits(
    shared_config: DatabaseConfig,
) -> None:
    async with (
        await AsyncRepositoryFactory.connect(shared_config) as afactory,
        await AsyncRepositoryFactory.connect(shared_config) as other,
    ):
        arepos, orepos = afactory.repositories(), other.repositories()
        tm = afactory.transaction_manager()
        existing = await make_org(arepos)
        async with tm.transaction():
            org = await make_org(arepos)
            renamed = await arepos.organizations.update(
                msgspec.structs.replace(existing, name="Renamed")
            )
            assert await arepos.organizations.get_by_id(org.id) == org
            # another factory (another pool, another manager) sees none of it yet
            assert other.transaction_manager().current() is None
            assert await orepos.organizations.get_by_id(org.id) is None
            assert await orepos.organizations.get_by_slug(org.slug) is None
            assert await orepos.organizations.get_by_id(existing.id) == existing
        assert await orepos.organizations.get_by_id(org.id) == org
        assert await orepos.organizations.get_by_id(existing.id) == renamed


async def test_retry_runs_again_after_a_retryable_error(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        attempts: list[Organization] = []

        async def flaky(transaction: AsyncTransaction) -> Organization:
            attempts.append(await make_org(arepos))
            if len(attempts) == 1:
                raise TransactionError("simulated serialization failure", retryable=True)
            return attempts[-1]

        result = await tm.retry(flaky, base_delay=0.001)
        assert len(attempts) == 2 and result == attempts[1]
        # the failed attempt was rolled back, the second one committed
        assert await arepos.organizations.get_by_id(attempts[0].id) is None
        assert await arepos.organizations.get_by_id(result.id) == result


async def test_retry_gives_up(shared_config: DatabaseConfig) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        tm = afactory.transaction_manager()
        calls: list[str] = []

        async def always(transaction: AsyncTransaction) -> None:
            calls.append("always")
            raise TransactionError("still failing", retryable=True)

        async def fatal(transaction: AsyncTransaction) -> None:
            calls.append("fatal")
            raise TransactionError("not worth retrying")

        async def other(transaction: AsyncTransaction) -> None:
            calls.append("other")
            raise Boom

        with pytest.raises(TransactionError, match="still failing"):
            await tm.retry(always, attempts=3, base_delay=0.001)
        assert calls == ["always"] * 3
        calls.clear()
        with pytest.raises(TransactionError, match="not worth retrying"):
            await tm.retry(fatal, base_delay=0.001)
        with pytest.raises(Boom):
            await tm.retry(other, base_delay=0.001)
        assert calls == ["fatal", "other"]
        calls.clear()
        # inside a transaction only the whole transaction could be retried: no retry
        async with tm.transaction() as transaction:
            assert tm.current() is transaction
            with pytest.raises(TransactionError, match="still failing"):
                await tm.retry(always, base_delay=0.001)
        assert calls == ["always"]


async def test_retry_recovers_from_a_real_serialization_failure(
    shared_config: DatabaseConfig,
) -> None:
    """A concurrent update under REPEATABLE READ: SQLSTATE 40001, mapped as retryable."""
    async with (
        await AsyncRepositoryFactory.connect(shared_config) as afactory,
        await AsyncRepositoryFactory.connect(shared_config) as other,
    ):
        arepos, orepos = afactory.repositories(), other.repositories()
        tm = afactory.transaction_manager()
        org = await make_org(arepos)
        errors: list[TransactionError] = []

        async def rename(transaction: AsyncTransaction) -> Organization:
            current = await arepos.organizations.get_by_id(org.id)  # takes the snapshot
            assert current is not None
            if not errors:  # someone else changes the row, once
                await orepos.organizations.update(msgspec.structs.replace(current, name="Other"))
            try:
                return await arepos.organizations.update(
                    msgspec.structs.replace(current, name="Mine")
                )
            except TransactionError as exc:
                errors.append(exc)
                raise

        result = await tm.retry(rename, isolation_level=IsolationLevel.REPEATABLE_READ)
        assert len(errors) == 1 and errors[0].retryable
        assert "serialization failure" in str(errors[0])
        assert (result.name, result.version) == ("Mine", 3)
        assert await orepos.organizations.get_by_id(org.id) == result


async def test_transactions_of_two_factories_do_not_mix(shared_config: DatabaseConfig) -> None:
    """Each manager keeps its own transaction, even when both are active at once."""
    async with (
        await AsyncRepositoryFactory.connect(shared_config) as afactory,
        await AsyncRepositoryFactory.connect(shared_config) as other,
    ):
        arepos, orepos = afactory.repositories(), other.repositories()
        tm, other_tm = afactory.transaction_manager(), other.transaction_manager()
        with pytest.raises(Boom):
            block = tm.transaction()
            async with block as transaction:
                async with other_tm.transaction() as other_transaction:
                    assert other_tm.current() is other_transaction
                    assert tm.current() is transaction
                    org = await make_org(arepos)  # in the first factory's transaction
                    other_org = await make_org(orepos)
                raise Boom  # the first transaction rolls back, with org
        assert await arepos.organizations.get_by_id(org.id) is None
        assert await arepos.organizations.get_by_id(other_org.id) == other_org


async def test_a_block_that_swallowed_a_database_error_does_not_report_a_commit(
    shared_config: DatabaseConfig,
) -> None:
    """After a failed statement PostgreSQL turns COMMIT into ROLLBACK: leaving the block
    normally must not pass for a commit."""
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        taken = await make_org(arepos)
        with pytest.raises(TransactionError):
            block = tm.transaction()
            async with block:
                created = await make_org(arepos)
                with pytest.raises(ConflictError):
                    await make_org(arepos, slug=taken.slug)
        assert await arepos.organizations.get_by_id(created.id) is None

        transaction = await tm.begin()
        created = await make_org(arepos)
        with pytest.raises(ConflictError):
            await make_org(arepos, slug=taken.slug)
        with pytest.raises(TransactionError):
            await transaction.commit()
        assert tm.current() is None
        assert await arepos.organizations.get_by_id(created.id) is None


async def test_a_pinned_block_takes_one_connection_for_all_its_calls(
    shared_config: DatabaseConfig,
) -> None:
    async with (
        await AsyncRepositoryFactory.connect(shared_config) as afactory,
        await AsyncRepositoryFactory.connect(shared_config) as other,
    ):
        arepos, orepos = afactory.repositories(), other.repositories()
        tm = afactory.transaction_manager()
        taken = await make_org(arepos)
        before = afactory.database.pool_stats().requests
        async with tm.pinned() as conn:
            assert tm.current() is None  # pinned, not in a transaction
            assert tm.bound_connection() is conn
            org = await make_org(arepos)
            # each call commits on its own: another pool sees the row at once
            assert await orepos.organizations.get_by_id(org.id) == org
            with pytest.raises(ConflictError):  # a failed statement spoils nothing
                await make_org(arepos, slug=taken.slug)
            app = await make_app(arepos, org.id)
            assert await arepos.applications.get_by_org_id(org.id) == [app]
            assert await arepos.organizations.get_by_id(org.id) == org
        assert afactory.database.pool_stats().requests == before + 1
        assert tm.bound_connection() is None
        await arepos.organizations.get_by_id(org.id)  # back to one checkout per call
        assert afactory.database.pool_stats().requests == before + 2


async def test_transactions_inside_a_pinned_block_run_on_its_connection(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        before = afactory.database.pool_stats().requests
        async with tm.pinned() as conn:
            with pytest.raises(Boom):
                block = tm.transaction()
                async with block as transaction:
                    assert transaction.connection is conn
                    undone = await make_org(arepos)
                    raise Boom
            async with tm.transaction(isolation_level=IsolationLevel.SERIALIZABLE) as transaction:
                assert transaction.connection is conn
                assert await show(transaction, "transaction_isolation") == "serializable"
                kept = await make_org(arepos)
            assert tm.current() is None
            async with await tm.begin() as transaction:
                assert transaction.connection is conn
                by_hand = await make_org(arepos)
            assert await arepos.organizations.get_by_id(undone.id) is None
        assert afactory.database.pool_stats().requests == before + 1
        assert await arepos.organizations.get_by_id(kept.id) == kept
        assert await arepos.organizations.get_by_id(by_hand.id) == by_hand


async def test_a_transaction_begun_in_a_pinned_block_must_end_inside_it(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        arepos = afactory.repositories()
        tm = afactory.transaction_manager()
        with pytest.raises(TransactionError, match="still open"):
            block = tm.pinned()
            async with block:
                await tm.begin()
                left_open = await make_org(arepos)
        assert tm.current() is None and tm.bound_connection() is None
        assert await arepos.organizations.get_by_id(left_open.id) is None
        assert (await afactory.database.health_check()).pool.size >= 1


async def test_pinned_inside_a_transaction_or_a_pinned_block_changes_nothing(
    shared_config: DatabaseConfig,
) -> None:
    async with (
        await AsyncRepositoryFactory.connect(shared_config) as afactory,
        await AsyncRepositoryFactory.connect(shared_config) as other,
    ):
        tm, other_tm = afactory.transaction_manager(), other.transaction_manager()
        async with tm.transaction() as transaction, tm.pinned() as conn:
            assert conn is transaction.connection
            assert tm.current() is transaction
        async with tm.pinned() as outer:
            async with tm.pinned() as inner:
                assert inner is outer
                async with other_tm.pinned() as others:  # another factory pins its own
                    assert others is not outer
                    assert tm.bound_connection() is outer
                    assert other_tm.bound_connection() is others
                assert other_tm.bound_connection() is None
            assert tm.bound_connection() is outer
        assert tm.bound_connection() is None


# -- the request scope ---------------------------------------------------------------


async def test_a_request_takes_one_connection_and_each_call_commits_on_its_own(
    shared_config: DatabaseConfig,
) -> None:
    async with (
        await AsyncRepositoryFactory.connect(shared_config) as afactory,
        await AsyncRepositoryFactory.connect(shared_config) as other,
    ):
        tm, orepos = afactory.transaction_manager(), other.repositories()
        taken = await make_org(afactory.repositories())
        before = afactory.database.pool_stats().requests
        async with afactory.request() as arepos:
            assert arepos is afactory.repositories()
            assert tm.current() is None and tm.bound_connection() is not None
            org = await make_org(arepos)
            assert await orepos.organizations.get_by_id(org.id) == org  # committed already
            with pytest.raises(ConflictError):  # a failed call spoils nothing
                await make_org(arepos, slug=taken.slug)
            app = await make_app(arepos, org.id)
            assert await arepos.applications.get_by_id(org.id, app.id) == app
        assert afactory.database.pool_stats().requests == before + 1
        assert tm.bound_connection() is None


async def test_a_request_in_a_transaction_commits_at_its_end_or_rolls_back(
    shared_config: DatabaseConfig,
) -> None:
    async with (
        await AsyncRepositoryFactory.connect(shared_config) as afactory,
        await AsyncRepositoryFactory.connect(shared_config) as other,
    ):
        tm, orepos = afactory.transaction_manager(), other.repositories()
        async with afactory.request(transaction=True, read_only=False) as arepos:
            transaction = tm.current()
            assert transaction is not None and transaction.connection is tm.bound_connection()
            kept = await make_org(arepos)
            assert await orepos.organizations.get_by_id(kept.id) is None  # not yet committed
        assert await orepos.organizations.get_by_id(kept.id) == kept
        with pytest.raises(Boom):
            scope = afactory.request(transaction=True)
            async with scope as arepos:
                undone = await make_org(arepos)
                raise Boom
        assert tm.current() is None and tm.bound_connection() is None
        assert await orepos.organizations.get_by_id(undone.id) is None
        with pytest.raises(LlmcpError):  # read-only: no write goes through
            read_only = afactory.request(transaction=True, read_only=True)
            async with read_only as arepos:
                await make_org(arepos)


async def test_a_request_inside_a_transaction_or_a_request_joins_it(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        tm = afactory.transaction_manager()
        async with tm.transaction() as transaction, afactory.request() as arepos:
            assert tm.current() is transaction
            org = await make_org(arepos)
        async with afactory.request():
            outer = tm.bound_connection()
            with pytest.raises(Boom):
                inner = afactory.request(transaction=True)  # a savepoint
                async with inner as arepos:
                    assert tm.current() is not None and tm.bound_connection() is outer
                    undone = await make_org(arepos)
                    raise Boom
            assert tm.bound_connection() is outer and tm.current() is None
        assert await arepos.organizations.get_by_id(org.id) == org
        assert await arepos.organizations.get_by_id(undone.id) is None


async def test_a_request_starts_with_a_clean_read_your_writes_mark(
    shared_config: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(shared_config) as afactory:
        await make_org(afactory.repositories())
        assert routing.wrote()
        async with afactory.request() as arepos:
            assert not routing.wrote()  # a new request: its reads may use a replica again
            await make_org(arepos)
            async with afactory.request():
                assert routing.wrote()  # nested: still the same request
        assert routing.wrote()


# -- the connection dies (a restart, a terminated backend) -------------------------


@pytest.mark.direct_connection(reason="terminates its backend by the client's backend_pid")
async def test_a_block_whose_connection_dies_raises_unavailable_and_commits_nothing(
    one_connection: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        org = await make_org(arepos)

        async def doomed(swallow: bool) -> None:
            async with tm.transaction() as transaction:
                await make_app(arepos, org.id)
                terminate_backends(one_connection.url, transaction.connection.info.backend_pid)
                try:
                    await arepos.organizations.get_by_id(org.id)
                except DatabaseUnavailableError:
                    if not swallow:
                        raise
            # swallowed: the block ends as if all went well, but cannot commit

        for swallow in (False, True):
            with pytest.raises(DatabaseUnavailableError):
                await doomed(swallow)
            assert tm.current() is None
            assert await count_rows(tm, "applications", org.id) == 0
        async with tm.transaction():  # on a new connection
            app = await make_app(arepos, org.id)
        assert await arepos.applications.get_by_id(org.id, app.id) == app


@pytest.mark.direct_connection(reason="terminates its backend by the client's backend_pid")
async def test_begin_whose_connection_dies_commits_nothing_and_rolls_back_quietly(
    one_connection: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        org = await make_org(arepos)
        for end in ("commit", "rollback"):
            transaction = await tm.begin()
            await make_app(arepos, org.id)
            terminate_backends(one_connection.url, transaction.connection.info.backend_pid)
            with pytest.raises(DatabaseUnavailableError):
                await arepos.organizations.get_by_id(org.id)
            if end == "commit":  # the work is lost, and the caller is told
                with pytest.raises(DatabaseUnavailableError):
                    await transaction.commit()
            else:  # the server rolled it back when the connection died: nothing to report
                await transaction.rollback()
            assert tm.current() is None
            assert await count_rows(tm, "applications", org.id) == 0
        assert await arepos.organizations.get_by_id(org.id) == org


@pytest.mark.direct_connection(reason="terminates its backend by the client's backend_pid")
async def test_a_pinned_connection_that_dies_fails_its_calls_then_is_replaced(
    one_connection: DatabaseConfig,
) -> None:
    async with await AsyncRepositoryFactory.connect(one_connection) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        org = await make_org(arepos)
        async with tm.pinned() as conn:
            terminate_backends(one_connection.url, conn.info.backend_pid)
            with pytest.raises(DatabaseUnavailableError):
                await arepos.organizations.get_by_id(org.id)
        assert await arepos.organizations.get_by_id(org.id) == org


_SLOW_COMMIT = """
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(60);
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON applications
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();
"""


def terminate_when_sleeping(url: str, pid: int) -> threading.Thread:
    """A thread that terminates backend ``pid`` once it sleeps (in the COMMIT's trigger)."""

    def run() -> None:
        deadline = time.monotonic() + 10
        with psycopg.connect(url, autocommit=True) as admin:
            while admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event = 'PgSleep'",
                (pid,),
            ).fetchone() != (1,):
                assert time.monotonic() < deadline, "the COMMIT never reached its trigger"
                time.sleep(0.005)
        terminate_backends(url, pid)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.direct_connection(reason="terminates its backend by the client's backend_pid")
async def test_a_connection_lost_during_commit_leaves_the_outcome_unknown(
    fresh_db: str, fresh_owner_db: str
) -> None:
    # a deferred trigger: COMMIT runs it, and waits; DDL, so made by the owner
    with psycopg.connect(fresh_owner_db, autocommit=True) as conn:
        conn.execute(_SLOW_COMMIT)
    config = DatabaseConfig(url=fresh_db, min_size=1, max_size=1)
    async with await AsyncRepositoryFactory.connect(config) as afactory:
        arepos, tm = afactory.repositories(), afactory.transaction_manager()
        org = await make_org(arepos)
        watchers: list[threading.Thread] = []

        async def block() -> None:
            async with tm.transaction() as transaction:
                await make_app(arepos, org.id)
                pid = transaction.connection.info.backend_pid
                watchers.append(terminate_when_sleeping(fresh_db, pid))

        async def begin_commit() -> None:
            transaction = await tm.begin()
            await make_app(arepos, org.id)
            pid = transaction.connection.info.backend_pid
            watchers.append(terminate_when_sleeping(fresh_db, pid))
            await transaction.commit()

        for way in (block, begin_commit):
            with pytest.raises(CommitOutcomeUnknownError) as caught:
                await way()
            watchers[-1].join(10)
            assert isinstance(caught.value, DatabaseUnavailableError)
            assert "may or may not have been committed" in str(caught.value)
            assert tm.current() is None
            # here the backend was stopped before it committed: the caller had to look
            assert await count_rows(tm, "applications", org.id) == 0
