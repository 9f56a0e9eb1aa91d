"""`python -m bench.pooled`: llmcp through PgBouncer (transaction mode) against llmcp direct.

One run, one server (embedded, or ``LLMCP_DATABASE_URL``), as the application
role: a tenant-scoped point lookup (``applications.get_by_id``) and a create
(``users.create``), sync (one client) and async (8 tasks on a pool of 4), in
four set-ups: direct (named statements, session settings), pooled mode on the
server itself (``pooler="transaction"``: unnamed statements, settings in every
call), the same with named statements (``pooler_prepared_statements``, as for
PgBouncer 1.21+), and through a PgBouncer of its own (Debian's ``pgbouncer``
1.18: unnamed statements).
Rounds alternate between the set-ups, the best round of each is kept, and the
ratios are to direct (throughput; higher is better). Nothing is written.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.__main__ import best_rate
from llmcp import conninfo
from llmcp.config import DatabaseConfig
from llmcp.dev.pgbouncer import PgBouncer, binary
from llmcp.dev.scratch import TEST_APP_PASSWORD, TEST_APP_ROLE, ScratchDatabases
from llmcp.factory import RepositoryFactory
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.inputs import NewApplication, NewOrganization, NewUser

_TASKS = 8
_CALLS = 200  # per measured unit of work


def _key(n: int) -> str:
    return uuid.uuid5(uuid.NAMESPACE_DNS, f"pooled-bench-{n}").hex * 2


def _sync_work(factory: RepositoryFactory, org: uuid.UUID, app: uuid.UUID
               ) -> dict[str, Callable[[], int]]:  # fmt: skip
    repos = factory.repositories()

    def lookup() -> int:
        for _ in range(_CALLS):
            repos.applications.get_by_id(org, app)
        return _CALLS

    def create() -> int:
        for _ in range(_CALLS // 4):
            repos.users.create(NewUser(org_id=org, email=f"{uuid.uuid4().hex}@bench.io",
                                       cognito_sub=uuid.uuid4().hex))  # fmt: skip
        return _CALLS // 4

    return {"lookup, sync": lookup, "create, sync": create}


def _async_work(loop: asyncio.AbstractEventLoop, factory: AsyncRepositoryFactory,
                org: uuid.UUID, app: uuid.UUID) -> dict[str, Callable[[], int]]:  # fmt: skip
    repos = factory.repositories()

    async def lookups() -> None:
        for _ in range(_CALLS // _TASKS):
            await repos.applications.get_by_id(org, app)

    async def creates() -> None:
        for _ in range(_CALLS // 4 // _TASKS):
            await repos.users.create(NewUser(org_id=org, email=f"{uuid.uuid4().hex}@bench.io",
                                             cognito_sub=uuid.uuid4().hex))  # fmt: skip

    def run(each: Callable[[], Coroutine[Any, Any, None]], units: int) -> Callable[[], int]:
        async def all_tasks() -> None:
            await asyncio.gather(*(each() for _ in range(_TASKS)))

        def work() -> int:
            loop.run_until_complete(all_tasks())
            return units

        return work

    return {
        "lookup, async x8": run(lookups, _CALLS // _TASKS * _TASKS),
        "create, async x8": run(creates, _CALLS // 4 // _TASKS * _TASKS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pooled", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4, help="per round and set-up")
    args = parser.parse_args()
    if binary() is None:
        raise SystemExit("needs Debian's pgbouncer (apt-get install pgbouncer)")
    folder = Path(tempfile.mkdtemp(prefix="llmcp-pgbouncer-bench-"))
    loop = asyncio.new_event_loop()
    with ScratchDatabases() as databases:
        name = databases.clone("pooled_bench")
        direct = databases.direct_url(name)
        admin = conninfo.parse(databases.admin_url)
        server = {"host": admin.get("host") or "127.0.0.1", "port": admin.get("port") or "5432"}
        users = {TEST_APP_ROLE: TEST_APP_PASSWORD}
        bouncer = PgBouncer(folder, server=server, users=users, pool_size=4)
        with bouncer:
            setups = {
                "direct": DatabaseConfig(url=direct, max_size=4),
                "pooled mode, direct": DatabaseConfig(url=direct, max_size=4, pooler="transaction"),
                "pooled, named, direct": DatabaseConfig(
                    url=direct, max_size=4, pooler="transaction", pooler_prepared_statements=True
                ),
                "through pgbouncer": DatabaseConfig(url=bouncer.url(name, TEST_APP_ROLE),
                                                    max_size=4, pooler="transaction"),
            }  # fmt: skip
            with RepositoryFactory.connect(setups["direct"]) as seeding:
                repos = seeding.repositories()
                org = repos.organizations.create(NewOrganization(name="b", slug=uuid.uuid4().hex))
                app = repos.applications.create(
                    NewApplication(org_id=org.id, name="a", api_key_hash=_key(0))
                )
            work: dict[str, dict[str, Callable[[], int]]] = {}
            factories: list[RepositoryFactory] = []
            afactories: list[AsyncRepositoryFactory] = []
            for label, config in setups.items():
                factory = RepositoryFactory.connect(config)
                afactory = loop.run_until_complete(AsyncRepositoryFactory.connect(config))
                factories.append(factory)
                afactories.append(afactory)
                work[label] = _sync_work(factory, org.id, app.id) | _async_work(
                    loop, afactory, org.id, app.id
                )
            best: dict[tuple[str, str], float] = {}
            for case in work["direct"]:
                for label in setups:
                    work[label][case]()  # warm up
                for _ in range(args.rounds):
                    for label in setups:
                        rate = best_rate(work[label][case], args.seconds)
                        best[label, case] = max(best.get((label, case), 0.0), rate)
            for factory in factories:
                factory.close()
            for afactory in afactories:
                loop.run_until_complete(afactory.close())
    loop.close()
    shutil.rmtree(folder, ignore_errors=True)
    print(f"{'case':<20}" + "".join(f"{label:>24}" for label in setups))
    for case in work["direct"]:
        base = best["direct", case]
        cells = [f"{best[label, case]:>12,.0f}/s ({best[label, case] / base:4.2f})"
                 for label in setups]  # fmt: skip
        print(f"{case:<20}" + "".join(f"{cell:>24}" for cell in cells))
    print(f"(ratios to direct; best of {args.rounds} rounds of {args.seconds} s, {time.ctime()})")


if __name__ == "__main__":
    main()
