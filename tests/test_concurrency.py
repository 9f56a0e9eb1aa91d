"""llmcp.concurrency.commit_noted (and its async flavour): one transaction in two round
trips whose noted row arrives before anything is written; a failure anywhere rolls it
back and is psycopg's error, as ``conn.execute()`` raises it; a lost connection is an
OperationalError."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import pq
from psycopg.types.json import Jsonb

from llmcp.concurrency import Statement, commit_noted, commit_noted_async

NOTING = "SELECT pg_current_xact_id(), current_setting('transaction_isolation')"
CREATE = "CREATE TEMPORARY TABLE IF NOT EXISTS noted (key text PRIMARY KEY, doc jsonb)"
STORE = "INSERT INTO noted SELECT %s, %s::jsonb"
STORED = "SELECT key, doc, xmin::text FROM noted ORDER BY key"


def _connect(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(CREATE)
    return conn


def test_the_statements_commit_in_the_noted_transaction(shared_db: str) -> None:
    seen: list[tuple[Any, ...]] = []
    with _connect(shared_db) as conn:
        document = Jsonb([{"a": [1, "é", None]}, {"b": 2}])
        statements: list[Statement] = [(STORE, ("one", document)), (STORE, ("two", None))]
        commit_noted(conn, NOTING, statements, seen.append)
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        assert not conn.pgconn.pipeline_status  # out of pipeline mode, nonblocking as it was
        assert conn.pgconn.nonblocking == 1
        [(xact, isolation)] = seen
        assert isolation == "read committed"
        rows = conn.execute(STORED).fetchall()
        assert rows == [("one", document.obj, str(xact)), ("two", None, str(xact))]


def test_an_error_rolls_back_and_is_psycopgs(shared_db: str) -> None:
    with _connect(shared_db) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation) as ours:
            commit_noted(conn, NOTING, [(STORE, ("k", None)), (STORE, ("k", None))], print)
        with pytest.raises(psycopg.errors.UniqueViolation) as theirs, conn.transaction():
            conn.execute(STORE, ("k", None))
            conn.execute(STORE, ("k", None))
        assert ours.value.sqlstate == theirs.value.sqlstate == "23505"
        assert ours.value.diag.message_primary == theirs.value.diag.message_primary
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        assert conn.execute(STORED).fetchall() == []  # nothing of either
        commit_noted(conn, NOTING, [(STORE, ("k", None))], lambda row: None)  # usable
        assert len(conn.execute(STORED).fetchall()) == 1


def test_a_failing_noting_statement_or_note_sends_nothing(shared_db: str) -> None:
    with _connect(shared_db) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            commit_noted(conn, "SELECT 1 / 0", [(STORE, ("a", None))], print)

        def refuse(row: tuple[Any, ...]) -> None:
            raise RuntimeError("not now")

        with pytest.raises(RuntimeError, match="not now"):
            commit_noted(conn, NOTING, [(STORE, ("b", None))], refuse)
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):  # at the server
            commit_noted(conn, NOTING, [(STORE, ("c", "{not json"))], print)
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        assert conn.execute(STORED).fetchall() == []


@pytest.mark.direct_connection(
    "terminates the statement's backend by its pid: behind a pooler that is not the client's"
)
def test_a_lost_connection_is_an_operational_error(shared_db: str) -> None:
    with _connect(shared_db) as killer, _connect(shared_db) as victim:
        pid = victim.info.backend_pid

        def kill(row: tuple[Any, ...]) -> None:  # between the two round trips
            killed = killer.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()
            assert killed == (True,)

        with pytest.raises(psycopg.OperationalError) as lost:
            commit_noted(victim, NOTING, [(STORE, (str(uuid.uuid4()), None))], kill)
        assert lost.value.sqlstate in (None, "57P01")  # the notice may come first
        assert victim.closed
        with pytest.raises(psycopg.OperationalError):
            commit_noted(victim, NOTING, [(STORE, ("again", None))], print)  # closed now


async def test_the_async_flavour_commits_and_rolls_back_alike(shared_db: str) -> None:
    seen: list[tuple[Any, ...]] = []
    async with await psycopg.AsyncConnection.connect(shared_db, autocommit=True) as conn:
        await conn.execute(CREATE)
        await commit_noted_async(conn, NOTING, [(STORE, ("one", Jsonb({"a": 1})))], seen.append)
        with pytest.raises(psycopg.errors.UniqueViolation):
            await commit_noted_async(
                conn, NOTING, [(STORE, ("two", None)), (STORE, ("one", None))], seen.append
            )
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        rows = await (await conn.execute(STORED)).fetchall()
        assert rows == [("one", {"a": 1}, str(seen[0][0]))]
        assert len(seen) == 2 and seen[1][0] != seen[0][0]
