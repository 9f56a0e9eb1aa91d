"""The generated API is really typed: mypy --strict accepts correct use and rejects misuse."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = """\
import uuid
from typing import Any

import psycopg

from llmcp.generated.organizations import OrganizationsQueries
from llmcp.generated.policies import AsyncPoliciesQueries

queries = OrganizationsQueries()


def use(conn: psycopg.Connection[Any]) -> None:
"""

PROGRAMS = {
    "correct": (
        """\
    org = queries.get_by_id(conn, id=uuid.uuid4())
    if org is not None:
        print(org.slug.upper(), org.version + 1, org.created_at.isoformat())
    for row in queries.list(conn, limit=10, offset=0):
        print(row.name)
    count: int = queries.delete(conn, id=uuid.uuid4())
    print(count)


async def use_async(conn: psycopg.AsyncConnection[Any], org_id: uuid.UUID) -> None:
    policies = AsyncPoliciesQueries()
    for policy in await policies.get_by_org_id(conn, org_id=org_id, limit=5, offset=0):
        print(policy.config, policy.policy_type.value)
""",
        None,
    ),
    "wrong_attribute": (
        """\
    org = queries.get_by_id(conn, id=uuid.uuid4())
    if org is not None:
        print(org.slugg)
""",
        r'"Organization" has no attribute "slugg".*\[attr-defined\]',
    ),
    "wrong_parameter_type": (
        """\
    print(queries.get_by_id(conn, id="not-a-uuid"))
""",
        r'Argument "id" to "get_by_id" of "OrganizationsQueries" has incompatible type "str"; '
        r'expected "UUID"\s+\[arg-type\]',
    ),
    "missing_parameter": (
        """\
    print(queries.list(conn, limit=10))
""",
        r'Missing named argument "offset" for "list" of "OrganizationsQueries"\s+\[call-arg\]',
    ),
    "optional_without_check": (
        """\
    org = queries.get_by_id(conn, id=uuid.uuid4())
    print(org.slug)
""",
        r'Item "None" of "Organization \| None" has no attribute "slug"\s+\[union-attr\]',
    ),
}


def test_mypy_accepts_correct_use_and_rejects_each_misuse(tmp_path: Path) -> None:
    for name, (body, _) in PROGRAMS.items():
        (tmp_path / f"{name}.py").write_text(PRELUDE + body)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--hide-error-context",
         "--cache-dir", str(ROOT / ".mypy_cache"), *sorted(str(p) for p in tmp_path.glob("*.py"))],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    by_file: dict[str, list[str]] = {}
    for line in output.splitlines():
        match = re.match(r".*?(\w+)\.py:\d+: error: (.*)$", line)
        if match:
            by_file.setdefault(match[1], []).append(match[2])
    assert "correct" not in by_file, output
    for name, (_, expected) in PROGRAMS.items():
        if expected is None:
            continue
        errors = by_file.get(name, [])
        assert len(errors) == 1 and re.search(expected, errors[0]), f"{name}: {errors}\n{output}"
