"""OpenTelemetry, where ``opentelemetry-api`` is installed (``llmcp[otel]``); nothing otherwise.

Whether it is installed is decided once, at import (and OpenTelemetry's own
``OTEL_SDK_DISABLED=true`` counts as not installed). Without it the two hooks
below (:func:`instrument_repository`, called as a repository is built, and
:func:`instrument_writer`, as an audit writer is) return at once, and the
call path holds no telemetry code at all, not even a flag test. With it:

- each query is a client span (database semantic conventions): a repository
  gets, as an instance attribute shadowing its class's ``_queries``, a copy of
  its generated queries object whose methods open a span around the call on
  the connection (primary or replica). Span name, ``db.operation.name`` and
  ``db.query.summary`` are the named query (``organizations.get_by_id``, as in
  llmcp's logs), ``db.query.text`` the statement as its SQL file writes it
  (``:name`` placeholders: never a value), ``db.namespace``, ``server.address``
  and ``server.port`` what the connection says (read once per connection). An
  error sets the status to ERROR and ``error.type`` (the SQLSTATE, then also in
  ``db.response.status_code``, or the exception's class), never its message or
  an exception event: psycopg's messages may quote values;
- each batch of the audit writer is a span of its own (a root: batches mix the
  rows of many requests) with the rows it wrote, failed and the retries;
- the pool (``pool_stats()``) and the writers (``WriterStats``) are observed
  by callbacks when a metric reader collects: gauges ``llmcp.pool.size``,
  ``.available``, ``.waiting``, ``llmcp.audit_writer.queue_depth`` and counters
  ``llmcp.audit_writer.accepted``, ``.written``, ``.failed``, ``.dropped``,
  ``.retried``, per ``db.client.connection.pool.name``
  (``server.address:server.port/db.namespace``). Nothing is counted on the
  call path.

Spans and metrics go to the global providers (``opentelemetry.trace`` /
``metrics.set_*_provider``), or to those given to :func:`use_providers`. Query and
batch spans are made only where a provider records them: a repository or writer
built (at the factory's connect) before an SDK set the global tracer provider, or
with the API alone, makes none and pays nothing per call. This module does no I/O.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from llmcp import __version__
from llmcp.conninfo import parse

ENABLED = False
"""Whether llmcp makes telemetry: opentelemetry is importable and not switched off by
its own ``OTEL_SDK_DISABLED=true`` (then it is not even imported)."""
if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true":
    try:
        from opentelemetry import context as otel_context
        from opentelemetry import metrics, trace
    except ImportError:  # the runtime does not need it
        pass
    else:
        ENABLED = True

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

    Attributes = dict[str, AttributeValue]

SCOPE = "llmcp"
"""The instrumentation scope: the name of llmcp's tracer and meter."""

BATCH_SPAN = "audit_logs.write_batch"
POOL_NAME = "db.client.connection.pool.name"

_tracer: Tracer | None = None  # where spans go; set by use_providers() or on first use
_provider_given = False  # use_providers() was given a tracer provider
_meter_provider: Any = None  # use_providers()' meter provider; None: the global one
_lock = threading.Lock()  # guards the registries below (metric readers run in threads)
_databases: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # -> pool name
_writers: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # -> pool name
_metered: list[Any] = []  # the meter providers holding llmcp's instruments (None: the global)
# per connection, per operation: the span attributes (the connection's read once)
_by_connection: weakref.WeakKeyDictionary[Any, dict[str, Attributes]] = weakref.WeakKeyDictionary()


def use_providers(
    tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
) -> None:
    """Send llmcp's spans and metrics to these providers (None: the global ones again).

    For a service that keeps providers of its own, and for tests (the global
    providers can be set once per process only). Nothing where telemetry is off
    (``ENABLED``)."""
    global _tracer, _meter_provider, _provider_given
    if not ENABLED:
        return
    _provider_given = tracer_provider is not None
    if tracer_provider is None:
        _tracer = trace.get_tracer(SCOPE, __version__)
    else:
        _tracer = tracer_provider.get_tracer(SCOPE, __version__)
    with _lock:
        _meter_provider = meter_provider
        if _databases or _writers:
            _instruments()


def _spans_recorded() -> bool:
    """Whether a span would go anywhere: a provider given to :func:`use_providers`, or a
    global one that an SDK set. Until then the API hands out no-op spans, which would
    cost every call a few microseconds for nothing (FastAPI, for one, installs the API)."""
    if _provider_given:
        return True
    return not isinstance(trace.get_tracer_provider(),
                          trace.ProxyTracerProvider | trace.NoOpTracerProvider)  # fmt: skip


def _current_tracer() -> Tracer:
    global _tracer
    if _tracer is None:  # a proxy: it follows a global provider set later
        _tracer = trace.get_tracer(SCOPE, __version__)
    return _tracer


# -- the hooks -----------------------------------------------------------------------


def instrument_repository(repository: Any) -> None:
    """A span per query of ``repository`` (and its pool in the metrics); nothing
    without opentelemetry."""
    if not ENABLED:
        return
    queries = getattr(repository, "_queries", None)
    if queries is not None and _spans_recorded():
        repository._queries = _TracedQueries(queries, repository.entity)
    _watch(_databases, repository._database, repository._database)


def instrument_writer(writer: Any) -> None:
    """A span per batch of audit ``writer`` (and its counters and pool in the
    metrics); nothing without opentelemetry."""
    if not ENABLED:
        return
    _watch(_writers, writer, writer._database)
    _watch(_databases, writer._database, writer._database)
    if _spans_recorded():
        writer._store = _traced_store(writer)


def _watch(registry: weakref.WeakKeyDictionary[Any, str], key: Any, database: Any) -> None:
    with _lock:
        registry[key] = pool_name(database.config)
        _instruments()


# -- query spans ----------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")


def sql_text(processed: str) -> str:
    """A query as its SQL file writes it, from the text aiosql runs: the adapter
    (``llmcp.adapter``) turned each ``:name`` into ``%(name)s`` and doubled each
    literal ``%``; this undoes both, in one left-to-right pass."""
    return _PLACEHOLDER.sub(lambda m: "%" if m.group(1) is None else f":{m.group(1)}", processed)


class _TracedQueries:
    """A generated queries object whose query methods each open a client span;
    anything else is the object's own."""

    def __init__(self, queries: Any, entity: str) -> None:
        self._inner = queries
        loaded = getattr(queries, "_queries", None)  # aiosql's Queries: the statements
        for name in dir(type(queries)):
            method = None if name.startswith("_") else getattr(queries, name)
            if not callable(method):
                continue
            statement = getattr(getattr(loaded, name, None), "sql", None)
            text = sql_text(statement) if isinstance(statement, str) else None
            setattr(self, name, _traced_query(method, f"{entity}.{name}", text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _traced_query(method: Callable[..., Any], operation: str, text: str | None) -> Any:
    static: Attributes = {
        "db.system.name": "postgresql",
        "db.operation.name": operation,
        "db.query.summary": operation,  # the span's name, by the conventions
    }
    if text is not None:
        static["db.query.text"] = text
    client, invalid = trace.SpanKind.CLIENT, trace.INVALID_SPAN

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def traced_async(conn: Any, /, *args: Any, **kwargs: Any) -> Any:
            span = (_tracer or _current_tracer()).start_span(
                operation, kind=client, attributes=_attributes(conn, operation, static)
            )
            if span is invalid:  # the API's no-op (no SDK): nothing to record nor make current
                return await method(conn, *args, **kwargs)
            token = otel_context.attach(trace.set_span_in_context(span))
            try:
                return await method(conn, *args, **kwargs)
            except BaseException as exc:
                _failed(span, exc)
                raise
            finally:
                otel_context.detach(token)
                span.end()

        return traced_async

    @functools.wraps(method)
    def traced(conn: Any, /, *args: Any, **kwargs: Any) -> Any:
        span = (_tracer or _current_tracer()).start_span(
            operation, kind=client, attributes=_attributes(conn, operation, static)
        )
        if span is invalid:
            return method(conn, *args, **kwargs)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            return method(conn, *args, **kwargs)
        except BaseException as exc:
            _failed(span, exc)
            raise
        finally:
            otel_context.detach(token)
            span.end()

    return traced


def _attributes(conn: Any, operation: str, static: Attributes) -> Attributes:
    per_operation = _by_connection.get(conn)
    if per_operation is None:
        per_operation = _by_connection[conn] = {}
    found = per_operation.get(operation)
    if found is None:
        found = per_operation[operation] = {**static, **_connection_attributes(conn)}
    return found


def _connection_attributes(conn: Any) -> Attributes:
    """``db.namespace``, ``server.address`` (a host, an address, or a unix socket's
    folder) and ``server.port`` of ``conn``, from libpq (no round trip)."""
    try:
        info = conn.info
        found: Attributes = {"db.namespace": info.dbname, "server.port": info.port}
        if info.host:
            found["server.address"] = info.host
    except Exception:  # a closed connection: the call fails, not its span
        return {}
    return found


def _failed(span: Span, exc: BaseException) -> None:
    """The error's class on ``span``, never its message (psycopg's may quote values)."""
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state:
        span.set_attribute("db.response.status_code", state)
        span.set_attribute("error.type", state)
    else:
        span.set_attribute("error.type", f"{type(exc).__module__}.{type(exc).__qualname__}")
    span.set_status(trace.StatusCode.ERROR)


# -- audit writer batches -------------------------------------------------------------


def _traced_store(writer: Any) -> Callable[[list[Any]], Any]:
    """``writer._store`` with a span per batch. Holds the writer weakly (the writer
    holds this function: no cycle, so it is still freed when unreferenced)."""
    store = type(writer)._store
    ref = weakref.ref(writer)
    base: Attributes = {
        "db.system.name": "postgresql",
        "db.operation.name": BATCH_SPAN,
        "db.query.summary": BATCH_SPAN,
        "db.collection.name": "audit_logs",
        **config_attributes(writer._database.config),
    }
    client = trace.SpanKind.CLIENT

    def start(batch: list[Any]) -> tuple[Any, Span, Any]:
        alive = ref()
        assert alive is not None  # its worker is running: it is alive
        attributes = {**base, "llmcp.audit.batch.rows": len(batch)}
        # a root span: the worker's context is that of whoever started it
        span = (_tracer or _current_tracer()).start_span(
            BATCH_SPAN, context=otel_context.Context(), kind=client, attributes=attributes
        )
        return alive, span, otel_context.attach(trace.set_span_in_context(span))

    if inspect.iscoroutinefunction(store):

        async def traced_async(batch: list[Any]) -> None:
            alive, span, token = start(batch)
            before = alive.stats
            try:
                await store(alive, batch)
            except BaseException as exc:
                _failed(span, exc)
                raise
            else:
                _outcome(span, alive, before)
            finally:
                otel_context.detach(token)
                span.end()

        return traced_async

    def traced(batch: list[Any]) -> None:
        alive, span, token = start(batch)
        before = alive.stats
        try:
            store(alive, batch)
        except BaseException as exc:
            _failed(span, exc)
            raise
        else:
            _outcome(span, alive, before)
        finally:
            otel_context.detach(token)
            span.end()

    return traced


def _outcome(span: Span, writer: Any, before: Any) -> None:
    """What the batch did: the worker alone moves these counters, one batch at a time."""
    after = writer.stats
    failed = after.failed - before.failed
    span.set_attribute("llmcp.audit.rows_written", after.written - before.written)
    span.set_attribute("llmcp.audit.rows_failed", failed)
    span.set_attribute("llmcp.audit.retries", after.retried - before.retried)
    if failed:
        failures = writer.failures
        span.set_attribute("error.type", failures[-1].kind.value if failures else "failed")
        span.set_status(trace.StatusCode.ERROR)


# -- metrics --------------------------------------------------------------------------


def config_attributes(config: Any) -> Attributes:
    """``db.namespace``, ``server.address`` and ``server.port`` of a ``DatabaseConfig``'s
    URL (its first host), for spans that are not one connection's."""
    try:
        settings = parse(config.url)
    except Exception:
        return {}
    found: Attributes = {}
    if settings.get("dbname"):
        found["db.namespace"] = str(settings["dbname"])
    host = str(settings.get("host") or "").split(",")[0]
    if host:
        found["server.address"] = host
    port = str(settings.get("port") or "").split(",")[0]
    if port.isdigit():
        found["server.port"] = int(port)
    return found


def pool_name(config: Any) -> str:
    """``server.address:server.port/db.namespace`` of a ``DatabaseConfig`` (the
    conventions' pool name when the pool has none of its own; no port when the URL
    names none)."""
    found = config_attributes(config)
    port = found.get("server.port")
    where = f"{found.get('server.address', '')}{'' if port is None else f':{port}'}"
    return f"{where}/{found.get('db.namespace', '')}"


def _instruments() -> None:
    """llmcp's instruments on the current meter provider, once per provider (under _lock)."""
    provider = _meter_provider
    if any(made is provider for made in _metered):
        return
    _metered.append(provider)
    meter = (provider or metrics.get_meter_provider()).get_meter(SCOPE, __version__)
    _make_instruments(meter, provider)


def _make_instruments(meter: Meter, provider: Any) -> None:
    def observe(registry: weakref.WeakKeyDictionary[Any, str], read: Callable[[Any], int]
                ) -> Callable[[CallbackOptions], Iterable[Observation]]:  # fmt: skip
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            if provider is not _meter_provider:
                return []  # use_providers() moved llmcp's metrics to another provider
            with _lock:
                watched = list(registry.items())
            totals: dict[str, int] = {}
            for source, name in watched:
                database = getattr(source, "_database", source)
                if database.closed:
                    continue
                totals[name] = totals.get(name, 0) + read(source)
            return [metrics.Observation(value, {POOL_NAME: name}) for name, value in totals.items()]

        return callback

    pools, writers = _databases, _writers
    for field, unit, description in (
        ("size", "{connection}", "Connections the pool holds (busy or idle)"),
        ("available", "{connection}", "Idle connections in the pool"),
        ("waiting", "{request}", "Callers waiting for a connection"),
    ):
        meter.create_observable_gauge(f"llmcp.pool.{field}", [observe(pools, _of_pool(field))],
                                      unit=unit, description=description)  # fmt: skip
    meter.create_observable_gauge(
        "llmcp.audit_writer.queue_depth",
        [observe(writers, _of_writer("queue_depth"))],
        unit="{row}",
        description="Audit rows accepted and not yet stored (queued or being written)",
    )
    for field, unit, description in (
        ("accepted", "{row}", "Audit rows accepted by submit()"),
        ("written", "{row}", "Audit rows stored"),
        ("failed", "{row}", "Audit rows refused for good"),
        ("dropped", "{row}", "Audit rows dropped with the queue full (drop_when_full)"),
        ("retried", "{attempt}", "Audit batch attempts retried after a transient error"),
    ):
        meter.create_observable_counter(f"llmcp.audit_writer.{field}",
                                        [observe(writers, _of_writer(field))], unit=unit,
                                        description=description)  # fmt: skip


def _of_pool(field: str) -> Callable[[Any], int]:
    return lambda database: int(getattr(database.pool_stats(), field))


def _of_writer(field: str) -> Callable[[Any], int]:
    return lambda writer: int(getattr(writer.stats, field))
