"""Server CPU per gateway request (bench/gateway.py) per trigger variant: python -m tmp_rollup.gw_triggers current,none 2"""

import asyncio
import sys

import psycopg

from bench import gateway
from llmcp.dev.scratch import ScratchDatabases
from tmp_rollup.variants import VARIANTS

names = sys.argv[1].split(",")
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 1
with ScratchDatabases() as d:
    for r in range(repeats):
        for v in names if r % 2 == 0 else reversed(names):
            n = d.clone(v)
            if VARIANTS[v]:
                with psycopg.connect(d.owner_url(n), autocommit=True) as c:
                    c.execute(VARIANTS[v])
            server: dict[str, float] = {}
            sides = asyncio.run(gateway.run(d.url(n), d.owner_url(n), 2, 1.5, server))
            print(v, " ".join(f"{k}: {sides[k][0]:.0f}/s client {sides[k][1]*1e6:.0f}us server {server.get(k, 0)*1e6:.0f}us" for k in sides), flush=True)
            d.drop(n)
