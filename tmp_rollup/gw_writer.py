"""The llmcp gateway with the audit log through async_insert: batch sizes and server CPU.
python -m tmp_rollup.gw_writer 0,0.01,0.025"""

import asyncio
import sys
import time
import uuid
import datetime as dt

import msgspec
import psycopg

from bench import gateway
from llmcp.audit_writer_async import AsyncAuditWriter
from llmcp.config import DatabaseConfig
from llmcp.dev.scratch import ScratchDatabases
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import AuditAction, InferenceStatus
from llmcp.ids import uuid7
from llmcp.inputs import NewAuditLog, NewInferenceRequest
from llmcp.database_async import AsyncDatabase


def writer_gateway(factory):
    repos = factory.repositories()

    async def request(call, request_id):
        app = await repos.applications.get_by_api_key_hash(call.api_key_hash)
        policies = await repos.policies.get_applicable_policies(app.org_id, app.id, call.user_id)
        pending = await repos.inference_requests.create(NewInferenceRequest(
            org_id=app.org_id, app_id=app.id, user_id=call.user_id, request_id=request_id,
            provider="openai", model="gpt-4o-mini", id=uuid7()))
        await repos.audit_logs.async_insert(NewAuditLog(
            org_id=app.org_id, app_id=app.id, user_id=call.user_id,
            action=AuditAction.INFERENCE_REQUESTED, resource_type="inference_request",
            resource_id=pending.id, request_id=request_id, details={"model": pending.model},
            id=uuid7()))
        await repos.inference_requests.update(msgspec.structs.replace(pending,
            status=InferenceStatus.COMPLETED, prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens, cost=call.cost,
            latency_ms=call.latency_ms, completed_at=dt.datetime.now(dt.UTC)))
        return tuple(p.id for p in policies)

    return request


async def one(app_url, owner_url, calls, linger, seconds):
    config = DatabaseConfig(url=app_url, min_size=gateway.POOL_SIZE, max_size=gateway.POOL_SIZE)
    database = await AsyncDatabase.connect(config)
    writer = AsyncAuditWriter(database, linger=linger) if linger >= 0 else None
    factory = AsyncRepositoryFactory(database, audit_writer=writer)
    gw = writer_gateway(factory) if writer else gateway.llmcp_gateway(factory)
    watch = await psycopg.AsyncConnection.connect(owner_url, autocommit=True)
    await gateway._drive(gw, calls, 0.5, f"warm-{linger}-{uuid.uuid4().hex[:6]}")
    if writer:
        await writer.flush()
        s0 = writer.stats
    before = await gateway._backend_cpu(watch)
    done, wall, cpu = await gateway._drive(gw, calls, seconds, f"run-{linger}-{uuid.uuid4().hex[:6]}")
    if writer:
        await writer.flush()
    spent = gateway._spent(before, await gateway._backend_cpu(watch))
    out = f"linger {linger}: {done/wall:.0f}/s client {cpu/done*1e6:.0f}us server {spent/done*1e6:.0f}us"
    if writer:
        s1 = writer.stats
        out += f" rows/batch {(s1.written - s0.written) / max(1, s1.batches - s0.batches):.1f}"
    print(out, flush=True)
    await watch.close()
    await factory.close()


lingers = [float(x) for x in sys.argv[1].split(",")]
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 2
with ScratchDatabases() as d:
    n = d.clone("gw")
    calls = gateway.seed(d.owner_url(n))
    for r in range(repeats):
        for l in lingers if r % 2 == 0 else reversed(lingers):
            asyncio.run(one(d.url(n), d.owner_url(n), calls, l, 3.0))
