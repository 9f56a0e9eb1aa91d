"""``llmcp codegen``: typed Python from ``sql/*.sql`` and a migrated database.

1. read every SQL file with aiosql's loader (:mod:`llmcp.dev.codegen.loader`);
2. prepare and describe each statement on a freshly migrated database
   (:mod:`llmcp.dev.codegen.describe`);
3. infer nullability from the syntax tree (:mod:`llmcp.dev.codegen.infer`);
4. render one models module plus one module per SQL file
   (:mod:`llmcp.dev.codegen.render`), ruff-formatted, and write them all or
   nothing (:mod:`llmcp.dev.codegen.output`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from llmcp import conninfo
from llmcp.dev.codegen.config import CodegenConfig
from llmcp.dev.codegen.describe import describe, load_catalog
from llmcp.dev.codegen.errors import CodegenError
from llmcp.dev.codegen.infer import analyze
from llmcp.dev.codegen.loader import QuerySpec, load_file
from llmcp.dev.codegen.output import HEADER, format_sources, relative, settle
from llmcp.dev.codegen.render import Method, Renderer, _header
from llmcp.dev.scratch import ScratchDatabases

__all__ = ["CodegenConfig", "CodegenError", "generate", "run"]


def run(config: CodegenConfig, *, check: bool) -> tuple[int, str]:
    """Generate on a fresh scratch database (llmcp's migrations, then the service's);
    write, or with ``check`` only compare.

    Returns (exit code, message): with ``check``, 1 and a unified diff when
    anything in the output folder is stale.
    """
    with ScratchDatabases(migrations_dirs=config.migrations_dirs) as databases:
        sources = generate(config, databases.owner_url(databases.template), root=config.root)
    return settle(
        sources, config.out_dir.glob("*.py"), HEADER, check=check, command="llmcp codegen"
    )


def generate(config: CodegenConfig, url: str, *, root: Path | None = None) -> dict[Path, str]:
    """Render every module of ``generated/`` (path -> source) without writing anything."""
    root = root or config.sql_dir.parent
    files = sorted(config.sql_dir.glob("*.sql"))
    if not files:
        raise CodegenError(f"no .sql files in {config.sql_dir}")
    specs = {path: load_file(path) for path in files}
    try:
        conn: psycopg.Connection[Any] = psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError as exc:
        raise conninfo.connection_error(exc, url) from None
    with conn:
        described = {
            path: [(spec, describe(conn, spec)) for spec in items] for path, items in specs.items()
        }
        oids = {
            o
            for items in described.values()
            for _, d in items
            for o in (*d.param_oids, *(f.type_oid for f in d.fields))
        }
        catalog = load_catalog(conn, oids)
    renderer = Renderer(config, catalog)
    methods: dict[Path, list[Method]] = {}
    for path, items in described.items():
        methods[path] = [
            renderer.method(spec, desc, _analyze(spec, catalog)) for spec, desc in items
        ]
    out = config.out_dir
    sources = {
        out / f"{path.stem}.py": renderer.render_queries(relative(path, root), path.stem, items)
        for path, items in methods.items()
    }
    sources[out / "models.py"] = renderer.render_models()
    sources[out / "__init__.py"] = (
        _header(relative(config.sql_dir, root) + "/*.sql")
        + '\n"""Typed queries and row structs generated from the SQL files."""\n'
    )
    return format_sources(sources, ["llmcp", config.package.partition(".")[0]])


def _analyze(spec: QuerySpec, catalog: Any) -> Any:
    nullable = [spec.params.index(n) + 1 for n in spec.annotations.nullable_params]
    try:
        return analyze(spec.positional_sql, catalog, nullable)
    except Exception as exc:  # pglast parse errors: PostgreSQL accepted it, so be explicit
        raise spec.fail(f"codegen cannot analyse the statement: {exc}") from exc
