"""The one error hierarchy of llmcp: every public method raises only these."""

from __future__ import annotations

import enum


class LlmcpError(Exception):
    """Base of every error llmcp raises."""


class ValidationError(LlmcpError):
    """Input rejected: before the database, or by a CHECK / type constraint."""


class NotFoundError(LlmcpError):
    """An update or delete named a row that does not exist."""


class ConflictError(LlmcpError):
    """A unique constraint was violated, or an optimistic-lock write was stale."""

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class ReferenceViolationError(LlmcpError):
    """A foreign key points at a row that does not exist (or of another organization)."""

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        super().__init__(message)
        self.constraint = constraint


class DatabaseUnavailableError(LlmcpError):
    """The server cannot be reached, or the connection was lost."""


class ConnectFailure(enum.StrEnum):
    """Why a connection could not be made (:attr:`ConnectionFailedError.reason`)."""

    AUTHENTICATION = "wrong password or role"
    DATABASE_MISSING = "the database does not exist"
    HOST_NOT_FOUND = "host not found"
    REFUSED = "nothing is listening there"
    TIMEOUT = "timed out"
    MALFORMED_URL = "malformed database URL"
    TLS = "TLS (SSL) required by one side and refused by the other"
    OTHER = "cannot connect"


class ConnectionFailedError(DatabaseUnavailableError):
    """No connection could be made; ``reason`` says why, the message adds psycopg's
    own words (the password masked)."""

    def __init__(self, reason: ConnectFailure, detail: str) -> None:
        super().__init__(f"cannot connect to the database: {reason.value} ({detail})")
        self.reason = reason


class NotMigratedError(DatabaseUnavailableError):
    """The database is reachable but lacks llmcp's tables: run ``llmcp db up``."""


class CommitOutcomeUnknownError(DatabaseUnavailableError):
    """The connection was lost while COMMIT ran: the transaction may or may not be stored.

    A connection lost before COMMIT leaves nothing stored; one lost during it
    leaves no way to know whether the server committed first. Look the work up
    (by a key of your own, such as a request id) before doing it again.
    """


class TransactionError(LlmcpError):
    """A transaction failed; ``retryable`` is true for serialization failures and deadlocks."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class PermissionDeniedError(LlmcpError):
    """The role lacks the privilege a statement needs (SQLSTATE 42501): DDL, a table,
    column or function outside what the application role was granted, a change to
    the append-only audit trail, a GRANT by a role without the right to grant."""


class RoleNotFoundError(LlmcpError):
    """A role named to :meth:`llmcp.migrate.Migrator.grant` does not exist; ``role`` is its name."""

    def __init__(self, message: str, *, role: str) -> None:
        super().__init__(message)
        self.role = role


class QueueFullError(LlmcpError):
    """The audit writer's queue stayed full for longer than its ``put_timeout``."""


class MigrationError(LlmcpError):
    """dbmate failed: carries its own message and exit code."""

    def __init__(self, message: str, *, exit_code: int, command: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.command = command

    def __str__(self) -> str:
        return f"dbmate {self.command} failed (exit {self.exit_code}): {self.args[0]}"
