"""One round trip per adapter call: the tenant setting and the statement in one libpq pipeline.

The adapter (llmcp.adapter) runs a call as one exchange on the connection's
libpq handle: ``set_config(name, value, true)`` when the call is scoped
(llmcp.tenancy), then the statement, then one Sync, read back in one go. Both
run in one implicit transaction (or in the explicit one the connection is in),
so the setting lasts exactly as long as the statement's transaction. Statements
are prepared on the server once per connection, under names of our own
(``_llmcp_N``, apart from psycopg's ``_pg3_N``), the Parse riding in the same
pipeline as the first execution; on a connection whose ``prepare_threshold``
is None (psycopg's switch for poolers without prepared statements) each call
parses the unnamed statement instead, in the same single round trip. Behind a
transaction pooler (llmcp.pooled) the connection's own settings ride in the
same ``set_config`` statement as the tenant's, in every call.

This module holds what the sync and async adapters share and does no I/O
itself: :func:`plan` (parameters dumped, statements to prepare), :func:`exchange`
(the generator that the sync connection's ``wait()`` and, for async ones,
:func:`llmcp.waiting.wait` drive, as psycopg drives its
own), :func:`settle` (results checked, the statement cache updated, errors
raised) and :func:`rows`.

Errors are psycopg's: a failed statement raises what ``cursor.execute()``
would (``psycopg.errors.error_from_result``: the same class, sqlstate, diag).
A statement the server no longer knows (``DISCARD ALL``, ``DEALLOCATE``:
26000) and a plan invalidated by a changed result type (0A000 ``cached plan
must not change result type``) are prepared again and the call retried once,
when the call ran in its own implicit transaction (nothing of it happened); in
an explicit transaction the error is raised, as psycopg raises it, and the next
call prepares afresh. An exchange that did not end (interrupted, the server
lost) leaves the connection closed, so the pool discards it: see
:func:`abandon_if_unfinished`.

psycopg internals used (psycopg is pinned in requirements/lock.txt; check these
on an upgrade): ``Connection.pgconn`` (``enter_pipeline_mode``,
``exit_pipeline_mode``, ``pipeline_status``, ``pipeline_sync``,
``send_prepare``, ``send_query_prepared``, ``send_close_prepared``,
``transaction_status``, ``status``, ``finish``, ``_encoding``),
``Connection._pipeline`` (set inside ``conn.pipeline()``), ``Connection.prepare_threshold``, ``Connection.lock``
and ``Connection.wait()``, ``psycopg.generators.send`` / ``fetch_many`` (the
C generators psycopg itself uses), ``psycopg._queries._query2pg_nocache`` and
``PostgresQuery`` (the cursor's ``%(name)s`` to ``$n`` conversion, done once per
query text here), ``psycopg.adapt.Transformer`` (the connection's dumpers and
loaders, one Transformer per connection: the enum and jsonb loaders registered
on it apply) and ``psycopg.errors.error_from_result``.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections import OrderedDict
from typing import Any

import psycopg
from psycopg import errors, pq
from psycopg._queries import PostgresQuery, _query2pg_nocache
from psycopg.abc import PQGen
from psycopg.abc import Transformer as TransformerType
from psycopg.adapt import PyFormat, Transformer
from psycopg.generators import fetch_many, send
from psycopg.pq.abc import PGconn, PGresult

from llmcp import pooled
from llmcp.tenancy import Setting

Key = tuple[bytes, tuple[int, ...]]
AnyConnection = psycopg.Connection[Any] | psycopg.AsyncConnection[Any]

MAX_STATEMENTS = 200
"""Prepared statements kept per connection; the least recently used is closed beyond."""

_TEXT_OID = 25

_OK = pq.ConnStatus.OK
_IDLE = pq.TransactionStatus.IDLE
_INTRANS = pq.TransactionStatus.INTRANS
_PIPELINE_OFF = pq.PipelineStatus.OFF
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC
_TEXT = pq.Format.TEXT

# the errors after which a statement is prepared again and the call retried once
# invalid_sql_statement_name: "prepared statement ... does not exist"
_UNDEFINED_STATEMENT = "26000"
_FEATURE_NOT_SUPPORTED = "0A000"
_CHANGED_RESULT = "cached plan must not change result type"

# commands of an exchange: (kind, name, query or params, types or formats)
_CLOSE, _PREPARE, _EXECUTE = 0, 1, 2


class Statements:
    """The statements prepared on one connection by this module, by (query, parameter types)."""

    __slots__ = ("__weakref__", "names", "next_id", "to_close")

    def __init__(self) -> None:
        self.names: OrderedDict[Key, bytes] = OrderedDict()
        self.next_id = 0
        self.to_close: list[bytes] = []

    def new_name(self) -> bytes:
        self.next_id += 1
        return b"_llmcp_%d" % self.next_id

    def add(self, key: Key, name: bytes) -> None:
        self.names[key] = name
        if len(self.names) > MAX_STATEMENTS:
            self.to_close.append(self.names.popitem(last=False)[1])

    def forget(self, name: bytes | None) -> None:
        """Forget ``name`` (None: all of them); each is closed in the next exchange."""
        for key, known in list(self.names.items()):
            if name is None or known == name:
                del self.names[key]
                self.to_close.append(known)


_statements: weakref.WeakKeyDictionary[Any, Statements] = weakref.WeakKeyDictionary()
_owned: weakref.WeakSet[Any] = weakref.WeakSet()
_TRANSFORMER = "_llmcp_transformer"
# behind a transaction pooler: the settings each call carries, per connection (as text)
_every_call: weakref.WeakKeyDictionary[Any, tuple[str, ...]] = weakref.WeakKeyDictionary()


def settings_in_every_call(conn: AnyConnection, settings: tuple[tuple[str, str], ...]) -> None:
    """Send ``settings`` (name, value) with every call on ``conn``, transaction-local
    (``set_config(..., true)``), beside the tenant setting: behind a transaction
    pooler a session ``SET`` would stay on whichever server connection ran it."""
    _every_call[conn] = pooled.flat(settings)


def call_settings(conn: AnyConnection, *settings: Setting | None) -> tuple[str, ...]:
    """The ``set_config`` parameters of a call on ``conn``: its connection's settings
    when it is behind a transaction pooler, then each given one (the tenant, a commit
    level: llmcp.tenancy) that is not None; () when none."""
    values = _every_call.get(conn, ())
    for setting in settings:
        if setting is not None:
            values += setting
    return values


@functools.cache
def _settings_key(pairs: int) -> Key:
    return (pooled.set_config_statement(pairs), (_TEXT_OID,) * (2 * pairs))


@functools.cache
def _text_formats(count: int) -> tuple[pq.Format, ...]:
    return (pq.Format.TEXT,) * count


def own_statements(conn: AnyConnection) -> None:
    """Prepare statements on ``conn`` although its ``prepare_threshold`` is None: llmcp's
    pooled connections turn psycopg's own cache off (after a ROLLBACK it sends
    DEALLOCATE ALL, which would drop this module's statements in the middle of a
    transaction) and leave preparing to this module."""
    _owned.add(conn)


def usable(conn: AnyConnection) -> bool:
    """Whether a call may run as one exchange now (the caller holds ``conn.lock``).

    Not inside ``conn.pipeline()``, not on a closed connection, and not where
    psycopg would first send BEGIN (a connection out of autocommit, idle):
    those calls take psycopg's own cursor path."""
    pgconn = conn.pgconn
    return (
        conn._pipeline is None
        and pgconn.status == _OK
        and pgconn.pipeline_status == _PIPELINE_OFF
        and (conn.autocommit or pgconn.transaction_status == _INTRANS)
    )


class Plan:
    """One exchange to send: the commands, and what to record once it is answered."""

    __slots__ = ("closing", "commands", "pgconn", "prepared", "retryable", "statement", "tx")

    def __init__(self, pgconn: PGconn, tx: TransformerType) -> None:
        self.pgconn = pgconn
        self.tx = tx
        self.commands: list[tuple[int, bytes, Any, Any]] = []
        self.statement = 0  # index in commands of the statement's execution
        self.prepared: dict[int, Key] = {}  # command index of a Parse -> its key
        self.closing: dict[int, bytes] = {}  # command index of a Close -> its name
        self.retryable = pgconn.transaction_status == _IDLE  # its own implicit transaction


@functools.lru_cache(maxsize=1024)
def _converted(sql: str, encoding: str) -> tuple[bytes, list[PyFormat], list[str] | None]:
    """A query's ``$n`` form, its parameters' formats and their order by name:
    psycopg's own conversion (``PostgresQuery``), done once per query text."""
    query, formats, order, _parts = _query2pg_nocache(sql.encode(encoding), encoding)
    return query, formats, order


def _transformer(conn: AnyConnection) -> TransformerType:
    """The connection's Transformer, reused by every call on it (its dumpers and
    loaders are looked up once per type, not once per call). Calls on a connection
    are serialized by its lock, and each one dumps and loads under it.

    Kept on the connection itself: a Transformer refers to its connection, so as
    the value of a weak-keyed dict it would keep its key alive; as an attribute
    it is a cycle the garbage collector frees with the connection."""
    tx: TransformerType | None = getattr(conn, _TRANSFORMER, None)
    if tx is None:
        tx = Transformer(conn)
        with contextlib.suppress(AttributeError):  # a connection class with __slots__
            setattr(conn, _TRANSFORMER, tx)
    return tx


def plan(conn: AnyConnection, sql: str, parameters: Any, setting: Setting | None,
         also: Setting | None = None) -> Plan:  # fmt: skip
    """Dump the parameters (raising psycopg's errors for bad ones before anything
    is sent) and list the commands: closes due, Parse where needed, executions."""
    pgconn = conn.pgconn
    tx = _transformer(conn)
    if type(parameters) is dict:  # aiosql's, for a call with named parameters
        query, formats, order = _converted(sql, tx.encoding)
        try:
            values = [parameters[name] for name in order] if order else []
        except KeyError:
            missing = ", ".join(sorted(n for n in order or () if n not in parameters))
            raise errors.ProgrammingError(f"query parameter missing: {missing}") from None
        params = tx.dump_sequence(values, formats)
    else:
        converted = PostgresQuery(tx)
        converted.convert(sql, parameters)
        query, params = converted.query, converted.params or ()
    result = Plan(pgconn, tx)
    commands = result.commands
    statements = _statements.get(conn)
    if conn.prepare_threshold is None and conn not in _owned:
        statements = None  # psycopg's switch for servers or poolers without them
    elif statements is None:
        statements = _statements[conn] = Statements()
    else:
        for name in statements.to_close:
            result.closing[len(commands)] = name
            commands.append((_CLOSE, name, None, None))
        statements.to_close = []
    texts = call_settings(conn, setting, also)  # pooled connection's, tenant's, commit level
    if texts:
        encoding = pgconn._encoding
        settings = tuple(text.encode(encoding) for text in texts)
        _add(
            result, statements, _settings_key(len(texts) // 2), settings, _text_formats(len(texts))
        )
    result.statement = _add(result, statements, (query, tx.types or ()), params, tx.formats)
    return result


def _add(plan: Plan, statements: Statements | None, key: Key, params: Any, formats: Any) -> int:
    commands = plan.commands
    if statements is None:  # prepared statements are off: the unnamed statement, each time
        commands.append((_PREPARE, b"", key[0], key[1]))
        commands.append((_EXECUTE, b"", params, formats))
        return len(commands) - 1
    name = statements.names.get(key)
    if name is None:
        name = statements.new_name()
        plan.prepared[len(commands)] = key
        commands.append((_PREPARE, name, key[0], key[1]))
    else:
        statements.names.move_to_end(key)
    commands.append((_EXECUTE, name, params, formats))
    return len(commands) - 1


def exchange(plan: Plan) -> PQGen[list[list[PGresult]]]:
    """Send the plan's commands and one Sync in pipeline mode; return each command's results.

    Driven by ``conn.wait()`` (sync) or :func:`llmcp.waiting.wait`, under ``conn.lock``. It returns only once the Sync
    is answered and pipeline mode is left: the connection is then idle (or in its
    explicit transaction), whatever the results say."""
    pgconn = plan.pgconn
    pgconn.enter_pipeline_mode()
    for kind, name, arg1, arg2 in plan.commands:
        if kind == _EXECUTE:
            pgconn.send_query_prepared(name, arg1, param_formats=arg2, result_format=_TEXT)
        elif kind == _PREPARE:
            pgconn.send_prepare(name, arg1, param_types=arg2)
        else:
            pgconn.send_close_prepared(name)
    pgconn.pipeline_sync()
    yield from send(pgconn)
    results: list[list[PGresult]] = []
    expected = len(plan.commands)
    while True:
        got = yield from fetch_many(pgconn)
        if got and got[0].status == _PIPELINE_SYNC:
            break
        if len(results) == expected:
            # more results than commands: behind PgBouncer, a server connection lost in
            # the call arrives as the server's FATAL error and then PgBouncer's own
            # (the client connection then closes): raise the error as the server sent it
            for extra in got:
                if extra.status == _FATAL_ERROR:
                    raise errors.error_from_result(extra, encoding=pgconn._encoding)
            raise errors.InternalError(f"unexpected results in a pipeline: {got}")
        results.append(got)
    pgconn.exit_pipeline_mode()
    return results


class Retry(Exception):
    """The statement must be prepared again: run the call once more."""


def settle(plan: Plan, results: list[list[PGresult]], statements: Statements | None,
           *, may_retry: bool) -> PGresult:  # fmt: skip
    """Record what got prepared or closed; return the statement's result, or raise
    the first error as psycopg would (or :class:`Retry`)."""
    if statements is None:
        statements = Statements()  # the connection is gone: nothing to record
    failed: PGresult | None = None
    failed_name = b""
    for index, got in enumerate(results):
        status = got[-1].status if got else _FATAL_ERROR
        if index in plan.closing:
            if status != _COMMAND_OK:
                statements.to_close.append(plan.closing[index])
        elif index in plan.prepared and status == _COMMAND_OK:
            statements.add(plan.prepared[index], plan.commands[index][1])
        if status == _FATAL_ERROR and failed is None and got:
            failed, failed_name = got[-1], plan.commands[index][1]
    if len(results) != len(plan.commands):
        raise errors.InternalError("a pipeline ended without all its results")
    if failed is None:
        (result,) = results[plan.statement]
        if result.status != _TUPLES_OK and result.status != _COMMAND_OK:
            raise errors.InternalError(
                f"unexpected result status: {pq.ExecStatus(result.status).name}"
            )
        return result
    error = errors.error_from_result(failed, encoding=plan.pgconn._encoding)
    if error.sqlstate == _UNDEFINED_STATEMENT:
        statements.forget(None)  # DISCARD ALL or DEALLOCATE ALL: none of ours is left
    elif error.sqlstate == _FEATURE_NOT_SUPPORTED and _CHANGED_RESULT in str(error):
        statements.forget(failed_name)
    else:
        raise error
    if may_retry and plan.retryable:
        raise Retry
    raise error


def statements_of(conn: AnyConnection) -> Statements | None:
    return _statements.get(conn)


def abandon_if_unfinished(conn: AnyConnection) -> None:
    """After an exchange that raised: if it did not get to its end (pipeline mode
    still on: interrupted, or the server lost), the connection's state is unknown;
    close it, so that the pool discards it. psycopg's ``wait()`` (and
    :func:`llmcp.waiting.wait`) cancels the
    statement on the server first when it is interrupted while one runs, and
    drains the exchange to its end if it can: such a connection stays open."""
    pgconn = conn.pgconn
    if pgconn.status == _OK and pgconn.pipeline_status == _PIPELINE_OFF:
        return
    _statements.pop(conn, None)
    pgconn.finish()


def _tuples(result: PGresult) -> None:
    if result.status != _TUPLES_OK:  # as psycopg's fetch*() on a result without rows
        status = (result.command_status or b"").decode()
        raise errors.ProgrammingError(
            f"the last operation didn't produce records (command status: {status})"
        )


def rows(plan: Plan, result: PGresult) -> list[tuple[Any, ...]]:
    """The result's rows as tuples, loaded by the connection's loaders."""
    _tuples(result)
    if not (ntuples := result.ntuples):
        return []
    plan.tx.set_pgresult(result)
    return plan.tx.load_rows(0, ntuples, tuple)


def first_row(plan: Plan, result: PGresult) -> tuple[Any, ...] | None:
    """The result's first row, as ``cursor.fetchone()`` gives it."""
    _tuples(result)
    if not result.ntuples:
        return None
    plan.tx.set_pgresult(result)
    return plan.tx.load_row(0, tuple)


def rowcount(plan: Plan, result: PGresult) -> int:
    """As ``cursor.rowcount``: rows returned, or rows the command affected."""
    if result.status == _TUPLES_OK:
        return result.ntuples
    count = result.command_tuples
    return count if count is not None else -1
