"""How the async audit writer cuts its batches: under load the next batch fills for up
to ``linger`` seconds; an idle writer, ``flush`` and ``close`` do not wait.

Async only: the event loop runs the worker only when the test awaits, so which rows
arrive while a batch is written is decided by the test (the sync writer's thread
races its caller). The sync twin runs the same worker code.
"""

from __future__ import annotations

import asyncio
import uuid

from llmcp.audit_writer_async import AsyncAuditWriter
from llmcp.config import DatabaseConfig
from llmcp.database_async import AsyncDatabase
from tests.test_audit_writer_async import _log, _org, app_config


async def _written(writer: AsyncAuditWriter, rows: int) -> None:
    """Wait until the writer has stored ``rows`` rows (a bound, not a measure: 30 s)."""
    for _ in range(3000):
        if writer.stats.written >= rows:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the writer stored {writer.stats.written} rows, not {rows}")


async def _lingering(database: AsyncDatabase, org: uuid.UUID) -> AsyncAuditWriter:
    """A writer that stored a first batch of 100 while 50 more rows arrived: those 50
    wait for a full batch (a linger far longer than the test)."""
    writer = AsyncAuditWriter(database, batch_size=100, linger=600)
    for n in range(150):  # no await yields to the worker in between
        await writer.submit(_log(org, n))
    await _written(writer, 100)
    return writer


async def test_rows_arriving_under_load_wait_for_a_fuller_batch(
    db_config: DatabaseConfig, fresh_owner_db: str
) -> None:
    org = _org(fresh_owner_db)
    async with await AsyncDatabase.connect(app_config(db_config)) as database:
        writer = await _lingering(database, org)
        for n in range(150, 200):
            await writer.submit(_log(org, n))
        await _written(writer, 200)
        assert writer.stats.batches == 2  # without the linger: 100, 50, 50
        await writer.close()


async def test_flush_and_close_do_not_wait_for_the_linger(
    db_config: DatabaseConfig, fresh_owner_db: str
) -> None:
    org = _org(fresh_owner_db)
    async with await AsyncDatabase.connect(app_config(db_config)) as database:
        writer = await _lingering(database, org)
        assert not await writer.flush(timeout=30)
        assert writer.stats.written == 150
        writer = await _lingering(database, org)
        assert not await writer.close(timeout=30)
        assert writer.stats.written == 150


async def test_an_idle_writer_stores_a_lone_row_at_once(
    db_config: DatabaseConfig, fresh_owner_db: str
) -> None:
    org = _org(fresh_owner_db)
    async with await AsyncDatabase.connect(app_config(db_config)) as database:
        writer = AsyncAuditWriter(database, batch_size=100, linger=600)
        for n in range(3):
            await writer.submit(_log(org, n))
            await _written(writer, n + 1)
        assert writer.stats.batches == 3
        await writer.close()
