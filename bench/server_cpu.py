"""Where the gateway case's time goes: each side's throughput, and its client and
server CPU per request, on an embedded server, client and server pinned as in
``make bench``.

``python -m bench.server_cpu [--turns N] [--seconds S]``: each figure is the
median of a side's turns, as in ``make bench``. The server's CPU is what the
database's client backends spent during each side's turns (from /proc); the
audit writer's backends are the pool's, so its batches are counted in llmcp's
share.
"""

from __future__ import annotations

import argparse
import asyncio

import psycopg

from bench import gateway
from bench.__main__ import separate_cpus
from llmcp.dev.scratch import ScratchDatabases


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.server_cpu", description=__doc__)
    parser.add_argument("--turns", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.4, help="per side and turn")
    args = parser.parse_args()
    with ScratchDatabases() as databases:
        name = databases.clone("gateway")
        server: dict[str, float] = {}
        with psycopg.connect(databases.owner_url(name)) as conn, separate_cpus(conn) as placed:
            print(placed)
            sides = asyncio.run(gateway.run(databases.url(name), databases.owner_url(name),
                                            args.turns, args.seconds, server_cpu=server))  # fmt: skip
    print(f"{'side':<20}{'requests/s':>12}{'client us':>11}{'server us':>11}")
    for side, (rate, cpu) in sides.items():
        print(f"{side:<20}{rate:>12,.0f}{cpu * 1e6:>11,.0f}{server.get(side, 0.0) * 1e6:>11,.0f}")


if __name__ == "__main__":
    main()
