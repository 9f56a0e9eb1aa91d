"""Ask PostgreSQL what each query takes and returns: prepare + describe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq

from llmcp.dev.codegen.loader import QuerySpec


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a table in the schema."""

    table: str
    name: str
    type_oid: int
    not_null: bool


@dataclass(frozen=True, slots=True)
class PgType:
    oid: int
    name: str
    kind: str  # pg_type.typtype: b base, e enum, d domain, c composite, ...
    element_oid: int  # for arrays, else 0
    base_oid: int  # for domains, else 0


@dataclass(frozen=True, slots=True)
class Field:
    """One result column as PostgreSQL describes it."""

    name: str
    type_oid: int
    table_oid: int  # 0 when not a plain table column
    column_number: int  # attnum, 0 when not a plain table column


@dataclass(frozen=True, slots=True)
class Description:
    param_oids: tuple[int, ...]
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """A validated, not deferrable foreign key to a table without row-level security:
    every child row sees its parent row."""

    child_table: str
    child_columns: tuple[str, ...]
    parent_table: str
    parent_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    """What codegen needs to know about the schema."""

    tables: dict[int, str]  # oid -> name
    columns: dict[tuple[str, str], Column]  # (table, column) -> column
    table_columns: dict[str, tuple[Column, ...]]  # table -> columns in attnum order
    attnums: dict[tuple[int, int], Column]  # (table oid, attnum) -> column
    types: dict[int, PgType]
    enums: dict[str, tuple[str, ...]]  # enum name -> labels in order
    foreign_keys: tuple[ForeignKey, ...] = ()


def describe(conn: psycopg.Connection[Any], spec: QuerySpec) -> Description:
    """Prepare and describe one statement; a PostgreSQL error becomes a CodegenError."""
    pgconn = conn.pgconn
    result = pgconn.prepare(b"", spec.positional_sql.encode())
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise spec.fail(_message(result))
    described = pgconn.describe_prepared(b"")
    if described.status != pq.ExecStatus.COMMAND_OK:
        raise spec.fail(_message(described))
    params = tuple(described.param_type(i) for i in range(described.nparams))
    fields = tuple(
        Field(
            name=(described.fname(i) or b"").decode(),
            type_oid=described.ftype(i),
            table_oid=described.ftable(i),
            column_number=described.ftablecol(i),
        )
        for i in range(described.nfields)
    )
    return Description(params, fields)


def _message(result: pq.abc.PGresult) -> str:
    primary = (result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode()
    sqlstate = (result.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
    position = (result.error_field(pq.DiagnosticField.STATEMENT_POSITION) or b"").decode()
    where = f" (at character {position})" if position else ""
    return f"PostgreSQL rejects it: {primary} [SQLSTATE {sqlstate}]{where}"


_COLUMNS = """
SELECT c.oid, c.relname, a.attnum, a.attname, a.atttypid, a.attnotnull
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS a ON a.attrelid = c.oid
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm')
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""

_TYPES = """
SELECT t.oid, t.typname, t.typtype, t.typelem, t.typbasetype
FROM pg_type AS t
WHERE t.oid = ANY(%s)
"""

_ENUMS = """
SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type AS t
JOIN pg_enum AS e ON e.enumtypid = t.oid
JOIN pg_namespace AS n ON n.oid = t.typnamespace
WHERE n.nspname = current_schema()
GROUP BY t.typname
ORDER BY t.typname
"""

_FOREIGN_KEYS = """
SELECT child.relname,
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k (attnum, n)
             JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
             ORDER BY k.n),
       parent.relname,
       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k (attnum, n)
             JOIN pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = k.attnum
             ORDER BY k.n)
FROM pg_constraint AS c
JOIN pg_class AS child ON child.oid = c.conrelid
JOIN pg_class AS parent ON parent.oid = c.confrelid
JOIN pg_namespace AS n ON n.oid = child.relnamespace
WHERE c.contype = 'f' AND c.convalidated AND NOT c.condeferrable
  AND NOT parent.relrowsecurity  -- a policy may hide the parent row
  AND n.nspname = current_schema() AND parent.relnamespace = child.relnamespace
ORDER BY c.conname
"""


def load_catalog(conn: psycopg.Connection[Any], type_oids: set[int]) -> Catalog:
    tables: dict[int, str] = {}
    columns: dict[tuple[str, str], Column] = {}
    by_table: dict[str, list[Column]] = {}
    attnums: dict[tuple[int, int], Column] = {}
    for oid, table, attnum, name, type_oid, not_null in conn.execute(_COLUMNS).fetchall():
        column = Column(table, name, type_oid, not_null)
        tables[oid] = table
        columns[(table, name)] = column
        by_table.setdefault(table, []).append(column)
        attnums[(oid, attnum)] = column
        type_oids.add(type_oid)
    types: dict[int, PgType] = {}
    pending = set(type_oids)
    while pending:  # follow array elements and domain bases
        rows = conn.execute(_TYPES, (sorted(pending),)).fetchall()
        pending = set()
        for oid, name, kind, elem, base in rows:
            types[oid] = PgType(oid, name, kind, elem, base)
            pending |= {o for o in (elem, base) if o and o not in types}
    enums = {name: tuple(labels) for name, labels in conn.execute(_ENUMS).fetchall()}
    foreign_keys = tuple(
        ForeignKey(child, tuple(child_columns), parent, tuple(parent_columns))
        for child, child_columns, parent, parent_columns in conn.execute(_FOREIGN_KEYS)
    )
    return Catalog(
        tables,
        columns,
        {t: tuple(c) for t, c in by_table.items()},
        attnums,
        types,
        enums,
        foreign_keys,
    )
