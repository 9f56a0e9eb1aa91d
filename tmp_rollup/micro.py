"""Server CPU per (insert pending + update completed) of one request, per trigger variant."""

from __future__ import annotations

import sys
import time
import uuid
from decimal import Decimal

import psycopg

from llmcp.dev.scratch import ScratchDatabases
from tmp_rollup.variants import VARIANTS

INSERT = """INSERT INTO inference_requests (id, org_id, app_id, user_id, request_id, provider, model,
 status, prompt_tokens, completion_tokens, total_tokens, cost)
VALUES (%s, %s, %s, NULL, %s, 'openai', 'gpt', 'pending', 0, 0, 0, 0) RETURNING version"""
UPDATE = """UPDATE inference_requests SET status = 'completed', prompt_tokens = 100,
 completion_tokens = 20, total_tokens = 120, cost = %s, latency_ms = 300, completed_at = now()
WHERE org_id = %s AND id = %s AND version = %s RETURNING version"""


def cpu_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def run(d: ScratchDatabases, variant: str, seconds: float) -> tuple[float, float]:
    name = d.clone(variant)
    org, app = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(d.owner_url(name), autocommit=True) as owner:
        if VARIANTS[variant]:
            owner.execute(VARIANTS[variant])
        owner.execute("INSERT INTO organizations (id, name, slug) VALUES (%s, 'o', %s)", (org, f"o-{org.hex[:8]}"))
        owner.execute(
            "INSERT INTO applications (id, org_id, name, api_key_hash) VALUES (%s, %s, 'a', %s)",
            (app, org, uuid.uuid4().hex * 2),
        )
    with psycopg.connect(d.url(name), autocommit=True, prepare_threshold=0) as conn:
        conn.execute("SELECT set_config('llmcp.org_id', %s, false)", (str(org),))
        pid = conn.info.backend_pid
        n = 0

        def one() -> None:
            nonlocal n
            rid = uuid.uuid4()
            (v,) = conn.execute(INSERT, (rid, org, app, f"r-{n}")).fetchone()  # type: ignore[misc]
            conn.execute(UPDATE, (Decimal("0.0042"), org, rid, v)).fetchone()
            n += 1

        for _ in range(300):
            one()
        n0, c0, t0 = n, cpu_ns(pid), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            one()
        done = n - n0
        server = (cpu_ns(pid) - c0) / done / 1000
        wall = (time.perf_counter() - t0) / done * 1e6
        # exactness: rollup equals raw
        check = conn.execute(
            "SELECT (SELECT sum(total_requests) FROM inference_hourly_metrics WHERE org_id = %s),"
            " (SELECT count(*) FROM inference_requests WHERE org_id = %s),"
            " (SELECT sum(completed_requests) FROM inference_hourly_metrics WHERE org_id = %s),"
            " (SELECT sum(total_tokens) FROM inference_hourly_metrics WHERE org_id = %s),"
            " (SELECT sum(total_tokens) FROM inference_requests WHERE org_id = %s)",
            (org, org, org, org, org),
        ).fetchone()
    d.drop(name)
    return server, wall, check  # type: ignore[return-value]


if __name__ == "__main__":
    names = sys.argv[1].split(",") if len(sys.argv) > 1 else list(VARIANTS)
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with ScratchDatabases() as d:
        results: dict[str, list[float]] = {v: [] for v in names}
        for r in range(rounds):
            for v in names if r % 2 == 0 else reversed(names):
                server, wall, check = run(d, v, 2.0)
                results[v].append(server)
                print(f"{v:<14} server {server:7.1f} us/request  wall {wall:7.1f} us  {check}", flush=True)
        print()
        for v, xs in results.items():
            print(f"{v:<14} server us/request min {min(xs):.1f} max {max(xs):.1f}")
