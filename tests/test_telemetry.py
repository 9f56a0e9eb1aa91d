"""OpenTelemetry (llmcp.telemetry): a client span per query, a span per audit batch, pool and
writer metrics, through the SDK's in-memory exporter and reader on a real database; and,
without opentelemetry importable, nothing at all."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from llmcp import telemetry
from llmcp.config import DatabaseConfig
from llmcp.errors import ConflictError
from llmcp.factory import RepositoryFactory
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import AuditAction
from llmcp.inputs import NewAuditLog, NewOrganization

SECRET = "sk-live-Sekret4711-do-not-trace"  # looks like what must never reach a span


class Recorded:
    """llmcp's spans and metrics, in memory."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans.get_finished_spans() if span.name == name]

    def metrics(self, pool: str) -> dict[str, int]:
        """Every llmcp metric's value for ``pool`` (its db.client.connection.pool.name)."""
        data = self.reader.get_metrics_data()
        found: dict[str, int] = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                if scope.scope.name != telemetry.SCOPE:
                    continue
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        if (point.attributes or {}).get(telemetry.POOL_NAME) == pool:
                            assert isinstance(point, NumberDataPoint)  # gauges and sums
                            found[metric.name] = int(point.value)
        return found


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    got = Recorded()
    telemetry.use_providers(got.tracer_provider, got.meter_provider)
    try:
        yield got
    finally:
        telemetry.use_providers()  # the global (no-op) providers again
        got.tracer_provider.shutdown()
        got.meter_provider.shutdown()


def _dbname(url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])


def _assert_no_values(spans: Sequence[ReadableSpan], *values: str) -> None:
    """No value given to a call appears in any attribute, event or status of ``spans``."""
    assert spans
    for span in spans:
        shown = [str(v) for v in (span.attributes or {}).values()]
        shown += [str(span.status.description), *(event.name for event in span.events)]
        shown += [str(v) for event in span.events for v in (event.attributes or {}).values()]
        for value in values:
            assert not any(value in text for text in shown), (span.name, value, shown)


def _int(span: ReadableSpan, key: str) -> int:
    value = (span.attributes or {})[key]
    assert isinstance(value, int), (key, value)
    return value


def _assert_query_span(span: ReadableSpan, operation: str, dbname: str) -> None:
    attributes = span.attributes or {}
    assert span.kind is SpanKind.CLIENT
    assert attributes["db.system.name"] == "postgresql"
    assert attributes["db.operation.name"] == attributes["db.query.summary"] == operation
    assert attributes["db.namespace"] == dbname
    assert isinstance(attributes["server.port"], int)
    assert attributes["server.address"]


def test_each_sync_query_is_a_client_span_without_values(
    db_config: DatabaseConfig, recorded: Recorded
) -> None:
    dbname = _dbname(db_config.url)
    with RepositoryFactory.connect(db_config) as factory:
        organizations = factory.repositories().organizations
        org = organizations.create(NewOrganization(name=SECRET, slug="sekret-4711"))
        assert organizations.get_by_id(org.id) == org
        assert organizations.get_by_slug("sekret-4711") == org
        with factory.transaction_manager().transaction():
            organizations.get_by_id(org.id)

    (create,) = recorded.named("organizations.create")
    _assert_query_span(create, "organizations.create", dbname)
    assert create.status.status_code is StatusCode.UNSET
    lookups = recorded.named("organizations.get_by_id")
    assert len(lookups) == 2
    for span in lookups:
        _assert_query_span(span, "organizations.get_by_id", dbname)
        # the statement as sql/organizations.sql writes it: a placeholder, not the id
        text = str((span.attributes or {})["db.query.text"])
        assert "FROM organizations" in text and "WHERE id = :id" in text, text
    (by_slug,) = recorded.named("organizations.get_by_slug")
    assert "slug = :slug" in str((by_slug.attributes or {})["db.query.text"])
    _assert_no_values(recorded.spans.get_finished_spans(), SECRET, "sekret-4711", str(org.id))


def test_a_failed_query_records_its_sqlstate_and_no_message(
    db_config: DatabaseConfig, recorded: Recorded
) -> None:
    with RepositoryFactory.connect(db_config) as factory:
        organizations = factory.repositories().organizations
        organizations.create(NewOrganization(name="First", slug=SECRET.lower()))
        with pytest.raises(ConflictError):  # the same slug: psycopg's DETAIL quotes it
            organizations.create(NewOrganization(name="Second", slug=SECRET.lower()))

    ok, failed = recorded.named("organizations.create")
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description is None
    attributes = failed.attributes or {}
    assert attributes["error.type"] == attributes["db.response.status_code"] == "23505"
    assert failed.events == ()  # no exception event: its message and traceback quote values
    _assert_no_values([ok, failed], SECRET.lower(), "Second")


async def test_each_async_query_is_a_child_of_the_callers_span(
    db_config: DatabaseConfig, recorded: Recorded
) -> None:
    dbname = _dbname(db_config.url)
    caller = recorded.tracer_provider.get_tracer("the-service")
    async with await AsyncRepositoryFactory.connect(db_config) as factory:
        organizations = factory.repositories().organizations
        with caller.start_as_current_span("GET /organizations/{id}") as request:
            org = await organizations.create(NewOrganization(name=SECRET, slug="async-4711"))
            async with factory.transaction_manager().transaction():
                assert await organizations.get_by_id(org.id) == org
            assert await organizations.list(limit=10) == [org]

    for operation in ("organizations.create", "organizations.get_by_id", "organizations.list"):
        (span,) = recorded.named(operation)
        _assert_query_span(span, operation, dbname)
        assert span.parent is not None
        assert span.parent.span_id == request.get_span_context().span_id
    (listed,) = recorded.named("organizations.list")
    text = str((listed.attributes or {})["db.query.text"])
    assert "LIMIT :limit" in text and "OFFSET :offset" in text, text
    _assert_no_values(recorded.named("organizations.create"), SECRET, "async-4711")
    assert trace.get_current_span() is trace.INVALID_SPAN  # every span was ended and left


def _logs(org: uuid.UUID, count: int, **extra: Any) -> list[NewAuditLog]:
    return [
        NewAuditLog(org_id=org, action=AuditAction.INFERENCE_COMPLETED, resource_type="request",
                    request_id=f"req-{n}", user_agent=SECRET, details={"key": SECRET}, **extra)
        for n in range(count)
    ]  # fmt: skip


async def test_writer_batches_are_root_spans_and_metrics_match_the_stats(
    db_config: DatabaseConfig, recorded: Recorded
) -> None:
    pool = telemetry.pool_name(db_config)
    caller = recorded.tracer_provider.get_tracer("the-service")
    async with await AsyncRepositoryFactory.connect(db_config) as factory:
        repos = factory.repositories()
        org = await repos.organizations.create(NewOrganization(name="Audited", slug="audited"))
        with caller.start_as_current_span("POST /inference"):  # the worker starts in here
            for new in _logs(org.id, 30):
                await repos.audit_logs.async_insert(new)
        await factory.audit_writer.flush()
        # a row naming an application that does not exist: refused for good, alone
        (bad,) = _logs(org.id, 1, app_id=uuid.uuid4())
        for new in [*_logs(org.id, 5), bad]:
            await repos.audit_logs.async_insert(new)
        await factory.audit_writer.flush()

        stats = factory.audit_writer.stats
        assert (stats.accepted, stats.written, stats.failed) == (36, 35, 1)
        pool_stats = factory.database.pool_stats()
        got = recorded.metrics(pool)
        assert got == {
            "llmcp.pool.size": pool_stats.size,
            "llmcp.pool.available": pool_stats.available,
            "llmcp.pool.waiting": pool_stats.waiting,
            "llmcp.audit_writer.queue_depth": 0,
            "llmcp.audit_writer.accepted": 36,
            "llmcp.audit_writer.written": 35,
            "llmcp.audit_writer.failed": 1,
            "llmcp.audit_writer.dropped": 0,
            "llmcp.audit_writer.retried": stats.retried,
        }, got
    assert recorded.metrics(pool) == {}  # a closed pool and its writer are no longer observed

    batches = recorded.named(telemetry.BATCH_SPAN)
    assert batches
    assert all(span.parent is None for span in batches)  # not the request that started it
    totals = [0, 0, 0]
    for span in batches:
        attributes = span.attributes or {}
        assert span.kind is SpanKind.CLIENT
        assert attributes["db.system.name"] == "postgresql"
        assert attributes["db.collection.name"] == "audit_logs"
        assert attributes["db.namespace"] == _dbname(db_config.url)
        rows = _int(span, "llmcp.audit.batch.rows")
        written = _int(span, "llmcp.audit.rows_written")
        failed = _int(span, "llmcp.audit.rows_failed")
        assert rows == written + failed
        if failed:
            assert span.status.status_code is StatusCode.ERROR
            assert attributes["error.type"] == "reference"
        totals = [totals[0] + rows, totals[1] + written, totals[2] + failed]
    assert totals == [36, 35, 1]
    _assert_no_values(batches, SECRET, str(org.id), str(bad.app_id))


def test_sync_writer_batches_are_spans(db_config: DatabaseConfig, recorded: Recorded) -> None:
    with RepositoryFactory.connect(db_config) as factory:
        repos = factory.repositories()
        org = repos.organizations.create(NewOrganization(name="Audited", slug="audited-sync"))
        for new in _logs(org.id, 12):
            repos.audit_logs.async_insert(new)
        factory.audit_writer.flush()
        assert recorded.metrics(telemetry.pool_name(db_config))["llmcp.audit_writer.written"] == 12
    batches = recorded.named(telemetry.BATCH_SPAN)
    assert sum(_int(span, "llmcp.audit.rows_written") for span in batches) == 12
    _assert_no_values(batches, SECRET)


# Without opentelemetry importable (None in sys.modules makes its import fail, as if it
# were not installed), or with OTEL_SDK_DISABLED=true: queries and the writer work, and
# nothing of telemetry is made (opentelemetry is not even imported).
_WITHOUT = """
import asyncio, sys
from dataclasses import fields
if sys.argv[2] == "blocked":
    sys.modules["opentelemetry"] = None
from llmcp import telemetry
from llmcp.config import DatabaseConfig
from llmcp.factory import RepositoryFactory
from llmcp.factory_async import AsyncRepositoryFactory
from llmcp.generated.models import AuditAction
from llmcp.inputs import NewAuditLog, NewOrganization

config = DatabaseConfig(url=sys.argv[1], min_size=1, max_size=2)
with RepositoryFactory.connect(config) as factory:
    repos = factory.repositories()
    org = repos.organizations.create(NewOrganization(name="Plain", slug="plain"))
    assert repos.organizations.get_by_id(org.id) == org
    repos.audit_logs.async_insert(NewAuditLog(org_id=org.id, action=AuditAction.INFERENCE_COMPLETED,
                                              resource_type="request", request_id="r"))
    factory.audit_writer.flush()
    assert factory.audit_writer.stats.written == 1
    instances = [*(getattr(repos, f.name) for f in fields(repos)), factory.audit_writer]

async def main() -> None:
    async with await AsyncRepositoryFactory.connect(config) as factory:
        repos = factory.repositories()
        assert await repos.organizations.get_by_id(org.id) == org
        instances.extend([*(getattr(repos, f.name) for f in fields(repos)), factory.audit_writer])

asyncio.run(main())
assert telemetry.ENABLED is False
# the class's own queries and _store, no instrumented copy on any instance
assert not any("_queries" in vars(i) or "_store" in vars(i) for i in instances)
assert len(telemetry._databases) == len(telemetry._writers) == len(telemetry._metered) == 0
assert telemetry._tracer is None and len(telemetry._by_connection) == 0
assert not [m for m, mod in sys.modules.items() if m.startswith("opentelemetry") and mod]
print("ok", len(instances))
"""


@pytest.mark.parametrize("how", ["blocked", "OTEL_SDK_DISABLED"])
def test_without_opentelemetry_llmcp_works_and_makes_no_telemetry(fresh_db: str, how: str) -> None:
    """Not importable, or switched off by OpenTelemetry's own variable (installed here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if how == "OTEL_SDK_DISABLED":
        env["OTEL_SDK_DISABLED"] = "True"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_WITHOUT), fresh_db, how],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "14"]


def test_with_opentelemetry_each_repository_has_its_traced_queries(
    db_config: DatabaseConfig, recorded: Recorded
) -> None:
    """The counterpart of the test above, so that it cannot pass for a wrong reason."""
    assert telemetry.ENABLED
    with RepositoryFactory.connect(db_config) as factory:
        repos = factory.repositories()
        assert "_queries" in vars(repos.organizations) and "_store" in vars(factory.audit_writer)
        assert repos.organizations._queries.get_by_id.__name__ == "get_by_id"  # routing reads it


def test_with_the_api_alone_no_call_pays_for_no_op_spans(db_config: DatabaseConfig) -> None:
    """Installed but no SDK (the global provider is the API's proxy): the repositories
    keep their plain queries and the writer its plain store; the pool is still watched."""
    assert telemetry.ENABLED
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    with RepositoryFactory.connect(db_config) as factory:
        repos = factory.repositories()
        assert "_queries" not in vars(repos.organizations)
        assert "_store" not in vars(factory.audit_writer)
        assert factory.audit_writer._database in telemetry._databases


def test_sql_text_undoes_the_adapters_placeholders() -> None:
    processed = "SELECT '100%%', x::text FROM t WHERE a = %(a)s AND b LIKE %(b)s || '%%'"
    assert (
        telemetry.sql_text(processed)
        == "SELECT '100%', x::text FROM t WHERE a = :a AND b LIKE :b || '%'"
    )
