"""Run codegen on small SQL files written by the test, against the shared database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from llmcp.dev.codegen import CodegenConfig, generate

Generate = Callable[[str], dict[str, str]]


def config_for(root: Path) -> CodegenConfig:
    return CodegenConfig(
        sql_dir=root / "sql",
        out_dir=root / "out",
        package="out",
        sql_package="sql",
        jsonb={"policies.config": "llmcp.policy_config:PolicyConfig"},
    )


@pytest.fixture
def generate_sql(tmp_path: Path, shared_owner_db: str) -> Generate:
    """Write one SQL file (queries.sql) and render it; returns file name -> source.
    Described as the owner, as ``llmcp codegen`` does (its scratch database's owner)."""

    def run(sql: str) -> dict[str, str]:
        (tmp_path / "sql").mkdir(exist_ok=True)
        (tmp_path / "sql" / "queries.sql").write_text(sql)
        sources = generate(config_for(tmp_path), shared_owner_db, root=tmp_path)
        return {path.name: source for path, source in sources.items()}

    return run
