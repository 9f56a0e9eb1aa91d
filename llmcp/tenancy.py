"""The tenant of a call: the transaction-local settings that row-level security reads.

Every tenant table (see dbmate/migrations/*_enable_row_level_security.sql)
shows the application role only the rows of the organization in
``llmcp.org_id``. A repository scopes each tenant call with :func:`scoped`;
the adapter then sends ``set_config(name, value, true)`` in the same round
trip as the statement (one pipeline, one implicit or explicit transaction), so
the setting lasts exactly as long as the statement's transaction. The two
lookups that run before the tenant is known name their global key instead
(``llmcp.api_key_hash``, ``llmcp.cognito_sub``): the policies let them reach
that one row and nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar

from llmcp import validation as check

ORG_ID = "llmcp.org_id"
API_KEY_HASH = "llmcp.api_key_hash"
COGNITO_SUB = "llmcp.cognito_sub"

Setting = tuple[str, str]
"""A setting's name and value, set transaction-locally before a statement."""

_current: ContextVar[Setting | None] = ContextVar("llmcp_tenant_setting", default=None)
# DatabaseConfig.synchronous_commit for a single write outside a transaction, sent
# the same way (set_config(..., true) in the statement's pipeline); None: the server's
_commit: ContextVar[Setting | None] = ContextVar("llmcp_commit_setting", default=None)


def current() -> Setting | None:
    """The setting the statement about to run must carry, if any."""
    return _current.get()


@contextmanager
def scoped(name: str, value: str) -> Iterator[None]:
    """Run the statements of the block with ``name`` set to ``value`` (transaction-locally)."""
    token = _current.set((name, value))
    try:
        yield
    finally:
        _current.reset(token)


def commit_setting() -> Setting | None:
    """The ``synchronous_commit`` the statement about to run must carry, if any."""
    return _commit.get()


@contextmanager
def committing(level: str) -> Iterator[None]:
    """Run the statements of the block with ``synchronous_commit`` at ``level``
    (transaction-locally: a single call's implicit transaction)."""
    token = _commit.set(("synchronous_commit", level))
    try:
        yield
    finally:
        _commit.reset(token)


def tenant(org_id: uuid.UUID) -> AbstractContextManager[None]:
    """Scope the generated queries run in the block to ``org_id``: a service's own
    queries (``llmcp codegen``) through ``tx.connection()`` get row-level
    security's second wall as llmcp's repositories do. A repository call inside
    the block still scopes itself to the organization it is given."""
    return scoped(ORG_ID, str(check.uuid_value("org_id", org_id)))
