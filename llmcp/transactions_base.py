"""What both transaction managers share without I/O: isolation levels and the
checks that keep a transaction that cannot commit from ending as committed."""

from __future__ import annotations

import enum
from typing import Any

import psycopg
from psycopg import sql

from llmcp.error_map import map_error
from llmcp.errors import (
    CommitOutcomeUnknownError,
    DatabaseUnavailableError,
    LlmcpError,
    TransactionError,
)


class IsolationLevel(enum.StrEnum):
    READ_COMMITTED = "READ COMMITTED"
    REPEATABLE_READ = "REPEATABLE READ"
    SERIALIZABLE = "SERIALIZABLE"


def refuse_uncommittable(conn: psycopg.BaseConnection[Any]) -> None:
    """Raise rather than end as committed a transaction that cannot commit.

    After a failed statement the server would quietly ROLL BACK the COMMIT; on a
    lost connection psycopg skips the COMMIT without a word. Either way the
    caller would believe the work was stored.
    """
    if conn.pgconn.status != psycopg.pq.ConnStatus.OK:
        raise DatabaseUnavailableError(
            "transaction: the connection to the server was lost, so the server rolled "
            "the transaction back: nothing of it was committed"
        )
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
        raise TransactionError(
            "transaction: a statement failed inside it, so it was rolled back, not committed "
            "(run a statement that may fail in a nested transaction() to go on after it)"
        )


def single_write_error(exc: psycopg.Error, *, operation: str) -> LlmcpError:
    """The llmcp error of a write outside a transaction (its own implicit
    transaction, committed by the server as it ends) that failed: a connection
    lost once the statement may have reached the server leaves its outcome
    unknown, as a COMMIT's (:func:`commit_error`)."""
    error = map_error(exc, operation=operation)
    if type(error) is DatabaseUnavailableError:
        return CommitOutcomeUnknownError(
            f"{operation}: the connection was lost while the statement ran on its own, "
            f"so it may or may not have been committed ({error})"
        )
    return error


def commit_error(exc: psycopg.Error, *, operation: str) -> LlmcpError:
    """The llmcp error of a failed COMMIT: a connection lost during it leaves the
    outcome unknown; anything else (a serialization failure, a deferred
    constraint) means the transaction was rolled back."""
    error = map_error(exc, operation=operation)
    if type(error) is DatabaseUnavailableError:
        return CommitOutcomeUnknownError(
            f"{operation}: the connection was lost while COMMIT ran, so the transaction "
            f"may or may not have been committed ({error})"
        )
    return error


def transaction_modes(
    isolation_level: IsolationLevel | None,
    read_only: bool,
    synchronous_commit: str | None = None,
    connection_settings: tuple[str, ...] = (),
) -> sql.Composed | None:
    """What to run right after BEGIN for these options (one round trip), or None.

    ``synchronous_commit`` (``DatabaseConfig.synchronous_commit``, one of
    PostgreSQL's levels, checked by the config) is set with ``SET LOCAL``, and
    ``connection_settings`` (name, value, ...: behind a transaction pooler, what a
    direct connection sets for its session, llmcp.pipelined.call_settings) with
    ``set_config(..., true)``: both end with the transaction, so nothing sticks to
    a pooled server connection (behind PgBouncer included)."""
    statements: list[sql.Composable] = []
    modes = []
    if isolation_level is not None:
        modes.append(f"ISOLATION LEVEL {IsolationLevel(isolation_level).value}")
    if read_only:
        modes.append("READ ONLY")
    if modes:
        statements.append(sql.SQL("SET TRANSACTION " + ", ".join(modes)))
    if synchronous_commit is not None:
        statements.append(
            sql.SQL("SET LOCAL synchronous_commit = {}").format(sql.Literal(synchronous_commit))
        )
    if connection_settings:
        pairs = zip(connection_settings[::2], connection_settings[1::2], strict=True)
        calls = [sql.SQL("set_config({}, {}, true)").format(sql.Literal(n), sql.Literal(v))
                 for n, v in pairs]  # fmt: skip
        statements.append(sql.SQL("SELECT ") + sql.SQL(", ").join(calls))
    return sql.SQL("; ").join(statements) if statements else None
