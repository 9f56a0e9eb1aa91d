"""llmcp: a SQL-first, code-generated, typed PostgreSQL data layer for an LLM control plane.

The public face: every name of the README's API table is importable from here,
``from llmcp import AsyncRepositoryFactory, DatabaseConfig, NewPolicy``. Each
name's module is imported on first use, so ``import llmcp`` stays cheap and a
sync service never loads the async modules (nor the other way round). The
tooling (``llmcp.dev``) and the test helpers (``llmcp.testing``) are not here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from llmcp.api_keys import hash_api_key
    from llmcp.audit_writer import AuditWriter
    from llmcp.audit_writer_async import AsyncAuditWriter
    from llmcp.audit_writer_base import FailureKind, Unstored, WriteFailure, WriterStats
    from llmcp.cache import AdmissionCache
    from llmcp.cache_async import AsyncAdmissionCache
    from llmcp.cache_base import CacheStats
    from llmcp.config import DatabaseConfig
    from llmcp.database import Database
    from llmcp.database_async import AsyncDatabase
    from llmcp.database_base import Health, PoolStats, ReplicaHealth
    from llmcp.errors import (
        CommitOutcomeUnknownError,
        ConflictError,
        ConnectFailure,
        ConnectionFailedError,
        DatabaseUnavailableError,
        LlmcpError,
        MigrationError,
        NotFoundError,
        NotMigratedError,
        PermissionDeniedError,
        QueueFullError,
        ReferenceViolationError,
        RoleNotFoundError,
        TransactionError,
        ValidationError,
    )
    from llmcp.factory import Repositories, RepositoryFactory
    from llmcp.factory_async import AsyncRepositories, AsyncRepositoryFactory
    from llmcp.generated.models import (
        Application,
        AuditAction,
        AuditLog,
        InferenceRequest,
        InferenceStatus,
        Organization,
        Policy,
        PolicyType,
        User,
        UserRole,
    )
    from llmcp.ids import uuid7
    from llmcp.inputs import (
        NewApplication,
        NewAuditLog,
        NewInferenceRequest,
        NewOrganization,
        NewPolicy,
        NewUser,
    )
    from llmcp.migrate import GroupRole, Migrator
    from llmcp.paging import Page
    from llmcp.policy_config import (
        ContentFilterConfig,
        CostBudgetConfig,
        ModelAllowlistConfig,
        PolicyConfig,
        RateLimitConfig,
        TokenBudgetConfig,
    )
    from llmcp.repositories.inference_requests_async import InferenceMetrics
    from llmcp.transactions import Transaction, TransactionManager
    from llmcp.transactions_async import AsyncTransaction, AsyncTransactionManager
    from llmcp.transactions_base import IsolationLevel

_WHERE = {
    "DatabaseConfig": "llmcp.config",
    "Database": "llmcp.database",
    "AsyncDatabase": "llmcp.database_async",
    "Health": "llmcp.database_base",
    "PoolStats": "llmcp.database_base",
    "ReplicaHealth": "llmcp.database_base",
    "Repositories": "llmcp.factory",
    "RepositoryFactory": "llmcp.factory",
    "AsyncRepositories": "llmcp.factory_async",
    "AsyncRepositoryFactory": "llmcp.factory_async",
    "Transaction": "llmcp.transactions",
    "TransactionManager": "llmcp.transactions",
    "AsyncTransaction": "llmcp.transactions_async",
    "AsyncTransactionManager": "llmcp.transactions_async",
    "IsolationLevel": "llmcp.transactions_base",
    "AuditWriter": "llmcp.audit_writer",
    "AsyncAuditWriter": "llmcp.audit_writer_async",
    "WriterStats": "llmcp.audit_writer_base",
    "WriteFailure": "llmcp.audit_writer_base",
    "Unstored": "llmcp.audit_writer_base",
    "FailureKind": "llmcp.audit_writer_base",
    "AdmissionCache": "llmcp.cache",
    "AsyncAdmissionCache": "llmcp.cache_async",
    "CacheStats": "llmcp.cache_base",
    "NewApplication": "llmcp.inputs",
    "NewAuditLog": "llmcp.inputs",
    "NewInferenceRequest": "llmcp.inputs",
    "NewOrganization": "llmcp.inputs",
    "NewPolicy": "llmcp.inputs",
    "NewUser": "llmcp.inputs",
    "Application": "llmcp.generated.models",
    "AuditAction": "llmcp.generated.models",
    "AuditLog": "llmcp.generated.models",
    "InferenceRequest": "llmcp.generated.models",
    "InferenceStatus": "llmcp.generated.models",
    "Organization": "llmcp.generated.models",
    "Policy": "llmcp.generated.models",
    "PolicyType": "llmcp.generated.models",
    "User": "llmcp.generated.models",
    "UserRole": "llmcp.generated.models",
    "InferenceMetrics": "llmcp.repositories.inference_requests_async",
    "ContentFilterConfig": "llmcp.policy_config",
    "CostBudgetConfig": "llmcp.policy_config",
    "ModelAllowlistConfig": "llmcp.policy_config",
    "PolicyConfig": "llmcp.policy_config",
    "RateLimitConfig": "llmcp.policy_config",
    "TokenBudgetConfig": "llmcp.policy_config",
    "Page": "llmcp.paging",
    "hash_api_key": "llmcp.api_keys",
    "uuid7": "llmcp.ids",
    "CommitOutcomeUnknownError": "llmcp.errors",
    "ConnectFailure": "llmcp.errors",
    "ConnectionFailedError": "llmcp.errors",
    "NotMigratedError": "llmcp.errors",
    "ConflictError": "llmcp.errors",
    "DatabaseUnavailableError": "llmcp.errors",
    "LlmcpError": "llmcp.errors",
    "MigrationError": "llmcp.errors",
    "NotFoundError": "llmcp.errors",
    "PermissionDeniedError": "llmcp.errors",
    "QueueFullError": "llmcp.errors",
    "ReferenceViolationError": "llmcp.errors",
    "RoleNotFoundError": "llmcp.errors",
    "TransactionError": "llmcp.errors",
    "ValidationError": "llmcp.errors",
    "Migrator": "llmcp.migrate",
    "GroupRole": "llmcp.migrate",
}
"""The module each public name lives in."""

__all__ = [
    "AdmissionCache",
    "Application",
    "AsyncAdmissionCache",
    "AsyncAuditWriter",
    "AsyncDatabase",
    "AsyncRepositories",
    "AsyncRepositoryFactory",
    "AsyncTransaction",
    "AsyncTransactionManager",
    "AuditAction",
    "AuditLog",
    "AuditWriter",
    "CacheStats",
    "CommitOutcomeUnknownError",
    "ConflictError",
    "ConnectFailure",
    "ConnectionFailedError",
    "ContentFilterConfig",
    "CostBudgetConfig",
    "Database",
    "DatabaseConfig",
    "DatabaseUnavailableError",
    "FailureKind",
    "GroupRole",
    "Health",
    "InferenceMetrics",
    "InferenceRequest",
    "InferenceStatus",
    "IsolationLevel",
    "LlmcpError",
    "MigrationError",
    "Migrator",
    "ModelAllowlistConfig",
    "NewApplication",
    "NewAuditLog",
    "NewInferenceRequest",
    "NewOrganization",
    "NewPolicy",
    "NewUser",
    "NotFoundError",
    "NotMigratedError",
    "Organization",
    "Page",
    "PermissionDeniedError",
    "Policy",
    "PolicyConfig",
    "PolicyType",
    "PoolStats",
    "QueueFullError",
    "RateLimitConfig",
    "ReferenceViolationError",
    "ReplicaHealth",
    "Repositories",
    "RepositoryFactory",
    "RoleNotFoundError",
    "TokenBudgetConfig",
    "Transaction",
    "TransactionError",
    "TransactionManager",
    "Unstored",
    "User",
    "UserRole",
    "ValidationError",
    "WriteFailure",
    "WriterStats",
    "hash_api_key",
    "uuid7",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'llmcp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
