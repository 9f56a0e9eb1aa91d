"""``llmcp codegen``: typed Python from ``sql/*.sql`` and a migrated database.

1. read every SQL file with aiosql's loader (:mod:`llmcp.codegen.loader`);
2. prepare and describe each statement on a freshly migrated database
   (:mod:`llmcp.codegen.describe`);
3. infer nullability from the syntax tree (:mod:`llmcp.codegen.infer`);
4. render one models module plus one module per SQL file
   (:mod:`llmcp.codegen.render`), ruff-formatted, and write them all or
   nothing (:mod:`llmcp.codegen.output`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from llmcp.codegen.config import CodegenConfig
from llmcp.codegen.describe import describe, load_catalog
from llmcp.codegen.errors import CodegenError
from llmcp.codegen.infer import analyze
from llmcp.codegen.loader import QuerySpec, load_file
from llmcp.codegen.output import diff, format_sources, generated_files, write
from llmcp.codegen.render import Method, Renderer, _header
from llmcp.codegen.unasync import async_sources, to_sync, twin_path
from llmcp.scratch import ScratchDatabases

__all__ = ["CodegenConfig", "CodegenError", "generate", "run"]


def run(config: CodegenConfig, *, check: bool) -> tuple[int, str]:
    """Generate on a fresh scratch database; write, or with ``check`` only compare.

    Covers both kinds of generated code: ``generated/`` from the SQL files and
    the sync twins of the ``*_async.py`` modules. Returns (exit code, message):
    with ``check``, 1 and a unified diff when anything is stale.
    """
    with ScratchDatabases(migrations_dir=config.migrations_dir) as databases:
        sources = generate(config, databases.url(databases.template))
    sources |= sync_twins(config)
    candidates = [*config.out_dir.glob("*.py")]
    for root in config.async_roots:
        candidates += root.rglob("*.py")
    # resolved, so that one file seen through a symlink (llmcp/generated) counts once
    produced = {path.resolve() for path in sources}
    existing = {path.resolve() for path in candidates if path.exists()}
    stale = [p for p in generated_files(existing) if p not in produced]
    if check:
        changes = diff(sources, stale)
        return (
            (1, changes + "\ngenerated code is stale: run `llmcp codegen`") if changes else (0, "")
        )
    changed = write(sources, stale)
    return 0, f"wrote {len(changed)} of {len(sources)} generated files"


def sync_twins(config: CodegenConfig) -> dict[Path, str]:
    """The sync twin of every ``*_async.py`` module under the configured roots."""
    twins = {}
    for root in config.async_roots:
        for source in async_sources(root):
            origin = _relative(source, config.root)
            twins[twin_path(source)] = to_sync(source.read_text(), origin=origin)
    # imports only the async code needs (Awaitable, asyncio) fall away
    first_party = ["llmcp", "tests", config.package.partition(".")[0]]
    return format_sources(twins, first_party, fixes="I,RUF022,F401")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


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
        raise CodegenError(f"cannot reach the database: {exc}") from exc
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
        out / f"{path.stem}.py": renderer.render_queries(_relative(path, root), path.stem, items)
        for path, items in methods.items()
    }
    sources[out / "models.py"] = renderer.render_models()
    sources[out / "__init__.py"] = (
        _header(_relative(config.sql_dir, root) + "/*.sql")
        + '\n"""Typed queries and row structs generated from the SQL files."""\n'
    )
    return format_sources(sources, ["llmcp", config.package.partition(".")[0]])


def _analyze(spec: QuerySpec, catalog: Any) -> Any:
    try:
        return analyze(spec.positional_sql, catalog)
    except Exception as exc:  # pglast parse errors: PostgreSQL accepted it, so be explicit
        raise spec.fail(f"cannot analyze the statement: {exc}") from exc
