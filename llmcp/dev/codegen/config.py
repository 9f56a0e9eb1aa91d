"""Codegen settings, from ``[tool.llmcp.codegen]`` in pyproject.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from llmcp.dev.codegen.errors import CodegenError


@dataclass(frozen=True, slots=True)
class CodegenConfig:
    sql_dir: Path = Path("sql")
    out_dir: Path = Path("generated")
    migrations_dir: Path = Path("dbmate/migrations")
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
        section = data.get("tool", {}).get("llmcp", {}).get("codegen", {})
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
            migrations_dir=root / section.get("migrations-dir", "dbmate/migrations"),
            package=section.get("package", "llmcp.generated"),
            sql_package=section.get("sql-package", "llmcp.sql"),
            jsonb=dict(sorted(jsonb.items())),
            async_roots=tuple(root / p for p in section.get("async-roots", [])),
            root=root,
        )
