"""Bulk statements per trigger variant (owner): python -m tmp_rollup.bulk current,row_row 50000"""

import sys
import time
import uuid

import psycopg

from llmcp.dev.scratch import ScratchDatabases
from tmp_rollup.variants import VARIANTS

BULK_INSERT = """INSERT INTO inference_requests (id, org_id, app_id, request_id, provider, model,
 status, prompt_tokens, completion_tokens, total_tokens, cost, created_at)
SELECT gen_random_uuid(), %(org)s, %(app)s, 'b-' || g, 'p', 'm', 'pending', 0, 0, 0, 0,
 date_trunc('month', now()) + (g %% 10) * interval '1 hour' + g * interval '1 ms'
FROM generate_series(1, %(n)s) AS g"""
CHECK = """SELECT
 (SELECT (sum(total_requests), sum(completed_requests), sum(total_tokens), sum(total_cost)) FROM inference_hourly_metrics WHERE org_id = %(org)s)::text,
 (SELECT (count(*), count(*) FILTER (WHERE status = 'completed'), sum(total_tokens), sum(cost)) FROM inference_requests WHERE org_id = %(org)s)::text"""

names = sys.argv[1].split(",")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
with ScratchDatabases() as d:
    for v in names:
        name = d.clone(v)
        org, app = uuid.uuid4(), uuid.uuid4()
        with psycopg.connect(d.owner_url(name), autocommit=True) as c:
            if VARIANTS[v]:
                c.execute(VARIANTS[v])
            c.execute("INSERT INTO organizations (id, name, slug) VALUES (%s, 'o', 'o')", (org,))
            c.execute("INSERT INTO applications (id, org_id, name, api_key_hash) VALUES (%s, %s, 'a', %s)", (app, org, uuid.uuid4().hex * 2))
            p = {"org": org, "app": app, "n": n}
            out = []
            for label, stmt in (("insert", BULK_INSERT),
                                ("update", "UPDATE inference_requests SET status = 'completed', prompt_tokens = 7, total_tokens = 7, cost = 1 WHERE org_id = %(org)s"),
                                ("noop-update", "UPDATE inference_requests SET error_message = 'x' WHERE org_id = %(org)s"),
                                ("check", None),
                                ("delete", "DELETE FROM applications WHERE id = %(app)s")):
                if stmt is None:
                    out.append(str(c.execute(CHECK, p).fetchone()))
                    continue
                t = time.perf_counter()
                c.execute(stmt, p)
                out.append(f"{label} {time.perf_counter() - t:.2f}s")
            left = c.execute("SELECT count(*) FROM inference_hourly_metrics WHERE org_id = %s", (org,)).fetchone()
            print(v, " | ".join(out), "rollup rows left", left, flush=True)
        d.drop(name)
