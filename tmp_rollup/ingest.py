"""audit_ingest of make bench alone: python -m tmp_rollup.ingest [rows] [rounds] [repeats]"""

import sys

import psycopg

from bench.__main__ import audit_ingest, seed_organizations, separate_cpus
from llmcp.dev.scratch import ScratchDatabases

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 1
with ScratchDatabases() as d:
    url = d.owner_url(d.clone("ingest"))
    with psycopg.connect(url) as conn:
        ids = seed_organizations(conn, 10)
        conn.autocommit = True
        with separate_cpus(conn) as placement:
            print(placement)
            for _ in range(repeats):
                for case in audit_ingest(url, ids[0], rows, rounds):
                    print(f"{case.key:<34} {case.ours:>10,.0f} {case.theirs:>10,.0f} {case.ratio:.3f}", flush=True)
