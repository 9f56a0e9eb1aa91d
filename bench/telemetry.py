"""What OpenTelemetry costs a repository point lookup (part of `make bench`; alone:
`python -m bench.telemetry`, which updates its keys in bench/results.json).

One child process per set-up, each alternating rounds of the same 200 lookups
(``organizations.get_by_id`` in a ``pinned()`` block: one connection, so the
call itself is as cheap as it gets and telemetry's share of it the largest) on
two repositories of one factory: the factory's own ("ours") and one whose
instrumented queries are taken away ("theirs"): the class's generated queries,
which is the whole of the per-call path before llmcp.telemetry, since that
instance attribute is the only place telemetry enters a call. Each side keeps
the median of its rounds, in lookups per second of this process's CPU (what
telemetry costs is client CPU; on a shared machine it is also far steadier than
the wall clock, which the ``_wall`` keys give alongside, without a target). The set-ups:

- ``telemetry_off_lookup_vs_baseline``: opentelemetry not importable (its
  ``sys.modules`` entry None, as if not installed). The hook then does nothing,
  so both sides run the same code: the ratio is the noise floor of the
  comparison, and falls below it if anything of telemetry reaches the call;
- ``telemetry_noop_lookup_vs_baseline``: opentelemetry-api installed, no SDK
  provider set (what a service gets from the extra alone, or from FastAPI, which
  depends on the API): llmcp then makes no spans, so this too is the noise floor;
- ``telemetry_sdk_lookup_vs_baseline``: the SDK's ``TracerProvider``, every span
  sampled and handed to a ``SimpleSpanProcessor`` whose exporter discards it
  (the client cost of making and ending spans, without an export's).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from bench.__main__ import RESULTS, Case, seed_organizations, separate_cpus

_SETUPS = (
    ("off", "telemetry_off_lookup_vs_baseline", 0.98,
     "repository get_by_id, opentelemetry not installed vs the path without telemetry"),
    ("noop", "telemetry_noop_lookup_vs_baseline", 0.98,
     "repository get_by_id, opentelemetry-api without SDK (no spans made) vs without telemetry"),
    ("sdk", "telemetry_sdk_lookup_vs_baseline", None,
     "repository get_by_id, OpenTelemetry SDK (every span sampled) vs without telemetry"),
)  # fmt: skip

_CHILD = """
import sys
if sys.argv[1] == "off":
    sys.modules["opentelemetry"] = None  # as if it were not installed
from bench.telemetry import child
child(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
"""


def child(setup: str, url: str, rounds: int, seconds: float) -> None:
    """One set-up's rounds (in a process of its own); prints the medians of each side
    (ours, theirs) in CPU and in wall-clock rates: ``{"cpu": [..], "wall": [..]}``."""
    import psycopg

    from llmcp import telemetry
    from llmcp.config import DatabaseConfig
    from llmcp.factory import RepositoryFactory
    from llmcp.repositories.organizations import OrganizationRepository

    assert telemetry.ENABLED is (setup != "off"), setup
    if setup == "sdk":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Discard(SpanExporter):
            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(Discard()))
        trace.set_tracer_provider(provider)

    with psycopg.connect(url) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM organizations LIMIT 200")]
    config = DatabaseConfig(url=url, min_size=1, max_size=1)
    with RepositoryFactory.connect(config) as factory:
        tx = factory.transaction_manager()
        ours = factory.repositories().organizations
        theirs = OrganizationRepository(tx, cursor_secret=b"bench-telemetry-secret")
        vars(theirs).pop("_queries", None)  # the class's own: no span
        assert ("_queries" in vars(ours)) == (setup == "sdk")  # spans only where recorded

        def lookups(repository: OrganizationRepository) -> Any:
            def run() -> int:
                with tx.pinned():
                    for org_id in ids:
                        repository.get_by_id(org_id)
                return len(ids)

            return run

        sides = (lookups(ours), lookups(theirs))
        for side in sides:
            side()  # warm up: the connection, prepared statements, caches
        rates: tuple[list[tuple[float, float]], ...] = ([], [])
        for n in range(rounds):
            # alternating rounds, which side goes first alternating too
            for index in (0, 1) if n % 2 == 0 else (1, 0):
                rates[index].append(_rates(sides[index], seconds))
    cpu, wall = ([statistics.median(r[k] for r in side) for side in rates] for k in (0, 1))
    print(json.dumps({"cpu": cpu, "wall": wall}))


def _rates(work: Callable[[], int], seconds: float) -> tuple[float, float]:
    """Units per CPU-second of this process, and per second, of ``work`` run for ``seconds``."""
    units = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        units += work()
    return (units / (time.process_time() - cpu_started), units / (time.perf_counter() - started))


def telemetry_cases(url: str, rounds: int, seconds: float) -> list[Case]:
    """The three set-ups, each in a child process (which inherits this one's CPU)."""
    cases = []
    for setup, key, target, description in _SETUPS:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, setup, url, str(rounds), str(seconds)],
            capture_output=True, text=True, check=False, timeout=600,
            env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},  # defaults
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"bench.telemetry {setup}: {done.stderr}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        (cpu_ours, cpu_theirs), (wall_ours, wall_theirs) = figures["cpu"], figures["wall"]
        cases.append(Case(key, description, cpu_ours, cpu_theirs, "lookups/CPU-s", target))
        cases.append(Case(key.replace("_vs_", "_wall_vs_"), f"{description} (wall clock)",
                          wall_ours, wall_theirs, "lookups/s", None))  # fmt: skip
    return cases


def merge_results(cases: list[Case], path: str = RESULTS) -> None:
    """Put ``cases`` into the results file of the last `make bench`, in place of the
    same keys (the other figures stay as that run measured them)."""
    try:
        with open(path) as file:
            report = json.load(file)
    except FileNotFoundError:
        report = {"cases": []}
    keys = {case.key for case in cases}
    report["cases"] = [c for c in report.get("cases", []) if c.get("key") not in keys]
    for case in cases:
        report[case.key] = round(case.ratio, 4)
        report["cases"].append(asdict(case) | {"ratio": round(case.ratio, 4)})
    with open(path, "w") as file:
        file.write(json.dumps(report, indent=2) + "\n")


def main() -> None:
    import argparse

    import psycopg

    from llmcp.dev.scratch import ScratchDatabases

    parser = argparse.ArgumentParser(prog="python -m bench.telemetry", description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.2, help="per round and side")
    args = parser.parse_args()
    with ScratchDatabases() as databases:
        url = databases.owner_url(databases.clone("telemetry"))
        with psycopg.connect(url) as conn:
            seed_organizations(conn, 200)
            with separate_cpus(conn) as placement:
                print(placement)
                cases = telemetry_cases(url, args.rounds, args.seconds)
    for case in cases:
        target = "" if case.target is None else f"{case.target:.2f}"
        print(f"{case.key:<36} {case.ours:>10,.0f} {case.theirs:>10,.0f} {case.unit:<10} "
              f"{case.ratio:>7.3f} {target:>6}")  # fmt: skip
    merge_results(cases)
    print(f"updated {RESULTS}")


if __name__ == "__main__":
    main()
