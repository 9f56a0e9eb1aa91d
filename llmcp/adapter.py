"""The project's aiosql adapters for psycopg 3: rows decode straight into structs.

aiosql stays the loader and the executor of ``sql/*.sql``; these adapters add
what the generated query objects need:

- each query name maps to a *row maker* (a generated msgspec Struct class, or a
  generated function for rows with typed jsonb columns); rows are fetched as
  tuples by psycopg's C code and built positionally with ``itertools.starmap``:
  no dict per row;
- each call is one exchange with the server (llmcp.pipelined): a scoped call's
  tenant setting (llmcp.tenancy) and the statement share one pipeline and one
  round trip; statements are prepared server-side once per connection, rows
  and parameters go through psycopg's Transformer (its loaders and dumpers)
  and errors are psycopg's. Calls inside ``conn.pipeline()``, on a connection
  out of autocommit outside a transaction, and ``executemany`` take psycopg's
  cursor path instead (there the setting goes first in ``conn.pipeline()``);
- on first use of a connection the database's enums are bound to the
  generated ``StrEnum`` classes (by value), jsonb is decoded with msgspec, and
  ``inet`` and ``cidr`` are read as PostgreSQL's text (``192.0.2.1``,
  ``2001:db8::1``) rather than :mod:`ipaddress` objects: neither JSON nor msgspec
  has an address type (msgspec cannot even describe ``IPv4Address |
  IPv6Address``), so a row holding one would not encode or decode without hooks
  every caller would carry. ``llmcp codegen`` types them ``str`` accordingly.

Registered with aiosql as ``llmcp_psycopg`` (sync) and ``llmcp_apsycopg`` (async).
"""

from __future__ import annotations

import enum
import re
import weakref
from collections.abc import Callable, Mapping
from importlib import resources
from itertools import starmap
from pathlib import Path
from typing import Any

import aiosql
import msgspec
import psycopg
from aiosql.queries import Queries
from aiosql.types import SQLOperationType
from aiosql.utils import VAR_REF
from psycopg.pq.abc import PGresult
from psycopg.rows import tuple_row
from psycopg.types.enum import EnumInfo, register_enum
from psycopg.types.json import set_json_loads
from psycopg.types.string import TextLoader

from llmcp import pipelined, pooled, tenancy, waiting
from llmcp.json_types import encode_hook

RowMaker = Callable[..., Any]
EnumMap = Mapping[str, type[enum.StrEnum]]
_Take = Callable[[pipelined.Plan, PGresult], Any]
NOT_RUN: Any = object()
"""What ``_run`` returns when the call must take psycopg's cursor path."""

SYNC_ADAPTER = "llmcp_psycopg"
ASYNC_ADAPTER = "llmcp_apsycopg"

_ENUM_QUERY = """
SELECT t.typname, t.oid, t.typarray, array_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type AS t
JOIN pg_enum AS e ON e.enumtypid = t.oid
WHERE t.typname = ANY(%s) AND pg_type_is_visible(t.oid)
GROUP BY t.typname, t.oid, t.typarray
"""


def encode_json(value: Any) -> bytes:
    """The JSON encoder for jsonb parameters (msgspec: Structs, UUIDs, datetimes, Decimals;
    ``llmcp.json_types.JSON_NULL`` is JSON ``null``)."""
    return msgspec.json.encode(value, enc_hook=encode_hook)


def _register(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], enums: EnumMap,
              rows: list[tuple[Any, ...]]) -> None:  # fmt: skip
    for name, oid, array_oid, labels in rows:
        enum_class = enums[name]
        info = EnumInfo(name, oid, array_oid, labels)
        register_enum(info, conn, enum_class, mapping={m: m.value for m in enum_class})
    _load_plainly(conn)


def _load_plainly(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """jsonb by msgspec; inet and cidr as their text (see the module's docstring)."""
    set_json_loads(msgspec.json.decode, conn)
    for name in ("inet", "cidr"):
        conn.adapters.register_loader(name, TextLoader)


def _to_pyformat(match: re.Match[str]) -> str:
    groups = match.groupdict()
    if groups["dquote"] is not None or groups["squote"] is not None:
        return match.group(0)
    return f"{groups['lead']}%({groups['var_name']})s"


class _Base:
    """Shared state: row makers per query name, connections already set up."""

    single_exchange = True
    """Run each call as one exchange (llmcp.pipelined); False: psycopg's cursor path
    (``conn.pipeline()`` for a scoped call), the fallback, kept for comparison."""

    def __init__(self, rows: Mapping[str, RowMaker] | None = None, enums: EnumMap | None = None):
        self._rows: Mapping[str, RowMaker] = rows or {}
        self._enums: EnumMap = enums or {}
        self._ready: weakref.WeakSet[Any] = weakref.WeakSet()

    def process_sql(self, query_name: str, op_type: SQLOperationType, sql: str) -> str:
        """``:name`` (aiosql) to ``%(name)s`` (psycopg), leaving quoted text alone; a
        literal ``%`` (``LIKE 'a%'``) is doubled, as psycopg reads ``%%`` as ``%``."""
        return VAR_REF.sub(_to_pyformat, sql.replace("%", "%%"))

    def _maker(self, query_name: str) -> RowMaker:
        return self._rows.get(query_name.rpartition(".")[2], tuple)


class PsycopgAdapter(_Base):
    """aiosql adapter for a sync ``psycopg.Connection``."""

    is_aio_driver = False

    def _setup(self, conn: psycopg.Connection[Any]) -> None:
        if conn not in self._ready:
            if self._enums:
                with conn.cursor(row_factory=tuple_row) as cur:
                    cur.execute(_ENUM_QUERY, (list(self._enums),))
                    _register(conn, self._enums, cur.fetchall())
            else:
                _load_plainly(conn)
            self._ready.add(conn)

    def _cursor(self, conn: psycopg.Connection[Any]) -> psycopg.Cursor[tuple[Any, ...]]:
        self._setup(conn)
        return conn.cursor(row_factory=tuple_row)

    def _run(self, conn: psycopg.Connection[Any], sql: str, parameters: Any, take: _Take) -> Any:
        """The call as one exchange (llmcp.pipelined), its result taken under the
        connection's lock; NOT_RUN: take psycopg's cursor path."""
        if not self.single_exchange:
            return NOT_RUN
        self._setup(conn)
        setting, commit = tenancy.current(), tenancy.commit_setting()
        with conn.lock:
            if not pipelined.usable(conn):
                return NOT_RUN
            for attempt in range(2):
                plan = pipelined.plan(conn, sql, parameters, setting, commit)
                try:
                    results = conn.wait(pipelined.exchange(plan))
                except BaseException:
                    pipelined.abandon_if_unfinished(conn)
                    raise
                try:
                    statements = pipelined.statements_of(conn)
                    result = pipelined.settle(plan, results, statements, may_retry=not attempt)
                except pipelined.Retry:
                    continue
                return take(plan, result)
        raise AssertionError("unreachable: the second attempt does not retry")

    @staticmethod
    def _execute(conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any], sql: str,
                 parameters: Any, *, many: bool = False) -> None:  # fmt: skip
        """psycopg's path: a scoped call's setting, a commit level (and, behind a
        transaction pooler, the connection's settings) go first, in the same pipeline."""
        settings = pipelined.call_settings(conn, tenancy.current(), tenancy.commit_setting())
        if settings:
            with conn.pipeline():
                conn.execute(pooled.set_config_query(len(settings) // 2), settings)
                PsycopgAdapter._execute_one(cur, sql, parameters, many=many)
        else:
            PsycopgAdapter._execute_one(cur, sql, parameters, many=many)

    @staticmethod
    def _execute_one(cur: psycopg.Cursor[Any], sql: str, parameters: Any, *, many: bool) -> None:
        if many:
            cur.executemany(sql, parameters)
        else:
            cur.execute(sql, parameters)

    def select(self, conn: Any, query_name: str, sql: str, parameters: Any,
               record_class: Any = None) -> list[Any]:  # fmt: skip
        if (rows := self._run(conn, sql, parameters, pipelined.rows)) is not NOT_RUN:
            return list(starmap(self._maker(query_name), rows))
        with self._cursor(conn) as cur:
            self._execute(conn, cur, sql, parameters)
            return list(starmap(self._maker(query_name), cur.fetchall()))

    def _fetchone(self, conn: Any, sql: str, parameters: Any) -> tuple[Any, ...] | None:
        if (row := self._run(conn, sql, parameters, pipelined.first_row)) is not NOT_RUN:
            return row  # type: ignore[no-any-return]
        with self._cursor(conn) as cur:
            self._execute(conn, cur, sql, parameters)
            return cur.fetchone()

    def select_one(self, conn: Any, query_name: str, sql: str, parameters: Any,
                   record_class: Any = None) -> Any:  # fmt: skip
        row = self._fetchone(conn, sql, parameters)
        return None if row is None else self._maker(query_name)(*row)

    def select_value(self, conn: Any, query_name: str, sql: str, parameters: Any) -> Any:
        row = self._fetchone(conn, sql, parameters)
        return None if row is None else row[0]

    def insert_returning(self, conn: Any, query_name: str, sql: str, parameters: Any) -> Any:
        row = self._fetchone(conn, sql, parameters)
        if row is None:
            raise psycopg.ProgrammingError(f"{query_name}: INSERT ... RETURNING returned no row")
        return self._maker(query_name)(*row)

    def insert_update_delete(self, conn: Any, query_name: str, sql: str, parameters: Any) -> int:
        if (count := self._run(conn, sql, parameters, pipelined.rowcount)) is not NOT_RUN:
            return count  # type: ignore[no-any-return]
        with self._cursor(conn) as cur:
            self._execute(conn, cur, sql, parameters)
            return cur.rowcount

    def insert_update_delete_many(
        self, conn: Any, query_name: str, sql: str, parameters: Any
    ) -> int:
        with self._cursor(conn) as cur:
            self._execute(conn, cur, sql, parameters, many=True)
            return cur.rowcount


class AsyncPsycopgAdapter(_Base):
    """aiosql adapter for a ``psycopg.AsyncConnection``."""

    is_aio_driver = True

    async def _setup(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if conn not in self._ready:
            if self._enums:
                async with conn.cursor(row_factory=tuple_row) as cur:
                    await cur.execute(_ENUM_QUERY, (list(self._enums),))
                    _register(conn, self._enums, await cur.fetchall())
            else:
                _load_plainly(conn)
            self._ready.add(conn)

    async def _cursor(
        self, conn: psycopg.AsyncConnection[Any]
    ) -> psycopg.AsyncCursor[tuple[Any, ...]]:
        await self._setup(conn)
        return conn.cursor(row_factory=tuple_row)

    async def _run(self, conn: psycopg.AsyncConnection[Any], sql: str, parameters: Any,
                   take: _Take) -> Any:  # fmt: skip
        """The call as one exchange (llmcp.pipelined), its result taken under the
        connection's lock; NOT_RUN: take psycopg's cursor path."""
        if not self.single_exchange:
            return NOT_RUN
        await self._setup(conn)
        setting, commit = tenancy.current(), tenancy.commit_setting()
        async with conn.lock:
            if not pipelined.usable(conn):
                return NOT_RUN
            for attempt in range(2):
                plan = pipelined.plan(conn, sql, parameters, setting, commit)
                try:
                    results = await waiting.wait(conn, pipelined.exchange(plan))
                except BaseException:
                    pipelined.abandon_if_unfinished(conn)
                    raise
                try:
                    statements = pipelined.statements_of(conn)
                    result = pipelined.settle(plan, results, statements, may_retry=not attempt)
                except pipelined.Retry:
                    continue
                return take(plan, result)
        raise AssertionError("unreachable: the second attempt does not retry")

    @staticmethod
    async def _execute(conn: psycopg.AsyncConnection[Any], cur: psycopg.AsyncCursor[Any],
                       sql: str, parameters: Any, *, many: bool = False) -> None:  # fmt: skip
        """psycopg's path: a scoped call's setting, a commit level (and, behind a
        transaction pooler, the connection's settings) go first, in the same pipeline."""
        settings = pipelined.call_settings(conn, tenancy.current(), tenancy.commit_setting())
        if settings:
            async with conn.pipeline():
                await conn.execute(pooled.set_config_query(len(settings) // 2), settings)
                await AsyncPsycopgAdapter._execute_one(cur, sql, parameters, many=many)
        else:
            await AsyncPsycopgAdapter._execute_one(cur, sql, parameters, many=many)

    @staticmethod
    async def _execute_one(cur: psycopg.AsyncCursor[Any], sql: str, parameters: Any, *,
                           many: bool) -> None:  # fmt: skip
        if many:
            await cur.executemany(sql, parameters)
        else:
            await cur.execute(sql, parameters)

    async def select(self, conn: Any, query_name: str, sql: str, parameters: Any,
                     record_class: Any = None) -> list[Any]:  # fmt: skip
        if (rows := await self._run(conn, sql, parameters, pipelined.rows)) is not NOT_RUN:
            return list(starmap(self._maker(query_name), rows))
        async with await self._cursor(conn) as cur:
            await self._execute(conn, cur, sql, parameters)
            return list(starmap(self._maker(query_name), await cur.fetchall()))

    async def _fetchone(self, conn: Any, sql: str, parameters: Any) -> tuple[Any, ...] | None:
        if (row := await self._run(conn, sql, parameters, pipelined.first_row)) is not NOT_RUN:
            return row  # type: ignore[no-any-return]
        async with await self._cursor(conn) as cur:
            await self._execute(conn, cur, sql, parameters)
            return await cur.fetchone()

    async def select_one(self, conn: Any, query_name: str, sql: str, parameters: Any,
                         record_class: Any = None) -> Any:  # fmt: skip
        row = await self._fetchone(conn, sql, parameters)
        return None if row is None else self._maker(query_name)(*row)

    async def select_value(self, conn: Any, query_name: str, sql: str, parameters: Any) -> Any:
        row = await self._fetchone(conn, sql, parameters)
        return None if row is None else row[0]

    async def insert_returning(self, conn: Any, query_name: str, sql: str, parameters: Any) -> Any:
        row = await self._fetchone(conn, sql, parameters)
        if row is None:
            raise psycopg.ProgrammingError(f"{query_name}: INSERT ... RETURNING returned no row")
        return self._maker(query_name)(*row)

    async def insert_update_delete(self, conn: Any, query_name: str, sql: str,
                                   parameters: Any) -> int:  # fmt: skip
        if (count := await self._run(conn, sql, parameters, pipelined.rowcount)) is not NOT_RUN:
            return count  # type: ignore[no-any-return]
        async with await self._cursor(conn) as cur:
            await self._execute(conn, cur, sql, parameters)
            return cur.rowcount

    async def insert_update_delete_many(self, conn: Any, query_name: str, sql: str,
                                        parameters: Any) -> int:  # fmt: skip
        async with await self._cursor(conn) as cur:
            await self._execute(conn, cur, sql, parameters, many=True)
            return cur.rowcount


class _ListQueries(Queries):
    """aiosql's Queries, except that an async plain SELECT returns a list.

    aiosql wraps an async SELECT in an async generator (one await per row);
    our adapter already holds the whole list, so hand it over in one await.
    """

    def _make_async_fn(self, query_datum: Any) -> Any:
        if query_datum.operation_type != SQLOperationType.SELECT:
            return super()._make_async_fn(query_datum)
        name, doc, operation, sql, record_class, signature, floc, attributes, params = query_datum

        async def afn(self: _ListQueries, conn: Any, *args: Any, **kwargs: Any) -> Any:
            parameters = self._params(attributes, params, list(args), kwargs)
            adapter: Any = self.driver_adapter
            return await adapter.select(conn, name, sql, parameters, record_class)

        return self._query_fn(afn, name, doc, sql, operation, signature, floc, attributes, params)


# aiosql's protocols type select() as a generator; ours return lists (see _ListQueries)
aiosql.register_adapter(SYNC_ADAPTER, PsycopgAdapter)  # type: ignore[arg-type]
aiosql.register_adapter(ASYNC_ADAPTER, AsyncPsycopgAdapter)  # type: ignore[arg-type]


def sql_file(package: str, name: str) -> Path:
    """A SQL file shipped in ``package`` (``llmcp.sql``), found through importlib.resources."""
    return Path(str(resources.files(package).joinpath(name)))


def load_queries(path: Path, *, rows: Mapping[str, RowMaker], enums: EnumMap,
                 is_async: bool) -> Any:  # fmt: skip
    """Load one SQL file with aiosql and the llmcp adapter; returns aiosql's Queries."""
    return aiosql.from_path(
        path,
        ASYNC_ADAPTER if is_async else SYNC_ADAPTER,
        kwargs={"rows": rows, "enums": enums},
        queries_cls=_ListQueries,
    )
