"""Per-trigger time of one insert and one update (EXPLAIN ANALYZE), medians over many."""

import re
import statistics
import sys
import uuid
from collections import defaultdict

import psycopg

from llmcp.dev.scratch import ScratchDatabases
from tmp_rollup.variants import VARIANTS

INSERT = """EXPLAIN (ANALYZE, SUMMARY ON) INSERT INTO inference_requests (id, org_id, app_id, request_id, provider, model,
 status, prompt_tokens, completion_tokens, total_tokens, cost)
VALUES (%s, %s, %s, %s, 'openai', 'gpt', 'pending', 0, 0, 0, 0)"""
UPDATE = """EXPLAIN (ANALYZE, SUMMARY ON) UPDATE inference_requests SET status = 'completed', prompt_tokens = 100,
 completion_tokens = 20, total_tokens = 120, cost = 0.0042, latency_ms = 300, completed_at = now()
WHERE org_id = %s AND id = %s AND version = 1"""
TRIGGER = re.compile(r"Trigger (\S+)(?: on \S+)?: time=([\d.]+) calls=(\d+)")
EXEC = re.compile(r"Execution Time: ([\d.]+) ms")

names = sys.argv[1].split(",")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
with ScratchDatabases() as d:
    conns = {}
    for v in names:
        name = d.clone(v)
        org, app = uuid.uuid4(), uuid.uuid4()
        with psycopg.connect(d.owner_url(name), autocommit=True) as c:
            if VARIANTS[v]:
                c.execute(VARIANTS[v])
            c.execute("INSERT INTO organizations (id, name, slug) VALUES (%s, 'o', 'o')", (org,))
            c.execute("INSERT INTO applications (id, org_id, name, api_key_hash) VALUES (%s, %s, 'a', %s)", (app, org, uuid.uuid4().hex * 2))
        c = psycopg.connect(d.url(name), autocommit=True)
        c.execute(f"SET llmcp.org_id = '{org}'")
        conns[v] = (c, org, app)
    times = {v: defaultdict(list) for v in names}
    for i in range(n):
        for v in names:
            c, org, app = conns[v]
            rid = uuid.uuid4()
            for label, stmt, args in (("insert", INSERT, (rid, org, app, f"x{i}")), ("update", UPDATE, (org, rid))):
                plan = "\n".join(r[0] for r in c.execute(stmt, args))
                if i < n // 4:
                    continue
                times[v][f"{label} total"].append(float(EXEC.search(plan).group(1)) * 1000)
                for trig, t, calls in TRIGGER.findall(plan):
                    times[v][f"{label} {trig}"].append(float(t) * 1000)
    for v in names:
        print(f"{v:<10}", "  ".join(f"{k}: {statistics.median(x):.0f}" for k, x in sorted(times[v].items())), flush=True)
