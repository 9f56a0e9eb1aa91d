"""Staleness of the admission cache: from the commit of a policy change to the cache
no longer serving the old answer, on the local (embedded) server.

One process holds the cache (its listener on the same event loop as its reads, as
a service's would be) and, on a connection of its own, changes a policy of the
organization whose applicable policies it has cached, again and again. For each
change: the time from sending COMMIT until the listener has applied the notice
(the entry is gone: the next lookup reads the database), and the same from
COMMIT's acknowledgement (0 when the notice was applied before it arrived).

    PYTHONPATH=. .venv/bin/python -m bench.cache [--changes 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import psycopg

from llmcp.config import DatabaseConfig
from llmcp.dev.scratch import ScratchDatabases
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.inputs import NewApplication, NewOrganization, NewPolicy
from llmcp.policy_config import RateLimitConfig

UPDATE = "UPDATE policies SET priority = priority + 1 WHERE org_id = %s AND id = %s"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def staleness(url: str, changes: int) -> dict[str, tuple[float, float, float]]:
    """(p50, p99, max) in ms, from COMMIT sent and from COMMIT acknowledged."""
    config = DatabaseConfig(url=url, min_size=1, max_size=2, admission_cache_size=1000)
    async with await AsyncRepositoryFactory.connect(config) as factory:
        repos, cache = factory.repositories(), factory.admission_cache
        assert cache is not None and await cache.wait_listening(10)
        org = await repos.organizations.create(
            NewOrganization(name="Stale", slug=f"stale-{uuid.uuid4().hex[:8]}")
        )
        app = await repos.applications.create(
            NewApplication(org_id=org.id, name="a", api_key_hash=uuid.uuid4().hex * 2)
        )
        policy = await repos.policies.create(
            NewPolicy(org_id=org.id, name="p", config=RateLimitConfig(requests=1, window_seconds=1))
        )
        state = cache.state
        sent: list[float] = []
        acknowledged: list[float] = []
        async with await psycopg.AsyncConnection.connect(url) as writer:
            for _ in range(changes):
                old = await repos.policies.get_applicable_policies(org.id, app.id)
                hits = state.stats().hits
                assert await repos.policies.get_applicable_policies(org.id, app.id) == old
                assert state.stats().hits == hits + 1, "the answer was not cached"
                notices = state.notices
                await writer.execute("SELECT set_config('llmcp.org_id', %s, true)", (str(org.id),))
                await writer.execute(UPDATE, (org.id, policy.id))
                started = time.perf_counter()
                await writer.commit()
                committed = time.perf_counter()
                while state.notices == notices:  # the listener runs between these turns
                    await asyncio.sleep(0)
                applied = time.perf_counter()
                sent.append((applied - started) * 1000)
                acknowledged.append(max(0.0, applied - committed) * 1000)
                assert await repos.policies.get_applicable_policies(org.id, app.id) != old
    return {
        name: (statistics.median(v), _percentile(v, 0.99), max(v))
        for name, v in (("from COMMIT sent", sent), ("from COMMIT acknowledged", acknowledged))
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cache", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--changes", type=int, default=2000)
    args = parser.parse_args()
    with ScratchDatabases() as databases:
        name = databases.clone("cache")
        figures = asyncio.run(staleness(databases.url(name), args.changes))
    print(f"admission cache staleness over {args.changes} policy changes (ms):")
    for what, (p50, p99, worst) in figures.items():
        print(f"  {what:26} p50 {p50:.3f}  p99 {p99:.3f}  max {worst:.3f}")


if __name__ == "__main__":
    main()
