"""Turn a psycopg exception into the llmcp error hierarchy.

Repositories call ``raise map_error(exc, operation="organizations.create") from exc``.
The message names the operation and the field or constraint, never the offending
value (it may be personal data): it is built from the SQLSTATE and the structured
diagnostics (constraint, table, column, type names), never from ``str(exc)``, whose
DETAIL and CONTEXT lines quote the value.
"""

from __future__ import annotations

import re

import psycopg
import psycopg_pool

from llmcp.errors import (
    ConflictError,
    DatabaseUnavailableError,
    LlmcpError,
    NotMigratedError,
    PermissionDeniedError,
    ReferenceViolationError,
    TransactionError,
    ValidationError,
)

__all__ = ["map_error", "sqlstate_of"]

# The field a unique constraint of ours protects (where parsing the name is not enough).
_UNIQUE_FIELDS: dict[str, str] = {
    "organizations_slug_key": "slug",
    "users_org_id_email_key": "email",
    "users_cognito_sub_key": "cognito_sub",
    "applications_api_key_hash_key": "api_key_hash",
    "inference_requests_org_id_request_id_key": "request_id",
    "inference_request_keys_org_id_id_key": "id",
    "audit_logs_org_id_id_key": "id",
    "inference_requests_org_id_id_key": "id",
}

# A month partition's own index (audit_logs_p2026_12_org_id_id_key): reported under
# the name without the month, the same whichever partition the row went to.
_PARTITION_INDEX = re.compile(r"^(audit_logs|inference_requests)_(?:p\d{4}_\d{2}|history)_(.+)$")

# Our foreign keys: the referencing field and what it must reference.
_REFERENCES: dict[str, tuple[str, str]] = {
    "applications_org_id_fkey": ("org_id", "an existing organization"),
    "users_org_id_fkey": ("org_id", "an existing organization"),
    "policies_org_id_fkey": ("org_id", "an existing organization"),
    "policies_app_fkey": ("app_id", "an application of this organization"),
    "policies_user_fkey": ("user_id", "a user of this organization"),
    "audit_logs_org_id_fkey": ("org_id", "an existing organization"),
    "audit_logs_app_fkey": ("app_id", "an application of this organization"),
    "audit_logs_user_fkey": ("user_id", "a user of this organization"),
    "inference_requests_org_id_fkey": ("org_id", "an existing organization"),
    "inference_requests_app_fkey": ("app_id", "an application of this organization"),
    "inference_requests_user_fkey": ("user_id", "a user of this organization"),
}

# Check constraints whose name does not say the field plainly.
_CHECK_FIELDS: dict[str, str] = {
    "inference_requests_tokens_check": "prompt_tokens/completion_tokens",
}

# Used to strip the table prefix when the server did not report the table.
_TABLES = (
    "inference_requests",
    "organizations",
    "applications",
    "audit_logs",
    "policies",
    "users",
)

_SUFFIXES = ("_pkey", "_key", "_fkey", "_check", "_excl", "_idx")

# What is wrong, per SQLSTATE of class 22 (data exception); the value is never quoted.
_DATA_ERRORS: dict[str, str] = {
    "22P02": "has an invalid syntax",
    "22001": "is too long",
    "22003": "is out of range",
    "22007": "has an invalid date/time format",
    "22008": "is an out-of-range date/time",
    "22021": "contains a byte sequence that is invalid in the database encoding",
    "22P05": "contains a character with no equivalent in the target encoding",
    "22012": "caused a division by zero",
}

# A type or enum name in a server message ("... for type uuid: "<value>"").
_TYPE_NAME = re.compile(r"\bfor (type|enum) ([A-Za-z_][\w ]*?(?:\(\d+(?:,\s*\d+)?\))?)(?=:|$)")

_RETRYABLE = frozenset({"40001", "40P01"})
# undefined table, undefined column: the schema is missing or older than the queries
_NOT_MIGRATED = frozenset({"42P01", "42703"})
_UNAVAILABLE = frozenset({"57P01", "57P02", "57P03", "57P05", "53300"})


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of ``exc`` (a psycopg error from the server), else None."""
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) and state else None


def map_error(exc: BaseException, *, operation: str) -> LlmcpError:
    """The llmcp error for ``exc``; ``operation`` (``organizations.create``) leads its message.

    An :class:`LlmcpError` comes back unchanged. Nothing in the message is copied
    from the value that was rejected.
    """
    if isinstance(exc, LlmcpError):
        return exc
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return DatabaseUnavailableError(
            f"{operation}: database unavailable (no pooled connection free in time)"
        )
    if isinstance(exc, psycopg_pool.PoolClosed):
        return DatabaseUnavailableError(f"{operation}: database unavailable (the pool is closed)")
    if isinstance(exc, psycopg_pool.TooManyRequests):
        return DatabaseUnavailableError(
            f"{operation}: database unavailable (too many requests waiting for the pool)"
        )
    if not isinstance(exc, psycopg.Error):
        return LlmcpError(f"{operation}: unexpected error ({type(exc).__name__})")

    state = sqlstate_of(exc)
    if state is None:
        if isinstance(exc, psycopg.OperationalError) or _lost_behind_pooler(exc):
            return DatabaseUnavailableError(f"{operation}: database unavailable (connection lost)")
        return LlmcpError(f"{operation}: database client error ({type(exc).__name__})")

    diag = exc.diag
    constraint = _unpartitioned(diag.constraint_name)
    table = diag.table_name
    suffix = f" (constraint {constraint})" if constraint else ""

    if state == "23505":
        field = _UNIQUE_FIELDS.get(constraint or "") or _field(constraint, table) or "a value"
        return ConflictError(f"{operation}: {field} already exists{suffix}", constraint=constraint)
    if state == "23P01":
        field = _field(constraint, table) or "a value"
        return ConflictError(
            f"{operation}: {field} conflicts with an existing row{suffix}", constraint=constraint
        )
    if state in ("23503", "23001"):
        return ReferenceViolationError(
            _reference_message(operation, state, constraint, table, diag.message_primary),
            constraint=constraint,
        )
    if state == "23502":
        column = diag.column_name
        where = f"{table}.{column}" if table and column else column
        return ValidationError(
            f"{operation}: {column or 'a value'} is required"
            + (f" (column {where})" if where else "")
        )
    if state == "23514" and constraint is None:
        # "no partition of relation ... found for row": a check without a name
        return ValidationError(
            f"{operation}: created_at is in a month without a partition of {table or 'its table'}"
            " (create it: `llmcp db partitions create --ahead N`)"
        )
    if state == "23514":
        field = _CHECK_FIELDS.get(constraint or "") or _field(constraint, table) or "a value"
        return ValidationError(f"{operation}: {field} is not valid{suffix}")
    if state.startswith("23"):
        return ValidationError(f"{operation}: integrity constraint violated{suffix}")
    if state.startswith("22"):
        return ValidationError(_data_message(operation, state, exc))

    if state in _RETRYABLE:
        what = "serialization failure" if state == "40001" else "deadlock detected"
        return TransactionError(
            f"{operation}: transaction aborted ({what}, SQLSTATE {state}); retry it",
            retryable=True,
        )
    if state.startswith(("40", "25")):
        return TransactionError(
            f"{operation}: transaction failed ({_condition(exc)}, SQLSTATE {state})"
        )
    if state in _NOT_MIGRATED:
        # the relation or column is named, never a value
        return NotMigratedError(
            f"{operation}: the database is not migrated ({diag.message_primary}): run `llmcp db up`"
        )
    if state == "42501":
        # "permission denied for table t", "... for function f", "new row violates
        # row-level security policy for table t", the audit trail's refusal: names
        # only, never a value
        return PermissionDeniedError(
            f"{operation}: permission denied ({diag.message_primary or 'insufficient privilege'}, "
            "SQLSTATE 42501)"
        )
    if state == "57014":
        primary = diag.message_primary or ""
        what = (
            "the statement timed out"
            if "statement timeout" in primary
            else "the statement timed out or was canceled"
        )
        return TransactionError(f"{operation}: {what} (SQLSTATE 57014)")
    if state == "55P03":
        return TransactionError(f"{operation}: could not obtain a lock in time (SQLSTATE 55P03)")
    if state.startswith("08") or state in _UNAVAILABLE:
        return DatabaseUnavailableError(
            f"{operation}: database unavailable ({_condition(exc)}, SQLSTATE {state})"
        )
    return LlmcpError(f"{operation}: database error {state} ({_condition(exc)})")


# psycopg (3.3, ``_exec_command``) raises InternalError("received 2 results from
# command 'COMMIT'") when BEGIN, COMMIT, ROLLBACK or a SAVEPOINT command gets more
# than one result. Behind PgBouncer that is how a server connection lost during
# the command arrives: the server's FATAL error, forwarded, then PgBouncer's own
# ("server conn crashed?"), and the client connection is closed
# (tests/test_pgbouncer.py reproduces it).
_EXTRA_RESULTS = re.compile(r"received \d+ results from command ")


def _lost_behind_pooler(exc: psycopg.Error) -> bool:
    return isinstance(exc, psycopg.InternalError) and bool(_EXTRA_RESULTS.match(str(exc)))


def _unpartitioned(constraint: str | None) -> str | None:
    """The name of a partition's index without the partition: ``<table>_<rest>``."""
    found = _PARTITION_INDEX.match(constraint or "")
    return f"{found[1]}_{found[2]}" if found else constraint


def _field(constraint: str | None, table: str | None) -> str | None:
    """``<table>_<column...>_<suffix>`` -> ``<column...>``; None when nothing is left."""
    if not constraint:
        return None
    if constraint.endswith("_pkey"):
        return "id"
    name = constraint
    for ending in _SUFFIXES:
        if name.endswith(ending):
            name = name[: -len(ending)]
            break
    for prefix in ([table] if table else []) + list(_TABLES):
        if name.startswith(prefix + "_"):
            name = name[len(prefix) + 1 :]
            break
    for function in ("_lower", "_upper"):
        if name.endswith(function):
            name = name[: -len(function)]
    return name or None


def _reference_message(
    operation: str, state: str, constraint: str | None, table: str | None, primary: str | None
) -> str:
    suffix = f" (constraint {constraint})" if constraint else ""
    if state == "23001" or (primary or "").startswith("update or delete on table"):
        return f"{operation}: the row is still referenced{suffix}"
    known = _REFERENCES.get(constraint or "")
    if known is not None:
        field, target = known
        return f"{operation}: {field} does not reference {target}{suffix}"
    field = _field(constraint, table) or "a reference"
    return f"{operation}: {field} does not reference an existing row{suffix}"


def _data_message(operation: str, state: str, exc: psycopg.Error) -> str:
    diag = exc.diag
    subject = diag.column_name or "a value"
    problem = _DATA_ERRORS.get(state, "is not valid")
    kind = ""
    match = _TYPE_NAME.search(diag.message_primary or "")
    if match is not None:
        kind = f" for {match.group(1)} {match.group(2).strip()}"
    elif diag.datatype_name:
        kind = f" for type {diag.datatype_name}"
    where = f"constraint {diag.constraint_name}, " if diag.constraint_name else ""
    return f"{operation}: {subject} {problem}{kind} ({where}SQLSTATE {state})"


def _condition(exc: psycopg.Error) -> str:
    """The psycopg class name of the condition, e.g. ``SerializationFailure``."""
    return type(exc).__name__
