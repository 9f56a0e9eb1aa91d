"""``llmcp seed``: deterministic, exact counts, every constraint kept, realistic shapes.

As the owner (``databases.owner_url``): seeding is COPY into every table, which
row-level security refuses the application role, and the constraint check
below is DDL."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import msgspec
import psycopg
import pytest

from llmcp.dev.seed import WINDOW_DAYS, WINDOW_END, SeedSummary, _Generator, _Progress, seed
from llmcp.errors import ConflictError, ValidationError
from llmcp.policy_config import PolicyConfig
from llmcp.testing import TestDatabases

TABLES = ("organizations", "applications", "users", "policies", "inference_requests", "audit_logs")


class Counts(TypedDict):
    """The row counts of ``seed()``."""

    organizations: int
    requests: int
    audit_logs: int


SMALL: Counts = {"organizations": 4, "requests": 3_000, "audit_logs": 4_000}


@pytest.fixture
def two_fresh(databases: TestDatabases) -> Iterator[tuple[str, str]]:
    names = [databases.clone("seed_a"), databases.clone("seed_b")]
    yield databases.owner_url(names[0]), databases.owner_url(names[1])
    for name in names:
        databases.drop(name)


def _digests(url: str) -> dict[str, tuple[int, str]]:
    """Per table: row count and md5 of every row in id order."""
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), ''))"
                f" FROM {table} AS t"
            ).fetchone()  # type: ignore[misc]
            for table in TABLES
        }


def test_same_seed_same_rows_into_two_databases(two_fresh: tuple[str, str]) -> None:
    first = seed(two_fresh[0], **SMALL, seed=42)
    # the second load goes through one connection instead of two: same rows anyway
    with psycopg.connect(two_fresh[1]) as conn:
        second = seed(conn, **SMALL, seed=42)
    assert (first.organizations, first.inference_requests) == (4, 3_000)
    assert [getattr(first, t) for t in TABLES] == [getattr(second, t) for t in TABLES]
    assert _digests(two_fresh[0]) == _digests(two_fresh[1])


def test_other_seeds_give_other_rows_and_fit_in_one_database(fresh_owner_db: str) -> None:
    seed(fresh_owner_db, organizations=2, requests=500, seed=1)
    before = _digests(fresh_owner_db)
    seed(fresh_owner_db, organizations=2, requests=500, seed=2)  # slugs, e-mails carry the seed
    after = _digests(fresh_owner_db)
    assert after["inference_requests"][0] == 1_000
    assert after["organizations"][0] == 4
    assert before != after


def test_the_same_seed_twice_into_one_database_is_a_conflict(fresh_owner_db: str) -> None:
    seed(fresh_owner_db, organizations=1, requests=10, seed=5)
    with pytest.raises(ConflictError):
        seed(fresh_owner_db, organizations=1, requests=10, seed=5)
    assert _digests(fresh_owner_db)["inference_requests"][0] == 10  # nothing half-written


def test_counts_are_exact(fresh_owner_db: str) -> None:
    summary = seed(fresh_owner_db, organizations=3, requests=2_345, audit_logs=5_000, seed=3)
    counts = {table: count for table, (count, _) in _digests(fresh_owner_db).items()}
    assert counts == {t: getattr(summary, t) for t in TABLES}
    assert summary.audit_logs == 5_000
    assert summary.rows == sum(counts.values())
    assert summary.seconds > 0


def test_default_audit_logs_one_per_entity_and_one_per_request(fresh_owner_db: str) -> None:
    summary = seed(fresh_owner_db, organizations=2, requests=700, seed=4)
    entities = summary.organizations + summary.applications + summary.users + summary.policies
    assert summary.audit_logs == entities + 700


@pytest.mark.parametrize("audit_logs", [0, 5, 1_600])
def test_audit_logs_fewer_or_more_than_requests(fresh_owner_db: str, audit_logs: int) -> None:
    summary = seed(fresh_owner_db, organizations=1, requests=400, audit_logs=audit_logs, seed=6)
    assert summary.audit_logs == audit_logs
    with psycopg.connect(fresh_owner_db) as conn:
        row = conn.execute("SELECT count(*) FROM audit_logs").fetchone()
    assert row == (audit_logs,)


def test_audit_logs_without_requests(fresh_owner_db: str) -> None:
    summary = seed(fresh_owner_db, organizations=1, requests=0, audit_logs=300, seed=7)
    assert (summary.inference_requests, summary.audit_logs) == (0, 300)


@pytest.fixture(scope="module")
def loaded(databases: TestDatabases) -> Iterator[tuple[str, SeedSummary]]:
    name = databases.clone("seed_loaded")
    summary = seed(databases.owner_url(name), organizations=6, requests=20_000, audit_logs=30_000)
    yield databases.owner_url(name), summary
    databases.drop(name)


def _scalar(url: str, query: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


# Every one of these counts rows that break a rule; the schema enforces most of
# them already (COPY would have failed), the rest are the loader's own promises.
BROKEN = {
    "total tokens": "SELECT count(*) FROM inference_requests"
    " WHERE total_tokens <> prompt_tokens + completion_tokens",
    "completed before created": "SELECT count(*) FROM inference_requests"
    " WHERE completed_at < created_at",
    "pending with an outcome": "SELECT count(*) FROM inference_requests WHERE status = 'pending'"
    " AND (completed_at IS NOT NULL OR latency_ms IS NOT NULL OR total_tokens > 0)",
    "finished without an outcome": "SELECT count(*) FROM inference_requests"
    " WHERE status <> 'pending' AND (completed_at IS NULL OR latency_ms IS NULL)",
    "failure without a message": "SELECT count(*) FROM inference_requests"
    " WHERE status IN ('failed', 'rejected') AND error_message IS NULL",
    "cost without tokens": "SELECT count(*) FROM inference_requests"
    " WHERE cost > 0 AND status <> 'completed'",
    "outside the window": "SELECT count(*) FROM inference_requests"
    f" WHERE created_at >= '{WINDOW_END.isoformat()}'"
    f" OR created_at < '{WINDOW_END.isoformat()}'::timestamptz - interval '{WINDOW_DAYS} days'",
    "api key hash": "SELECT count(*) FROM applications WHERE api_key_hash !~ '^[0-9a-f]{64}$'",
    "slug": "SELECT count(*) FROM organizations WHERE slug !~ '^[a-z0-9]+(-[a-z0-9]+)*$'",
    "e-mail case duplicates": "SELECT count(*) - count(DISTINCT lower(email)) FROM users",
    "request id duplicates": "SELECT count(*) - count(DISTINCT request_id) FROM inference_requests",
    "app of another organization": "SELECT count(*) FROM inference_requests AS r"
    " JOIN applications AS a ON a.id = r.app_id WHERE a.org_id <> r.org_id",
    "user of another organization": "SELECT count(*) FROM audit_logs AS l"
    " JOIN users AS u ON u.id = l.user_id WHERE u.org_id <> l.org_id",
    "policy type differs from its config": "SELECT count(*) FROM policies"
    " WHERE config ->> 'type' <> policy_type::text",
    "audit entry of an unknown request": "SELECT count(*) FROM audit_logs AS l"
    " WHERE l.resource_type = 'inference_request' AND NOT EXISTS"
    " (SELECT 1 FROM inference_requests AS r WHERE r.id = l.resource_id"
    " AND r.request_id = l.request_id AND r.org_id = l.org_id)",
    "ids not version 4": "SELECT count(*) FROM inference_requests"
    " WHERE substr(id::text, 15, 1) <> '4' OR substr(id::text, 20, 1) NOT IN ('8', '9', 'a', 'b')",
}


@pytest.mark.parametrize("rule", sorted(BROKEN))
def test_no_row_breaks_a_rule(loaded: tuple[str, SeedSummary], rule: str) -> None:
    assert _scalar(loaded[0], BROKEN[rule]) == 0


def test_every_constraint_is_validated(loaded: tuple[str, SeedSummary]) -> None:
    """Re-check every CHECK and foreign key against the stored rows (NOT VALID, then VALIDATE)."""
    with psycopg.connect(loaded[0]) as conn:
        constraints = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid),"
            " contype = 'f' AND (SELECT relkind FROM pg_class WHERE oid = conrelid) = 'p'"
            " FROM pg_constraint WHERE contype IN ('c', 'f')"
            " AND connamespace = 'public'::regnamespace"
            " AND conislocal AND conparentid = 0 ORDER BY 1, 2"  # a partition's come from its table
        ).fetchall()
        assert len(constraints) > 20
        for table, name, definition, partitioned_fkey in constraints:
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            if partitioned_fkey:  # PostgreSQL 15 checks it as it is added (no NOT VALID there)
                conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
                continue
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition} NOT VALID")
            conn.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
        conn.rollback()


def test_policies_at_every_level_with_typed_configs(loaded: tuple[str, SeedSummary]) -> None:
    with psycopg.connect(loaded[0]) as conn:
        levels: dict[str, int] = dict(
            conn.execute(
                "SELECT CASE WHEN user_id IS NOT NULL AND app_id IS NOT NULL THEN 'user+app'"
                " WHEN user_id IS NOT NULL THEN 'user' WHEN app_id IS NOT NULL THEN 'app'"
                " ELSE 'org' END, count(*) FROM policies GROUP BY 1"
            ).fetchall()
        )
        configs = [row[0] for row in conn.execute("SELECT config::text FROM policies")]
    assert set(levels) == {"org", "app", "user", "user+app"}
    for config in configs:  # every stored config decodes into the typed union
        msgspec.json.decode(config, type=PolicyConfig)


def test_distributions_look_like_production(loaded: tuple[str, SeedSummary]) -> None:
    url = loaded[0]
    share = _scalar(url, "SELECT avg((status = 'completed')::int) FROM inference_requests")
    assert 0.85 < share < 0.97
    for status in ("failed", "rejected"):
        assert _scalar(url, f"SELECT count(*) FROM inference_requests WHERE status = '{status}'")
    # a few large tenants: the largest has several times the median's traffic
    largest, median = _scalar(
        url,
        "SELECT ARRAY[max(n), percentile_disc(0.5) WITHIN GROUP (ORDER BY n)]"
        " FROM (SELECT count(*) AS n FROM inference_requests GROUP BY org_id) AS t",
    )
    assert largest > 2 * median
    # working hours are busier than the night (UTC)
    day = _scalar(
        url, "SELECT count(*) FROM inference_requests WHERE extract(hour FROM created_at) = 14"
    )
    night = _scalar(
        url, "SELECT count(*) FROM inference_requests WHERE extract(hour FROM created_at) = 3"
    )
    assert day > 5 * night
    # log-normal tokens: a long tail above the median
    p50, p99 = _scalar(
        url,
        "SELECT ARRAY[percentile_disc(0.5) WITHIN GROUP (ORDER BY prompt_tokens),"
        " percentile_disc(0.99) WITHIN GROUP (ORDER BY prompt_tokens)]"
        " FROM inference_requests WHERE status = 'completed'",
    )
    assert 200 < p50 < 1_000 and p99 > 5 * p50


def test_statistics_are_fresh(loaded: tuple[str, SeedSummary]) -> None:
    # the month partitions (a partitioned table has no storage of its own) that hold rows
    analyzed = _scalar(
        loaded[0],
        "SELECT count(DISTINCT i.inhparent) FROM pg_stat_user_tables AS s"
        " JOIN pg_inherits AS i ON i.inhrelid = s.relid"
        " WHERE i.inhparent IN ('inference_requests'::regclass, 'audit_logs'::regclass)"
        " AND s.n_live_tup > 0 AND s.last_analyze IS NOT NULL AND s.last_vacuum IS NOT NULL",
    )
    assert analyzed == 2


def test_ids_are_those_of_uuid4_from_the_seeded_random() -> None:
    generator = _Generator(9)
    reference = random.Random(9)
    for _ in range(1_000):
        assert generator.uuid4() == uuid.UUID(int=reference.getrandbits(128), version=4).hex


@pytest.mark.parametrize(
    "arguments",
    [
        {"organizations": 0, "requests": 1},
        {"organizations": 1, "requests": -1},
        {"organizations": 1, "requests": 1, "audit_logs": -1},
        {"organizations": 1, "requests": 1, "seed": -3},
        {"organizations": True, "requests": 1},
    ],
)
def test_bad_arguments_are_validation_errors(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        seed("postgresql://unused@/nowhere", **arguments)


def test_progress_bar_draws_only_when_enabled() -> None:
    shown, hidden = io.StringIO(), io.StringIO()
    for stream, enabled in ((shown, True), (hidden, False)):
        bar = _Progress(200, enabled=enabled, stream=stream)
        bar.advance(100, "audit_logs")
        bar.advance(100, "audit_logs")
        bar.status("analyzing")
        bar.close()
    assert "50%" in shown.getvalue() and "100%" in shown.getvalue()
    assert "analyzing" in shown.getvalue()
    assert shown.getvalue().endswith("\r") and "\n" not in shown.getvalue()
    assert hidden.getvalue() == ""


def test_cli_migrates_then_seeds(databases: TestDatabases, tmp_path: Path) -> None:
    name = databases.create_empty("seed_cli")  # not migrated: the command migrates first
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMCP_")}
    env["LLMCP_DATABASE_URL"] = databases.owner_url(name)
    result = subprocess.run(
        [sys.executable, "-m", "llmcp.cli", "seed", "--requests", "1500", "--organizations", "2",
         "--seed", "11"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1500 inference requests" in result.stdout
    assert result.stderr == ""  # not a terminal: no progress bar
    assert _scalar(databases.owner_url(name), "SELECT count(*) FROM inference_requests") == 1500
    again = subprocess.run(
        [sys.executable, "-m", "llmcp.cli", "seed", "--requests", "10", "--seed", "11"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert again.stderr.startswith("llmcp: ") and "Traceback" not in again.stderr
    databases.drop(name)
