"""Monthly partitions of audit_logs and inference_requests: the migration that converts
existing rows, ``llmcp db partitions`` (create, list, drop with an exact rollup and the
audit trail's purge records), interrupted detaches, and the typed error for a month
without a partition.

The databases here are migrated and filled as the owner (DDL, rows in past months,
partition maintenance are the owner's); what the service sees is checked as the
application role.
"""

from __future__ import annotations

import datetime
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from llmcp import DatabaseConfig, RepositoryFactory
from llmcp.audit_writer_base import MERGE, audit_row, row_id, rows_param
from llmcp.cli import main
from llmcp.errors import ConflictError, PermissionDeniedError, ValidationError
from llmcp.generated.models import AuditAction
from llmcp.inputs import NewAuditLog, NewInferenceRequest
from llmcp.migrate import Migrator, packaged_migrations_dir
from llmcp.partitions import Partitions, month_start
from llmcp.testing import TestDatabases
from tests.repositories.helpers import make_tenant

MIGRATION = "20261201000700_partition_audit_logs_and_inference_requests_by_month.sql"
NOW = datetime.datetime.now(datetime.UTC)
# the months the rows are in: three past months, the current one, and one long ago
MONTHS = [month_start(NOW, back) + datetime.timedelta(days=3, hours=5) for back in (3, 2, 1, 0)]
LONG_AGO = datetime.datetime(2019, 6, 1, 12, tzinfo=datetime.UTC)

Conn = psycopg.Connection[tuple[Any, ...]]

_ROLLUP = """
SELECT org_id, hour, sum(total_requests), sum(completed_requests), sum(total_tokens),
    sum(total_cost), sum(latency_sum), sum(latency_count)
FROM inference_hourly_metrics GROUP BY org_id, hour HAVING sum(total_requests) <> 0
ORDER BY 1, 2
"""
_RECOMPUTED = """
SELECT org_id, date_trunc('hour', created_at, 'UTC'), count(*),
    count(*) FILTER (WHERE status = 'completed'), sum(total_tokens), sum(cost),
    coalesce(sum(latency_ms), 0), count(latency_ms)
FROM inference_requests GROUP BY 1, 2 ORDER BY 1, 2
"""


class Filled:
    """A database migrated up to the partitioning migration, filled in several months
    as the old schema stored them, then migrated to the partitioned schema."""

    def __init__(self, databases: TestDatabases, tmp_path: Path) -> None:
        self.name = databases.create_empty("partitions")
        self.owner = databases.owner_url(self.name)
        self.app = databases.url(self.name)
        staged = tmp_path / "before"
        staged.mkdir()
        for file in sorted(packaged_migrations_dir().glob("*.sql")):
            if file.name < MIGRATION:
                shutil.copy(file, staged / file.name)
        Migrator(self.owner, migrations_dirs=[staged]).up()
        self.orgs = [uuid.uuid4(), uuid.uuid4()]
        self.apps = {org: uuid.uuid4() for org in self.orgs}
        with psycopg.connect(self.owner) as conn:
            for n, org in enumerate(self.orgs):
                conn.execute(
                    "INSERT INTO organizations (id, name, slug) VALUES (%s, 'o', %s)",
                    (org, f"org-{n}-{org.hex[:8]}"),
                )
                conn.execute(
                    "INSERT INTO applications (id, org_id, name, api_key_hash) VALUES (%s, %s, 'a', %s)",
                    (self.apps[org], org, uuid.uuid4().hex * 2),
                )
            for moment in [LONG_AGO, *MONTHS]:
                for org in self.orgs:
                    for k in range(3):
                        at = moment + datetime.timedelta(minutes=17 * k)
                        conn.execute(
                            "INSERT INTO audit_logs (org_id, action, resource_type, request_id, created_at)"
                            " VALUES (%s, 'inference_requested', 'r', %s, %s)",
                            (org, f"a-{at.isoformat()}", at),
                        )
                        conn.execute(
                            "INSERT INTO inference_requests (org_id, app_id, request_id, provider, model,"
                            " status, prompt_tokens, completion_tokens, total_tokens, cost, latency_ms,"
                            " created_at, updated_at) VALUES (%s, %s, %s, 'p', 'm', 'completed', 3, 4, 7,"
                            " 0.25, %s, %s, %s)",
                            (org, self.apps[org], f"r-{at.isoformat()}", 10 * k, at, at),
                        )
            self.before = self.rows(conn)
        Migrator(self.owner).up()

    @staticmethod
    def rows(conn: Conn) -> dict[str, list[tuple[Any, ...]]]:
        return {
            "audit": conn.execute("SELECT * FROM audit_logs ORDER BY org_id, id").fetchall(),
            "requests": conn.execute(
                "SELECT * FROM inference_requests ORDER BY org_id, id"
            ).fetchall(),
            "rollup": conn.execute(_ROLLUP).fetchall(),
        }


@pytest.fixture
def filled(databases: TestDatabases, tmp_path: Path) -> Iterator[Filled]:
    made = Filled(databases, tmp_path)
    yield made
    databases.drop(made.name)


def _partition_names(conn: Conn, parent: str) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass ORDER BY 1",
            (parent,),
        )
    ]


def test_the_migration_keeps_every_row_key_and_rule(filled: Filled) -> None:
    with psycopg.connect(filled.owner) as conn:
        assert Filled.rows(conn) == filled.before  # no row lost, ids and keys intact
        assert conn.execute(_ROLLUP).fetchall() == conn.execute(_RECOMPUTED).fetchall()
        months = [m.strftime("_p%Y_%m") for m in MONTHS]
        ahead = [
            month_start(NOW + datetime.timedelta(days=31 * k)).strftime("_p%Y_%m")
            for k in (1, 2, 3)
        ]
        for parent in ("audit_logs", "inference_requests"):
            names = _partition_names(conn, parent)
            assert names == sorted([f"{parent}_history"] + [parent + m for m in months + ahead])
        history = conn.execute("SELECT count(*) FROM audit_logs_history").fetchone()
        assert history == (6,)  # the rows of 2019, more than 24 months back
        assert conn.execute("SELECT count(*) FROM inference_request_keys").fetchone() == (30,)
        # the audit trail's triggers still hold on the partitioned table, the owner included
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("UPDATE audit_logs SET resource_type = 'x'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("DELETE FROM audit_logs")
        partition = "audit_logs" + months[0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute(f"DELETE FROM {partition}")
        with pytest.raises(psycopg.errors.ForeignKeyViolation), conn.transaction():
            conn.execute(
                "INSERT INTO audit_logs (org_id, action, resource_type) VALUES (%s, 'user_created', 'u')",
                (uuid.uuid4(),),
            )
        # the rollup follows updates and deletes on any month
        conn.execute(
            "UPDATE inference_requests SET status = 'failed' WHERE created_at < %s", (MONTHS[1],)
        )
        conn.execute("DELETE FROM applications WHERE id = %s", (filled.apps[filled.orgs[1]],))
        assert conn.execute(_ROLLUP).fetchall() == conn.execute(_RECOMPUTED).fetchall()
        conn.commit()

    # row-level security and grants, as the service
    org = filled.orgs[0]
    with RepositoryFactory.connect(DatabaseConfig(url=filled.app)) as factory:
        repos = factory.repositories()
        listed = repos.audit_logs.get_by_org_id(org, limit=1000)
        assert len(listed) == 15 and {row.org_id for row in listed} == {org}
        oldest = min(listed, key=lambda row: row.created_at)
        assert repos.audit_logs.get_by_id(org, oldest.id) == oldest
        assert repos.audit_logs.get_by_id(filled.orgs[1], oldest.id) is None
        request = repos.inference_requests.get_by_request_id(org, f"r-{MONTHS[0].isoformat()}")
        assert request is not None and request.created_at == MONTHS[0]
        assert repos.inference_requests.get_by_id(org, request.id) == request
        # request_id stays unique per organization across months
        with pytest.raises(ConflictError) as caught:
            repos.inference_requests.create(
                NewInferenceRequest(
                    org_id=org, app_id=filled.apps[org], request_id=request.request_id,
                    provider="p", model="m",
                )
            )  # fmt: skip
        assert caught.value.constraint == "inference_requests_org_id_request_id_key"
        metrics = repos.inference_requests.get_metrics(
            org, LONG_AGO, NOW + datetime.timedelta(days=40)
        )
        assert (metrics.total_requests, metrics.total_tokens) == (15, 105)
    # partitions are reached through their table only
    with (
        psycopg.connect(filled.app) as app_conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        app_conn.execute(f"SELECT * FROM {partition}")


def test_create_is_idempotent_and_list_shows_every_month(fresh_owner_db: str) -> None:
    partitions = Partitions(fresh_owner_db)
    created = partitions.create(ahead=5)
    months = [
        month_start(NOW + datetime.timedelta(days=31 * k)).strftime("_p%Y_%m") for k in (4, 5)
    ]
    assert created == [p + m for p in ("audit_logs", "inference_requests") for m in months]
    assert partitions.create(ahead=5) == []
    listed = partitions.list()
    assert [p.name for p in listed if p.parent == "audit_logs"][-1] == "audit_logs" + months[-1]
    history = next(p for p in listed if p.name == "audit_logs_history")
    assert history.start is None and history.end == month_start(NOW)
    assert all(p.end - (p.start or p.end) <= datetime.timedelta(days=31) for p in listed)
    with pytest.raises(ValidationError):
        partitions.create(ahead=-1)


def test_drop_retires_old_months_and_keeps_the_rollup_exact(filled: Filled) -> None:
    partitions = Partitions(filled.owner)
    retired = partitions.drop(older_than=2)  # history and the month three months back
    assert [(r.name, r.rows) for r in retired] == [
        ("audit_logs_history", 6),
        ("audit_logs" + MONTHS[0].strftime("_p%Y_%m"), 6),
        ("inference_requests_history", 6),
        ("inference_requests" + MONTHS[0].strftime("_p%Y_%m"), 6),
    ]
    assert partitions.drop(older_than=2) == []
    with psycopg.connect(filled.owner) as conn:
        assert conn.execute(_ROLLUP).fetchall() == conn.execute(_RECOMPUTED).fetchall()
        assert conn.execute("SELECT min(created_at) FROM inference_requests").fetchone() == (
            MONTHS[1],
        )
        keys = conn.execute("SELECT count(*) FROM inference_request_keys").fetchone()
        assert keys == (18,)  # the keys of the dropped requests went with them
        # the audit trail says what went, per organization, as a purge does
        owner = conn.execute("SELECT session_user").fetchone()
        records = conn.execute(
            "SELECT org_id, details FROM audit_logs WHERE action = 'audit_logs_purged'"
            " ORDER BY details->>'oldest', org_id::text"
        ).fetchall()
    assert len(records) == 4 and {r[0] for r in records} == set(filled.orgs)
    for _, details in records:
        assert owner and details["purged"] == 3 and details["by"] == owner[0]
        assert details["reason"].startswith("retention: older than 2 months")
    assert {r[1]["before"][:10] for r in records} == {
        MONTHS[0].strftime("%Y-%m-01"),
        MONTHS[1].strftime("%Y-%m-01"),
    }


def test_drop_finishes_a_detach_that_was_interrupted(filled: Filled) -> None:
    """A DETACH ... CONCURRENTLY cancelled while it waits for an older snapshot leaves
    the partition 'detach pending'; and one detached without its drop is a plain table.
    The next ``drop`` finishes both."""
    old = "audit_logs" + MONTHS[0].strftime("_p%Y_%m")
    with psycopg.connect(filled.owner, autocommit=True) as conn:
        conn.execute("ALTER TABLE inference_requests DETACH PARTITION inference_requests_history")
        holder = psycopg.connect(filled.owner)
        holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM audit_logs")  # a snapshot the detach waits for
        detacher = psycopg.connect(filled.owner, autocommit=True)
        pid = detacher.info.backend_pid
        failed: list[BaseException] = []

        def detach() -> None:
            try:
                detacher.execute(f"ALTER TABLE audit_logs DETACH PARTITION {old} CONCURRENTLY")
            except psycopg.Error as exc:
                failed.append(exc)

        thread = threading.Thread(target=detach)
        thread.start()
        while not conn.execute(
            "SELECT wait_event_type IS NOT NULL FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()[0]:  # type: ignore[index]
            time.sleep(0.01)
        time.sleep(0.2)  # into the wait for the old snapshot
        conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
        thread.join()
        holder.close()
        detacher.close()
        assert failed and isinstance(failed[0], psycopg.errors.QueryCanceled)
        pending = conn.execute(
            "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = %s::regclass", (old,)
        ).fetchone()
        assert pending == (True,)
    listed = {p.name: p for p in Partitions(filled.owner).list()}
    assert listed[old].detach_pending
    retired = Partitions(filled.owner).drop(older_than=2)
    assert {r.name for r in retired} == {
        "inference_requests_history", old, "audit_logs_history",
        "inference_requests" + MONTHS[0].strftime("_p%Y_%m"),
    }  # fmt: skip
    with psycopg.connect(filled.owner) as conn:
        assert conn.execute(_ROLLUP).fetchall() == conn.execute(_RECOMPUTED).fetchall()
        assert conn.execute("SELECT to_regclass(%s)", (old,)).fetchone() == (None,)


def test_a_month_without_a_partition_is_a_typed_error(db_config: DatabaseConfig) -> None:
    far = datetime.datetime(2999, 1, 1, tzinfo=datetime.UTC)
    with RepositoryFactory.connect(db_config) as factory:
        repos = factory.repositories()
        org, app, _ = make_tenant(repos)
        for call in (
            lambda: repos.audit_logs.insert(NewAuditLog(
                org_id=org.id, action=AuditAction.USER_CREATED, resource_type="u", created_at=far)),
            lambda: repos.inference_requests.create(NewInferenceRequest(
                org_id=org.id, app_id=app.id, request_id="r", provider="p", model="m",
                created_at=far)),
        ):  # fmt: skip
            with pytest.raises(ValidationError) as caught:
                call()
            assert "without a partition" in str(caught.value)
            assert "llmcp db partitions create" in str(caught.value)


def test_the_command_creates_lists_and_drops(
    fresh_owner_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMCP_MIGRATION_URL", fresh_owner_db)
    assert main(["db", "partitions", "create", "--ahead", "4"]) == 0
    assert "partitions: 2 created" in capsys.readouterr().out
    assert main(["db", "partitions", "list"]) == 0
    out = capsys.readouterr().out
    assert "audit_logs_history" in out and "inference_requests_p" in out
    assert main(["db", "partitions", "drop", "--older-than", "1"]) == 0
    assert "partitions: 0 dropped" in capsys.readouterr().out


def test_the_service_role_cannot_maintain_partitions(db_config: DatabaseConfig) -> None:
    with pytest.raises(PermissionDeniedError):
        Partitions(db_config.url).create(ahead=1)


def test_the_writers_idempotent_insert_skips_exactly_the_rows_stored(fresh_owner_db: str) -> None:
    """The audit writer's retry after an unexplained lost acknowledgement (``MERGE``:
    INSERT ... ON CONFLICT DO NOTHING) stores each row once on the partitioned table:
    a row carries its created_at from the first attempt, so it conflicts with itself."""
    with psycopg.connect(fresh_owner_db) as conn:
        org = uuid.uuid4()
        conn.execute(
            "INSERT INTO organizations (id, name, slug) VALUES (%s, 'o', %s)", (org, org.hex)
        )
        rows = [
            audit_row(
                NewAuditLog(
                    org_id=org,
                    action=AuditAction.USER_CREATED,
                    resource_type="u",
                    created_at=moment,
                ),
                max_details_bytes=1 << 20,
                max_depth=64,
            )[1]
            for moment in (LONG_AGO, *MONTHS)
        ]
        first = conn.execute(MERGE, (rows_param(rows),)).rowcount
        again = conn.execute(MERGE, (rows_param(rows),)).rowcount
        assert (first, again) == (len(rows), 0)
        stored = conn.execute(
            "SELECT count(*) FROM audit_logs WHERE org_id = %s", (org,)
        ).fetchone()
        assert stored == (len(rows),)
        # a caller-supplied id taken in the same month is skipped too (the writer then
        # tells it apart as a conflict, row by row); in another month it is a new entry
        for taken, stored_anew in ((row_id(rows[-1]), 0), (row_id(rows[1]), 1)):
            new = NewAuditLog(
                org_id=org, action=AuditAction.USER_CREATED, resource_type="u", id=taken
            )
            _, row = audit_row(new, max_details_bytes=1 << 20, max_depth=64)
            assert conn.execute(MERGE, (rows_param([row]),)).rowcount == stored_anew
