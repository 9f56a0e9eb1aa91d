"""Codegen settings, from ``[tool.llmcp.codegen]`` in pyproject.toml.

Queries are described on the combined schema: llmcp's packaged migrations, then
the service's own folder, found as ``llmcp db`` finds it (see
:func:`llmcp.migrate.default_migrations_dirs`): ``LLMCP_MIGRATIONS_DIR``, else
``migrations-dir`` under ``[tool.llmcp]``, read from the pyproject.toml given
(so ``--config`` elsewhere works too). The codegen section's own
``migrations-dir``, the older key, names that folder too and wins over both. In
llmcp's checkout the folder is the packaged one itself, and counts once.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmcp.dev.codegen.errors import CodegenError
from llmcp.migrate import (
    MIGRATIONS_DIR_VARIABLE,
    default_migrations_dirs,
    packaged_migrations_dir,
    unique_dirs,
)


@dataclass(frozen=True, slots=True)
class CodegenConfig:
    sql_dir: Path = Path("sql")
    out_dir: Path = Path("generated")
    # migrated in this order before describing; None: default_migrations_dirs()
    migrations_dirs: tuple[Path, ...] | None = None
    package: str = "llmcp.generated"  # how the generated modules import each other
    sql_package: str = "llmcp.sql"  # where the SQL files are found at run time
    # "table.column" -> "module:Type": the msgspec type of a jsonb column
    jsonb: dict[str, str] = field(default_factory=dict)
    # folders whose *_async.py modules get a generated sync twin
    async_roots: tuple[Path, ...] = ()
    root: Path = Path()

    @classmethod
    def load(cls, pyproject: Path) -> CodegenConfig:
        """Read the settings; paths are relative to the folder of ``pyproject``."""
        try:
            data = tomllib.loads(pyproject.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CodegenError(f"cannot read {pyproject}: {exc}") from exc
        tool = data.get("tool", {}).get("llmcp", {})
        section = tool.get("codegen", {})
        root = pyproject.parent
        jsonb = section.get("jsonb", {})
        for key, target in jsonb.items():
            if key.count(".") != 1 or target.count(":") != 1:
                raise CodegenError(
                    f"{pyproject}: jsonb entry {key!r} = {target!r} "
                    "is not 'table.column' = 'module:Type'"
                )
        return cls(
            sql_dir=root / section.get("sql-dir", "sql"),
            out_dir=root / section.get("out-dir", "generated"),
            migrations_dirs=_migrations_dirs(tool, root, pyproject),
            package=section.get("package", "llmcp.generated"),
            sql_package=section.get("sql-package", "llmcp.sql"),
            jsonb=dict(sorted(jsonb.items())),
            async_roots=tuple(root / p for p in section.get("async-roots", [])),
            root=root,
        )


def _migrations_dirs(tool: Mapping[str, Any], root: Path, pyproject: Path) -> tuple[Path, ...]:
    """llmcp's migrations, then the service's folder (see the module's docstring)."""
    own = tool.get("codegen", {}).get("migrations-dir")
    if own is None and os.environ.get(MIGRATIONS_DIR_VARIABLE):
        return default_migrations_dirs()  # the variable's folder, as `llmcp db` uses it
    own = tool.get("migrations-dir") if own is None else own
    if own is None:
        return (packaged_migrations_dir(),)
    if not isinstance(own, str) or not own:
        raise CodegenError(f"{pyproject}: migrations-dir must be a folder name")
    return unique_dirs([packaged_migrations_dir(), root / own])
