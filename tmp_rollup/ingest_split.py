import time, uuid, psycopg
from psycopg.conninfo import make_conninfo
from bench.__main__ import audit_inputs, seed_organizations, separate_cpus
from llmcp.audit_writer import AuditWriter
from llmcp.config import DatabaseConfig
from llmcp.database import Database
from llmcp.dev.scratch import ScratchDatabases
with ScratchDatabases() as d:
    url = d.owner_url(d.clone("ingest"))
    with psycopg.connect(url) as conn:
        ids = seed_organizations(conn, 2); conn.autocommit = True
        with separate_cpus(conn):
            for linger in (0.0, 0.025, 0.0, 0.025):
                logs = audit_inputs(ids[0], 50000)
                with Database.connect(DatabaseConfig(url=make_conninfo(url, options="-c role=llmcp_app"), min_size=1, max_size=2)) as db:
                    w = AuditWriter(db, queue_size=50000, batch_size=2000, linger=linger)
                    t0 = time.perf_counter(); c0 = time.process_time()
                    for n in logs: w.submit(n)
                    t1 = time.perf_counter()
                    w.flush(); t2 = time.perf_counter(); c2 = time.process_time()
                    s = w.stats; w.close()
                print(f"linger {linger}: submit {t1-t0:.3f}s total {t2-t0:.3f}s ({50000/(t2-t0):,.0f} rows/s) client CPU {c2-c0:.3f}s rows/batch {s.written/s.batches:.0f}", flush=True)
