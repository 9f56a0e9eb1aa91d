"""``docs/queries.md``: every named query with its SQL, parameters, result columns,
the repository methods that run it, and its generic plan."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from aiosql.types import SQLOperationType as Op
from psycopg import sql

import llmcp.repositories
from llmcp.dev.catalog.plans import SEED, explain
from llmcp.dev.codegen.config import CodegenConfig
from llmcp.dev.codegen.describe import Catalog, Description, describe, load_catalog
from llmcp.dev.codegen.infer import analyze
from llmcp.dev.codegen.loader import QuerySpec, load_file
from llmcp.dev.codegen.render import Renderer, Struct

_OPERATIONS = {
    Op.SELECT: "rows (every row the query finds)",
    Op.SELECT_ONE: "at most one row",
    Op.SELECT_VALUE: "one value, or none when no row is found",
    Op.INSERT_RETURNING: "the row written (RETURNING)",
    Op.INSERT_UPDATE_DELETE: "the number of rows affected",
    Op.INSERT_UPDATE_DELETE_MANY: "the number of rows affected, over all parameter rows (executemany)",
}


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
                    columns=_columns(
                        conn, renderer, catalog, names, spec, desc, inference, method.struct
                    ),
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
    struct: Struct | None,
) -> tuple[Column, ...]:
    if not desc.fields:
        return ()
    # as the generated code types them: a shared table struct keeps the table's nullability
    fields = struct.fields if struct else tuple(renderer.result_fields(spec, desc, inference))
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
        "- `audit_logs` and `inference_requests` are partitioned by month of",
        "  `created_at`: `*_history` holds everything before the first month (the",
        "  seeded rows here), `*_pYYYY_MM` one month each (the current one and three",
        "  ahead, empty here). The executor drops the partitions a statement's",
        "  parameters exclude before it reads any (*Subplans Removed*): to show it,",
        "  `timestamptz` parameters are bound to the last day of the seeded data, the",
        "  others to NULL. A keyset page's cursor (`created_at <= :after_created_at`)",
        "  leaves out the months after it; a lookup by id reads every month's index,",
        "  unless a key gives its `created_at` first (`inference_request_keys`).",
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
    partitions = plan.partitions()
    if partitions:
        read, total = partitions
        out.append(
            f"- Partitions: {read} of {total} in the plan (the others pruned by the"
            " parameters as the executor starts; a sub-query's value prunes as it runs)"
        )
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
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
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
