"""llmcp errors as HTTP problem details (RFC 9457), without any web framework.

One table says which status each error gets and what the client is told. The
``detail`` of a 4xx answer is the error's own message, which names the field,
constraint or operation and never the value (``llmcp.error_map``,
``llmcp.validation``); a 5xx answer says only what happened in fixed words,
since its message may name the service's internals (a host, a role, a query).
"""

from __future__ import annotations

from dataclasses import dataclass

from llmcp.errors import (
    CommitOutcomeUnknownError,
    ConflictError,
    DatabaseUnavailableError,
    LlmcpError,
    NotFoundError,
    QueueFullError,
    ReferenceViolationError,
    TransactionError,
    ValidationError,
)

MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class Problem:
    """What an llmcp error answers: ``body`` is the problem-details document."""

    status: int
    code: str  # the ``code`` member: stable, for clients to branch on
    title: str
    detail: str
    retry_after: int | None = None  # seconds, for the Retry-After header

    @property
    def body(self) -> dict[str, object]:
        # "about:blank": the title is the status's phrase and ``code`` tells the
        # problems apart (RFC 9457 3.1 and 3.2: an extension member)
        return {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


def problem_for(exc: LlmcpError, *, retry_after: int = 1) -> Problem:
    """The answer to ``exc``; ``retry_after`` (seconds) goes with the 503s."""
    if isinstance(exc, NotFoundError):
        return Problem(404, "not_found", "Not Found", str(exc))
    if isinstance(exc, ConflictError):
        return Problem(409, "conflict", "Conflict", str(exc))
    if isinstance(exc, ValidationError):
        return Problem(422, "validation", "Unprocessable Content", str(exc))
    if isinstance(exc, ReferenceViolationError):
        # the request names a row that does not exist (or is another tenant's,
        # which reads the same): the request is wrong, not the server
        return Problem(422, "reference", "Unprocessable Content", str(exc))
    if isinstance(exc, CommitOutcomeUnknownError):
        # not a 503: that says "not done, try again", and the work may be stored;
        # a blind retry could do it twice. No Retry-After, for the same reason.
        return Problem(
            500,
            "commit_outcome_unknown",
            "Internal Server Error",
            "the connection to the database was lost while the request's writes were "
            "being committed: they may or may not be stored; look them up before "
            "sending the request again",
        )
    if isinstance(exc, DatabaseUnavailableError):
        return Problem(
            503,
            "database_unavailable",
            "Service Unavailable",
            "the database is unavailable; try again later",
            retry_after,
        )
    if isinstance(exc, QueueFullError):
        return Problem(
            503,
            "audit_queue_full",
            "Service Unavailable",
            "the audit trail is behind; try again later",
            retry_after,
        )
    if isinstance(exc, TransactionError) and exc.retryable:
        # a serialization failure or deadlock: rolled back whole, so safe to repeat
        return Problem(
            503,
            "transaction_conflict",
            "Service Unavailable",
            "the request collided with a concurrent one and was rolled back; try again",
            retry_after,
        )
    # the rest is the service's fault, not the client's: a privilege the role lacks
    # (PermissionDeniedError), a transaction left failed, a migration error, ...
    return Problem(500, "internal", "Internal Server Error", "internal error")
