"""Undo what a block did: one transaction (or savepoint) that is always rolled back.

Hypothesis runs every example of a test inside the same function-scoped
fixtures, so rows one example writes are seen by the next. Wrap each example:

>>> with rolled_back(factory.transaction_manager()):
...     repos.organizations.create(...)   # gone after the block

Outside a transaction the block is a transaction of its own; inside one (the
``llmcp_transaction`` fixture, say) it is a savepoint. An exception raised in
the block propagates after the rollback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from llmcp.transactions import Transaction, TransactionManager
from llmcp.transactions_async import AsyncTransaction, AsyncTransactionManager

__all__ = ["arolled_back", "rolled_back"]


class _Undo(Exception):
    """Raised at the end of the block, so that the transaction rolls back."""


@contextmanager
def rolled_back(transactions: TransactionManager) -> Iterator[Transaction]:
    """A transaction (or savepoint) for the block, rolled back when it ends."""
    try:
        with transactions.transaction() as transaction:
            yield transaction
            raise _Undo
    except _Undo:
        pass


@asynccontextmanager
async def arolled_back(transactions: AsyncTransactionManager) -> AsyncIterator[AsyncTransaction]:
    """:func:`rolled_back` for the async API."""
    try:
        async with transactions.transaction() as transaction:
            yield transaction
            raise _Undo
    except _Undo:
        pass
