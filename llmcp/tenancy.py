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
from contextlib import AbstractContextManager
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


class _Set:
    """A block with a context variable set to a setting: a plain class rather than a
    generator context manager, since every tenant call takes one (0.3 us, where
    ``@contextmanager`` took 1.0 us)."""

    __slots__ = ("_setting", "_token", "_variable")

    def __init__(self, variable: ContextVar[Setting | None], setting: Setting) -> None:
        self._variable = variable
        self._setting = setting

    def __enter__(self) -> None:
        self._token = self._variable.set(self._setting)

    def __exit__(self, *exc_info: object) -> None:
        self._variable.reset(self._token)


def scoped(name: str, value: str) -> AbstractContextManager[None]:
    """Run the statements of the block with ``name`` set to ``value`` (transaction-locally)."""
    return _Set(_current, (name, value))


def commit_setting() -> Setting | None:
    """The ``synchronous_commit`` the statement about to run must carry, if any."""
    return _commit.get()


def committing(level: str) -> AbstractContextManager[None]:
    """Run the statements of the block with ``synchronous_commit`` at ``level``
    (transaction-locally: a single call's implicit transaction)."""
    return _Set(_commit, ("synchronous_commit", level))


def tenant(org_id: uuid.UUID) -> AbstractContextManager[None]:
    """Scope the generated queries run in the block to ``org_id``: a service's own
    queries (``llmcp codegen``) through ``tx.connection()`` get row-level
    security's second wall as llmcp's repositories do. A repository call inside
    the block still scopes itself to the organization it is given."""
    return scoped(ORG_ID, str(check.uuid_value("org_id", org_id)))
