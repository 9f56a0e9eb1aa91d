"""AsyncRepositoryFactory: one pool, one transaction manager, six repositories."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from llmcp.audit_writer_async import AsyncAuditWriter
from llmcp.audit_writer_base import Unstored
from llmcp.cache_async import AsyncAdmissionCache
from llmcp.config import DatabaseConfig
from llmcp.database_async import AsyncDatabase
from llmcp.paging import process_secret
from llmcp.repositories.applications_async import AsyncApplicationRepository
from llmcp.repositories.audit_logs_async import AsyncAuditLogRepository
from llmcp.repositories.inference_requests_async import AsyncInferenceRequestRepository
from llmcp.repositories.organizations_async import AsyncOrganizationRepository
from llmcp.repositories.policies_async import AsyncPolicyRepository
from llmcp.repositories.users_async import AsyncUserRepository
from llmcp.transactions_async import AsyncTransactionManager
from llmcp.transactions_base import IsolationLevel


@dataclass(frozen=True, slots=True)
class AsyncRepositories:
    """The six repositories, sharing one pool and one transaction manager."""

    organizations: AsyncOrganizationRepository
    applications: AsyncApplicationRepository
    users: AsyncUserRepository
    policies: AsyncPolicyRepository
    audit_logs: AsyncAuditLogRepository
    inference_requests: AsyncInferenceRequestRepository


class AsyncRepositoryFactory:
    """Builds the repositories on one database; ``async with`` closes the pool.

    >>> factory = await AsyncRepositoryFactory.connect(DatabaseConfig.from_env())
    >>> async with factory.request() as repos:      # one pooled connection per request
    ...     app = await repos.applications.get_by_api_key_hash(key_hash)
    >>> async with factory.request(transaction=True) as repos:
    ...     org = await repos.organizations.create(NewOrganization(name="Acme", slug="acme"))
    """

    def __init__(
        self,
        database: AsyncDatabase,
        *,
        audit_writer: AsyncAuditWriter | None = None,
        admission_cache: AsyncAdmissionCache | None = None,
    ) -> None:
        self.database = database
        self.audit_writer = audit_writer or AsyncAuditWriter(database)
        # llmcp.cache_async, when DatabaseConfig.admission_cache_size asks for one
        self.admission_cache = admission_cache
        cache = admission_cache
        self._transactions = AsyncTransactionManager(database)
        secret = database.config.cursor_secret or process_secret()
        self._repositories = AsyncRepositories(
            organizations=AsyncOrganizationRepository(self._transactions, cursor_secret=secret),
            applications=AsyncApplicationRepository(
                self._transactions, cursor_secret=secret, admission=cache
            ),
            users=AsyncUserRepository(self._transactions, cursor_secret=secret, admission=cache),
            policies=AsyncPolicyRepository(
                self._transactions, cursor_secret=secret, admission=cache
            ),
            audit_logs=AsyncAuditLogRepository(
                self._transactions, cursor_secret=secret, writer=self.audit_writer
            ),
            inference_requests=AsyncInferenceRequestRepository(
                self._transactions, cursor_secret=secret
            ),
        )

    @classmethod
    async def connect(cls, config: DatabaseConfig | None = None) -> Self:
        """Open a pool (``DatabaseConfig.from_env()`` by default) and build the factory,
        with an admission cache listening when ``admission_cache_size`` is set."""
        database = await AsyncDatabase.connect(config or DatabaseConfig.from_env())
        if not database.config.admission_cache_size:
            return cls(database)
        try:
            cache = await AsyncAdmissionCache.start(database)
        except BaseException:
            await database.close()
            raise
        return cls(database, admission_cache=cache)

    def repositories(self) -> AsyncRepositories:
        return self._repositories

    def transaction_manager(self) -> AsyncTransactionManager:
        return self._transactions

    @asynccontextmanager
    async def request(
        self,
        *,
        transaction: bool = False,
        isolation_level: IsolationLevel | None = None,
        read_only: bool = False,
    ) -> AsyncIterator[AsyncRepositories]:
        """The repositories, with every call of the block on one pooled connection:
        the way to serve a request (``AsyncTransactionManager.request``: autocommit
        call by call, or one transaction with ``transaction=True``)."""
        async with self._transactions.request(
            transaction=transaction, isolation_level=isolation_level, read_only=read_only
        ):
            yield self._repositories

    async def close(self, timeout: float | None = None) -> Unstored:
        """Store every queued audit row, then close the pool (idempotent).

        With a ``timeout``, the audit rows not stored by then are given up and
        returned (see ``AsyncAuditWriter.close``).
        """
        try:
            if self.admission_cache is not None:
                await self.admission_cache.close()
            return await self.audit_writer.close(timeout)
        finally:
            await self.database.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
