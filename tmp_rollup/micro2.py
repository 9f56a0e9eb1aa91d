"""Server-side loop: n (insert pending + commit + update completed + commit) per variant,
as the application role; prints microseconds per request (min over rounds)."""

import sys
import uuid

import psycopg

from llmcp.dev.scratch import ScratchDatabases
from tmp_rollup.variants import VARIANTS

PROC = """
CREATE PROCEDURE bench_pairs(n integer, o uuid, a uuid, tag text, INOUT spent double precision)
LANGUAGE plpgsql AS $$
DECLARE
    rid uuid; v integer; t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    FOR i IN 1..n LOOP
        PERFORM set_config('llmcp.org_id', o::text, true);
        INSERT INTO inference_requests (id, org_id, app_id, request_id, provider, model, status,
            prompt_tokens, completion_tokens, total_tokens, cost)
        VALUES (gen_random_uuid(), o, a, tag || i, 'openai', 'gpt', 'pending', 0, 0, 0, 0)
        RETURNING id, version INTO rid, v;
        COMMIT;
        PERFORM set_config('llmcp.org_id', o::text, true);
        UPDATE inference_requests SET status = 'completed', prompt_tokens = 100, completion_tokens = 20,
            total_tokens = 120, cost = 0.0042, latency_ms = 300, completed_at = now()
        WHERE org_id = o AND id = rid AND version = v;
        COMMIT;
    END LOOP;
    spent := extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
END $$;
GRANT EXECUTE ON PROCEDURE bench_pairs TO public;
"""

names = sys.argv[1].split(",")
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
with ScratchDatabases() as d:
    dbs = {}
    for v in names:
        name = d.clone(v)
        org, app = uuid.uuid4(), uuid.uuid4()
        with psycopg.connect(d.owner_url(name), autocommit=True) as c:
            if VARIANTS[v]:
                c.execute(VARIANTS[v])
            c.execute(PROC)
            c.execute("INSERT INTO organizations (id, name, slug) VALUES (%s, 'o', 'o')", (org,))
            c.execute("INSERT INTO applications (id, org_id, name, api_key_hash) VALUES (%s, %s, 'a', %s)", (app, org, uuid.uuid4().hex * 2))
        dbs[v] = (name, org, app)
    best = {v: [] for v in names}
    for r in range(rounds):
        for v in names if r % 2 == 0 else list(reversed(names)):
            name, org, app = dbs[v]
            with psycopg.connect(d.url(name), autocommit=True) as c:
                pid = c.info.backend_pid
                c.execute("SELECT 1")
                c0 = int(open(f"/proc/{pid}/schedstat").read().split()[0])
                (spent,) = c.execute("CALL bench_pairs(%s, %s, %s, %s, NULL)", (n, org, app, f"r{r}-")).fetchone()
                c1 = int(open(f"/proc/{pid}/schedstat").read().split()[0])
            best[v].append((c1 - c0) / n / 1000)
    for v in names:
        name, org, app = dbs[v]
        with psycopg.connect(d.owner_url(name)) as c:
            ok = c.execute("SELECT (SELECT (sum(total_requests), sum(completed_requests), sum(total_tokens), sum(total_cost), sum(latency_sum)) FROM inference_hourly_metrics)::text, (SELECT (count(*), count(*) FILTER (WHERE status='completed'), sum(total_tokens), sum(cost), sum(latency_ms)) FROM inference_requests)::text").fetchone()
        xs = sorted(best[v])
        print(f"{v:<12} CPU us/request min {xs[0]:7.1f} median {xs[len(xs)//2]:7.1f} max {xs[-1]:7.1f}   {ok}", flush=True)
