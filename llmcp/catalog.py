"""``llmcp catalog``: the query catalog and the schema document, for DBAs.

Writes two Markdown files, generated (never edited by hand) and committed:

- ``docs/queries.md``: every named query of ``sql/*.sql`` with its SQL, doc
  line, parameters and result columns (PostgreSQL types and nullability, as
  ``llmcp codegen`` infers them), the repository methods that run it, and its
  plan on a seeded database of realistic size, with the indexes it uses;
- ``docs/schema.md``: the schema read back from the migrated database: a
  Mermaid ER diagram, then per table its columns, indexes, constraints and
  triggers, then the enum types.

Plans are generic plans (``PREPARE`` + ``plan_cache_mode = force_generic_plan``,
what a server-side prepared statement settles on), printed by
``EXPLAIN (COSTS OFF)``: node types, index names and conditions, no costs, row
counts or timings, so that they stay the same from run to run. The data comes
from :func:`llmcp.seed.seed` with a fixed seed, then ``VACUUM (ANALYZE)``.

``llmcp catalog --check`` regenerates both in memory and fails with a diff
when the committed files differ. The same plan helpers back the plan
regression tests (``tests/test_plans.py``).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from aiosql.types import SQLOperationType as Op
from psycopg import sql

import llmcp.repositories
from llmcp.codegen.config import CodegenConfig
from llmcp.codegen.describe import Catalog, Description, describe, load_catalog
from llmcp.codegen.infer import analyze
from llmcp.codegen.loader import QuerySpec, load_file
from llmcp.codegen.output import diff
from llmcp.codegen.render import Renderer
from llmcp.scratch import ScratchDatabases
from llmcp.seed import seed

__all__ = [
    "LARGE_TABLES",
    "SEED",
    "Plan",
    "QueryEntry",
    "Scale",
    "explain",
    "load_queries",
    "repository_callers",
    "run",
]


@dataclass(frozen=True, slots=True)
class Scale:
    """Arguments of :func:`llmcp.seed.seed`."""

    organizations: int
    requests: int
    audit_logs: int
    seed: int

    def load(self, url: str) -> None:
        seed(
            url,
            organizations=self.organizations,
            requests=self.requests,
            audit_logs=self.audit_logs,
            seed=self.seed,
        )


SEED = Scale(organizations=200, requests=100_000, audit_logs=100_000, seed=1)
"""The seeded database the plans are taken on (also used by the plan tests)."""

LARGE_TABLES = frozenset({"audit_logs", "inference_requests"})
"""Tables that grow without bound: a sequential scan of them is a regression."""

_PLAN_STATEMENT = "llmcp_catalog_plan"
_OPERATIONS = {
    Op.SELECT: "rows (every row the query finds)",
    Op.SELECT_ONE: "at most one row",
    Op.SELECT_VALUE: "one value, or none when no row is found",
    Op.INSERT_RETURNING: "the row written (RETURNING)",
    Op.INSERT_UPDATE_DELETE: "the number of rows affected",
}


# -- plans ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """A generic plan: EXPLAIN's text (no costs) and its JSON tree."""

    text: str
    tree: dict[str, Any]

    def nodes(self) -> Iterator[dict[str, Any]]:
        stack = [self.tree]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.get("Plans", [])))

    def indexes(self) -> list[str]:
        """Every index the plan reads, sorted."""
        return sorted({n["Index Name"] for n in self.nodes() if "Index Name" in n})

    def seq_scans(self) -> list[str]:
        """Every table the plan reads with a (possibly parallel) sequential scan, sorted."""
        return sorted(
            {n["Relation Name"] for n in self.nodes() if n["Node Type"].endswith("Seq Scan")}
        )


def explain(conn: psycopg.Connection[Any], statement: str, params: int) -> Plan:
    """The generic plan of ``statement`` (``$n`` parameters), without running it.

    Works inside a transaction (the plan tests drop an index in one) and on
    PostgreSQL 15 (no ``EXPLAIN (GENERIC_PLAN)``): the statement is prepared,
    ``plan_cache_mode`` forces the generic plan, and ``EXPLAIN EXECUTE`` binds
    NULLs, which a generic plan does not look at.
    """
    conn.execute("SET plan_cache_mode = force_generic_plan")
    conn.execute("SET jit = off")  # no JIT section in the output; it never changes a plan
    name = sql.Identifier(_PLAN_STATEMENT)
    conn.execute(sql.SQL("PREPARE {} AS {}").format(name, sql.SQL(statement)))
    try:
        nulls = (
            sql.SQL("({})").format(sql.SQL(", ").join([sql.NULL] * params))
            if params
            else sql.SQL("")
        )
        text = conn.execute(
            sql.SQL("EXPLAIN (COSTS OFF) EXECUTE {}{}").format(name, nulls)
        ).fetchall()
        tree = conn.execute(
            sql.SQL("EXPLAIN (COSTS OFF, FORMAT JSON) EXECUTE {}{}").format(name, nulls)
        ).fetchone()
    finally:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
            conn.execute(sql.SQL("DEALLOCATE {}").format(name))
            conn.execute("RESET plan_cache_mode")
            conn.execute("RESET jit")
    assert tree is not None
    document = tree[0] if not isinstance(tree[0], str) else json.loads(tree[0])
    return Plan("\n".join(line for (line,) in text), document[0]["Plan"])


# -- queries ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    nullable: bool
    source: str | None = None  # table.column when it comes straight from one


@dataclass(frozen=True, slots=True)
class QueryEntry:
    """One named query with everything the catalog says about it."""

    spec: QuerySpec
    doc: str  # the comment lines right after the name line
    source: str  # the statement as written in the file
    params: tuple[tuple[int, Column], ...]  # ($n, parameter) in declared order
    columns: tuple[Column, ...]
    callers: tuple[str, ...] = field(default=())

    @property
    def table(self) -> str:
        return self.spec.file.stem

    @property
    def anchor(self) -> str:
        return f"{self.table}-{self.spec.name}".replace("_", "-")


def load_queries(
    conn: psycopg.Connection[Any], config: CodegenConfig
) -> dict[Path, list[QueryEntry]]:
    """Every named query, described on ``conn`` the way ``llmcp codegen`` does it."""
    specs = {path: load_file(path) for path in sorted(config.sql_dir.glob("*.sql"))}
    described = {path: [(s, describe(conn, s)) for s in items] for path, items in specs.items()}
    oids = {
        o
        for items in described.values()
        for _, d in items
        for o in (*d.param_oids, *(f.type_oid for f in d.fields))
    }
    catalog = load_catalog(conn, oids)
    renderer = Renderer(config, catalog)
    names = _type_names(conn, catalog)
    callers = repository_callers()
    result: dict[Path, list[QueryEntry]] = {}
    for path, items in described.items():
        lines = path.read_text().splitlines()
        entries = []
        for spec, desc in items:
            inference = analyze(spec.positional_sql, catalog)
            method = renderer.method(spec, desc, inference)  # fails as codegen would
            nullable = {p.name: p.annotation.endswith("| None") for p in method.params}
            params = tuple(
                (
                    spec.params.index(name) + 1,
                    Column(
                        name,
                        names[desc.param_oids[spec.params.index(name)]],
                        nullable[name],
                    ),
                )
                for name in spec.declared
            )
            entries.append(
                QueryEntry(
                    spec=spec,
                    doc=_statement_doc(lines, spec.line),
                    source=_statement_source(lines, spec.line),
                    params=params,
                    columns=_columns(conn, renderer, catalog, names, spec, desc, inference),
                    callers=tuple(callers.get((path.stem, spec.name), ())),
                )
            )
        result[path] = entries
    return result


def _columns(
    conn: psycopg.Connection[Any],
    renderer: Renderer,
    catalog: Catalog,
    names: dict[int, str],
    spec: QuerySpec,
    desc: Description,
    inference: Any,
) -> tuple[Column, ...]:
    if not desc.fields:
        return ()
    fields = renderer.result_fields(spec, desc, inference)
    columns = []
    for described, inferred in zip(desc.fields, fields, strict=True):
        origin = catalog.attnums.get((described.table_oid, described.column_number))
        type_name = names[described.type_oid]
        source = None
        if origin is not None:
            source = f"{origin.table}.{origin.name}"
            row = conn.execute(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                " WHERE attrelid = %s AND attnum = %s",
                (described.table_oid, described.column_number),
            ).fetchone()
            type_name = row[0] if row else type_name
        columns.append(
            Column(described.name, type_name, inferred.annotation.endswith("| None"), source)
        )
    return tuple(columns)


def _type_names(conn: psycopg.Connection[Any], catalog: Catalog) -> dict[int, str]:
    oids = sorted(catalog.types)
    rows = conn.execute(
        "SELECT t.oid, format_type(t.oid, NULL) FROM unnest(%s::oid[]) AS t (oid)", (oids,)
    ).fetchall()
    return {int(oid): str(name) for oid, name in rows}


def _statement_doc(lines: Sequence[str], name_line: int) -> str:
    """The doc comment: the ``--`` lines right after the name line, annotations aside."""
    doc = []
    for line in lines[name_line:]:
        if not line.startswith("--"):
            break
        text = line[2:].strip()
        if text and not text.startswith("@"):
            doc.append(text)
    return " ".join(doc)


def _statement_source(lines: Sequence[str], name_line: int) -> str:
    """The statement after the ``-- name:`` line and its doc comments, as written."""
    index = name_line  # the line after the name line (0-based)
    while index < len(lines) and lines[index].startswith("--"):
        index += 1
    body = []
    while index < len(lines) and not lines[index].startswith("-- name:"):
        body.append(lines[index])
        index += 1
    while body and not body[-1].strip():
        body.pop()
    return "\n".join(body)


def repository_callers(folder: Path | None = None) -> dict[tuple[str, str], list[str]]:
    """(SQL file stem, query name) -> ``entity.method()`` of the repositories that run it.

    Read from the source of ``llmcp/repositories/*_async.py`` (the sync twins
    have the same methods): every ``self._queries.<name>`` inside a method of
    a class whose ``_queries`` is a generated ``Async...Queries`` object.
    """
    folder = folder or Path(llmcp.repositories.__file__).parent
    found: dict[tuple[str, str], set[str]] = {}
    for path in sorted(folder.glob("*_async.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        modules = {
            alias.asname or alias.name: node.module.rpartition(".")[2]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names
        }
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            stem, entity = _class_queries(cls, modules)
            if stem is None:
                continue
            for method in cls.body:
                if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(method):
                    if (
                        isinstance(node, ast.Attribute)
                        and isinstance(node.value, ast.Attribute)
                        and node.value.attr == "_queries"
                        and isinstance(node.value.value, ast.Name)
                        and node.value.value.id == "self"
                    ):
                        found.setdefault((stem, node.attr), set()).add(
                            f"{entity or stem}.{method.name}()"
                        )
    return {key: sorted(value) for key, value in sorted(found.items())}


def _class_queries(cls: ast.ClassDef, modules: dict[str, str]) -> tuple[str | None, str | None]:
    stem = entity = None
    for statement in cls.body:
        if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
            continue
        target, value = statement.targets[0], statement.value
        if not isinstance(target, ast.Name):
            continue
        if (
            target.id == "_queries"
            and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
        ):
            stem = modules.get(value.func.id)
        if target.id == "entity" and isinstance(value, ast.Constant):
            entity = str(value.value)
    return stem, entity


# -- queries.md ---------------------------------------------------------------


def render_queries(conn: psycopg.Connection[Any], config: CodegenConfig) -> str:
    queries = load_queries(conn, config)
    version = _server_major(conn)
    sizes = _table_sizes(conn)
    out = [
        "<!-- Generated by `llmcp catalog` from sql/*.sql and a seeded database. DO NOT EDIT. -->",
        "",
        "# Query catalog",
        "",
        "Every named query of `sql/*.sql`, one section per query: what it does, its",
        "parameters and result columns (PostgreSQL types; *nullable* as the generated",
        "Python code types them), the repository methods that run it, and its plan.",
        "",
        "- Parameters are written `:name` in the SQL files; PostgreSQL sees them as",
        "  `$1`, `$2`, ... in order of first appearance (the `$n` column below).",
        "- *Called by* names the repository methods (`repos.<table>.<method>()`) that",
        "  run the query. Sync and async repositories have the same methods.",
        f"- Plans come from PostgreSQL {version} on a database filled by `llmcp seed`",
        f"  (seed {SEED.seed}; row counts below), vacuumed and analyzed. They are",
        "  *generic* plans, the ones a prepared statement settles on, independent of",
        "  parameter values: `PREPARE` with `plan_cache_mode = force_generic_plan`,",
        "  then `EXPLAIN (COSTS OFF) EXECUTE`. No costs, row estimates or timings, so",
        "  that the catalog changes only when a plan does.",
        "- `organizations` holds one row per tenant, 200 here: PostgreSQL reads such a",
        "  small table whole rather than through an index, so its lookups show a",
        "  sequential scan. `tests/test_plans.py` checks them on 20,000 organizations,",
        "  and checks every other query below for its index and no sequential scan.",
        "- A DELETE's plan does not show its foreign keys' ON DELETE actions (they run",
        "  as separate queries at the end of the statement); see [schema.md](schema.md).",
        "- Regenerate with `llmcp catalog`; `make test` runs `llmcp catalog --check`,",
        "  which fails when this file or [schema.md](schema.md) is stale.",
        "",
        "| table | rows |",
        "| --- | ---: |",
    ]
    out += [f"| `{table}` | {rows:,} |" for table, rows in sizes]
    out += ["", "## Contents", ""]
    for path, entries in queries.items():
        out.append(f"- `{_rel(path, config)}`: " + ", ".join(
            f"[`{e.spec.name}`](#{e.anchor})" for e in entries
        ))  # fmt: skip
    for path, entries in queries.items():
        out += ["", f"## `{_rel(path, config)}`"]
        for entry in entries:
            out += _render_entry(conn, entry, config)
    return "\n".join(out).rstrip() + "\n"


def _render_entry(
    conn: psycopg.Connection[Any], entry: QueryEntry, config: CodegenConfig
) -> list[str]:
    spec = entry.spec
    plan = explain(conn, spec.positional_sql, len(spec.params))
    callers = ", ".join(f"`{c}`" for c in entry.callers) or "none (no repository runs it)"
    indexes = ", ".join(f"`{i}`" for i in plan.indexes()) or "none"
    scans = ", ".join(f"`{t}`" for t in plan.seq_scans())
    out = [
        "",
        f'<a id="{entry.anchor}"></a>',
        "",
        f"### {entry.table}.{spec.name}",
        "",
        entry.doc or "(no doc comment)",
        "",
        f"- Source: `{_rel(spec.file, config)}`, line {spec.line}",
        f"- Returns: {_OPERATIONS[spec.operation]}",
        f"- Called by: {callers}",
        f"- Indexes used: {indexes}",
    ]
    if scans:
        out.append(f"- Sequential scans: {scans}")
    if entry.params:
        out += ["", "| $n | parameter | type | nullable |", "| --- | --- | --- | --- |"]
        out += [
            f"| ${n} | `:{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} |"
            for n, c in entry.params
        ]
    if entry.columns:
        out += ["", "| column | type | nullable | from |", "| --- | --- | --- | --- |"]
        out += [
            f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | "
            f"{f'`{c.source}`' if c.source else 'expression'} |"
            for c in entry.columns
        ]
    out += ["", "```sql", entry.source, "```", "", "Plan:", "", "```", plan.text, "```"]
    return out


def _rel(path: Path, config: CodegenConfig) -> str:
    try:
        return path.relative_to(config.root).as_posix()
    except ValueError:
        return path.as_posix()


def _server_major(conn: psycopg.Connection[Any]) -> int:
    return conn.info.server_version // 10000


def _table_sizes(conn: psycopg.Connection[Any]) -> list[tuple[str, int]]:
    rows = conn.execute(
        """
        SELECT c.relname
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind = 'r'
            AND c.relname <> 'schema_migrations'
        ORDER BY c.relname
        """
    ).fetchall()
    counted = []
    for (name,) in rows:
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
        ).fetchone()
        counted.append((str(name), int(count[0]) if count else 0))
    return counted


# -- schema.md ----------------------------------------------------------------

_MERMAID_TYPES = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "bool": "boolean",
    "float4": "real",
    "float8": "double",
    "varchar": "varchar",
    "bpchar": "char",
}

_TABLES = """
SELECT c.oid, c.relname
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
    AND c.relname <> 'schema_migrations'
ORDER BY c.relname
"""

_COLUMNS = """
SELECT a.attname, t.typname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
    pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute AS a
JOIN pg_type AS t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_CONSTRAINTS = """
SELECT con.conname, con.contype, pg_get_constraintdef(con.oid),
    ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k (attnum, ord)
          JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
          ORDER BY k.ord),
    ref.relname
FROM pg_constraint AS con
LEFT JOIN pg_class AS ref ON ref.oid = con.confrelid
-- NOT NULL constraints (PostgreSQL 18 lists them here) are in the column table
WHERE con.conrelid = %s AND con.contype <> 'n'
ORDER BY con.conname
"""

_INDEXES = """
SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary,
    -- the columns it covers: plain key columns and those its expressions use
    ARRAY(
        SELECT a.attname FROM pg_attribute AS a
        WHERE a.attrelid = i.indrelid AND a.attnum > 0 AND (
            a.attnum = ANY(i.indkey)
            OR EXISTS (
                SELECT 1 FROM pg_depend AS d
                WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                    AND d.refobjid = i.indrelid AND d.refobjsubid = a.attnum
            )
        )
        ORDER BY a.attname
    ),
    CASE WHEN i.indexprs IS NOT NULL THEN pg_get_indexdef(i.indexrelid, 1, true) END
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
LEFT JOIN pg_constraint AS con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
WHERE i.indrelid = %s
ORDER BY c.relname
"""

_TRIGGERS = """
SELECT t.tgname, pg_get_triggerdef(t.oid)
FROM pg_trigger AS t
WHERE t.tgrelid = %s AND NOT t.tgisinternal
ORDER BY t.tgname
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


@dataclass
class _Table:
    name: str
    columns: list[tuple[str, str, str, bool, str | None]]  # name, typname, type, not null, default
    constraints: list[tuple[str, str, str, list[str], str | None]]
    indexes: list[tuple[str, str, bool, bool, list[str], str | None]]  # ..., expression
    triggers: list[tuple[str, str]]


def _read_schema(conn: psycopg.Connection[Any]) -> list[_Table]:
    tables = []
    for oid, name in conn.execute(_TABLES).fetchall():
        tables.append(
            _Table(
                name=name,
                columns=[tuple(r) for r in conn.execute(_COLUMNS, (oid,)).fetchall()],
                constraints=[tuple(r) for r in conn.execute(_CONSTRAINTS, (oid,)).fetchall()],
                indexes=[tuple(r) for r in conn.execute(_INDEXES, (oid,)).fetchall()],
                triggers=[tuple(r) for r in conn.execute(_TRIGGERS, (oid,)).fetchall()],
            )
        )
    return tables


def render_schema(conn: psycopg.Connection[Any]) -> str:
    tables = _read_schema(conn)
    out = [
        "<!-- Generated by `llmcp catalog` from the migrated database. DO NOT EDIT. -->",
        "",
        "# Schema",
        "",
        "The tables of the database after every migration of `dbmate/migrations/`,",
        "read back from the PostgreSQL catalog (`pg_class`, `pg_constraint`, `pg_index`,",
        "`pg_trigger`; definitions by `pg_get_constraintdef`, `pg_get_indexdef`,",
        "`pg_get_triggerdef`). dbmate's own `schema_migrations` table is left out.",
        "`dbmate/schema.sql` is the complete dump; [queries.md](queries.md) lists every",
        "query with its plan. Regenerate with `llmcp catalog`.",
        "",
        "## Diagram",
        "",
        "Keys: PK primary key, FK part of a foreign key, UK unique on its own",
        "(a unique constraint or unique index on that one column). Every line is a",
        "foreign key, labelled with the referencing columns.",
        "",
        "```mermaid",
        "erDiagram",
    ]
    out += _relationships(tables)
    for table in tables:
        out += _entity(table)
    out += ["```"]
    for table in tables:
        out += _table_section(table)
    enums = conn.execute(_ENUMS).fetchall()
    if enums:
        out += ["", "## Enum types", "", "| type | values (in order) |", "| --- | --- |"]
        out += [f"| `{name}` | {', '.join(f'`{v}`' for v in labels)} |" for name, labels in enums]
    return "\n".join(out).rstrip() + "\n"


def _relationships(tables: list[_Table]) -> list[str]:
    lines = []
    for table in tables:
        not_null = {c[0]: c[3] for c in table.columns}
        for _name, kind, _definition, columns, referenced in table.constraints:
            if kind != "f" or referenced is None:
                continue
            parent = "||" if all(not_null[c] for c in columns) else "|o"
            label = ", ".join(columns)
            lines.append(f'    {referenced} {parent}--o{{ {table.name} : "{label}"')
    return sorted(lines)


def _entity(table: _Table) -> list[str]:
    primary: set[str] = set()
    foreign: set[str] = set()
    unique: set[str] = set()
    notes: dict[str, str] = {}
    for _name, kind, _definition, columns, _referenced in table.constraints:
        if kind == "p":
            primary |= set(columns)
        elif kind == "f":
            foreign |= set(columns)
    for _name, _definition, is_unique, is_primary, columns, expression in table.indexes:
        if is_unique and not is_primary and len(columns) == 1:
            unique |= set(columns)
            if expression:
                notes[columns[0]] = f"unique as {expression}"
    lines = [f"    {table.name} {{"]
    for name, typname, _type, not_null, _default in table.columns:
        keys = [k for k, s in (("PK", primary), ("FK", foreign), ("UK", unique)) if name in s]
        mermaid_type = _MERMAID_TYPES.get(typname, typname)
        line = f"        {mermaid_type} {name}"
        if keys:
            line += " " + ", ".join(keys)
        comment = ", ".join(n for n in ("" if not_null else "null", notes.get(name, "")) if n)
        if comment:
            line += f' "{comment}"'
        lines.append(line)
    lines.append("    }")
    return lines


def _table_section(table: _Table) -> list[str]:
    out = [
        "",
        f"## {table.name}",
        "",
        "| column | type | nullable | default |",
        "| --- | --- | --- | --- |",
    ]
    for name, _typname, type_name, not_null, default in table.columns:
        shown = f"`{default}`" if default is not None else ""
        out.append(f"| `{name}` | {type_name} | {'no' if not_null else 'yes'} | {shown} |")
    out += ["", "Indexes:", "", "| index | definition |", "| --- | --- |"]
    for name, definition, *_ in table.indexes:
        out.append(f"| `{name}` | `{_md(definition)}` |")
    kinds = {"p": "primary key", "f": "foreign key", "u": "unique", "c": "check", "x": "exclusion"}
    out += ["", "Constraints:", "", "| constraint | kind | definition |", "| --- | --- | --- |"]
    for name, kind, definition, *_ in table.constraints:
        out.append(f"| `{name}` | {kinds.get(kind, kind)} | `{_md(definition)}` |")
    if table.triggers:
        out += ["", "Triggers:", "", "| trigger | definition |", "| --- | --- |"]
        out += [f"| `{name}` | `{_md(definition)}` |" for name, definition in table.triggers]
    return out


def _md(text: str) -> str:
    """Text for a Markdown table cell inside backticks."""
    return re.sub(r"\s+", " ", text).replace("|", "\\|")


# -- the command --------------------------------------------------------------


def documents(config: CodegenConfig) -> dict[Path, str]:
    """Both documents, rendered on a fresh seeded scratch database."""
    with ScratchDatabases(migrations_dir=config.migrations_dir) as databases:
        url = databases.url(databases.clone("catalog"))
        SEED.load(url)
        with psycopg.connect(url, autocommit=True) as conn:
            docs = config.root / "docs"
            return {
                docs / "queries.md": render_queries(conn, config),
                docs / "schema.md": render_schema(conn),
            }


def run(pyproject: Path, *, check: bool) -> tuple[int, str]:
    """Write the documents, or with ``check`` compare them: (exit code, message)."""
    config = CodegenConfig.load(pyproject)
    rendered = documents(config)
    if check:
        changes = diff(rendered, [])
        if changes:
            return 1, changes + "\nthe catalog is stale: run `llmcp catalog`"
        return 0, ""
    changed = [path for path, text in rendered.items() if _write(path, text)]
    return 0, f"wrote {len(changed)} of {len(rendered)} catalog files"


def _write(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True
