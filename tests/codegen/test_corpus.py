"""Ground truth for codegen's nullability, established on the server (tests/codegen/corpus.sql).

Every query of the corpus claims, in its doc lines, which result columns can
come back NULL (``null:``) and which parameters accept None meaningfully
(``none:``). This test first checks those claims on a real database, in two
states (empty, and one built so that each nullable column shows a NULL) and
over a set of parameter values:

- a ``null:`` column must come back NULL at least once, every other column never;
- a ``none:`` parameter, given None, must succeed and do something (write a
  row, or return rows that differ from those of a value that matches nothing);
- any other parameter given None must fail, do nothing, or return what a value
  that matches nothing returns.

Then it compares codegen's types with the truth. Unsafe columns (typed non-null,
seen NULL) and too-loose parameters (None accepted where it means nothing) fail
the test, and so does a query codegen refuses; needless Optionals ("unhelpful")
and parameters that refuse a meaningful None ("too strict") are counted and
printed, per construct.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq

from llmcp.dev.codegen import CodegenError
from llmcp.dev.codegen.describe import Description, describe, load_catalog
from llmcp.dev.codegen.infer import analyze
from llmcp.dev.codegen.loader import QuerySpec, load_file
from llmcp.dev.codegen.render import Renderer
from tests.codegen.conftest import config_for

CORPUS = Path(__file__).with_name("corpus.sql")

ORG_A = "00000000-0000-0000-0000-0000000000a0"
ORG_B = "00000000-0000-0000-0000-0000000000b0"  # no applications, users or requests
ORG_C = "00000000-0000-0000-0000-0000000000c0"
APP_A1 = "00000000-0000-0000-0000-0000000000a1"
APP_A2 = "00000000-0000-0000-0000-0000000000a2"  # no description, no requests
APP_C1 = "00000000-0000-0000-0000-0000000000c1"
USER_A1 = "00000000-0000-0000-0000-00000000a001"
USER_A2 = "00000000-0000-0000-0000-00000000a002"
MISSING = "00000000-0000-0000-0000-00000000dead"
NEW_ID = "00000000-0000-0000-0000-00000000beef"

HEX = "repeat('0', 64)"
RICH = f"""
INSERT INTO organizations (id, name, slug) VALUES
    ('{ORG_A}', 'Alpha', 'alpha'), ('{ORG_B}', 'Beta', 'beta'), ('{ORG_C}', 'Gamma', 'gamma');
INSERT INTO applications (id, org_id, name, description, api_key_hash, created_at) VALUES
    ('{APP_A1}', '{ORG_A}', 'Alpha app', NULL, repeat('1', 64), '2026-01-01'),
    ('{APP_A2}', '{ORG_A}', 'Second', NULL, repeat('2', 64), '2026-01-02'),
    ('{APP_C1}', '{ORG_C}', 'Gamma app', NULL, repeat('3', 64), '2026-01-03');
UPDATE applications SET description = 'first' WHERE id = '{APP_A1}';
INSERT INTO users (id, org_id, email, email_key, cognito_sub, display_name, role) VALUES
    ('{USER_A1}', '{ORG_A}', 'a1@example.com', 'a1@example.com', 'sub-a1', NULL, 'admin'),
    ('{USER_A2}', '{ORG_A}', 'a2@example.com', 'a2@example.com', 'sub-a2', 'Ann', 'member');
INSERT INTO inference_requests (org_id, app_id, user_id, request_id, provider, model, status,
    prompt_tokens, completion_tokens, total_tokens, latency_ms, error_message, created_at,
    completed_at) VALUES
    ('{ORG_A}', '{APP_A1}', '{USER_A1}', 'r1', 'openai', 'gpt', 'completed', 10, 5, 15, 100,
     NULL, '2026-01-01 10:00+00', '2026-01-01 10:00:01+00'),
    ('{ORG_A}', '{APP_A1}', NULL, 'r2', 'anthropic', 'claude', 'failed', 0, 0, 0, NULL,
     'boom', '2026-01-02 10:00+00', NULL),
    ('{ORG_C}', '{APP_C1}', NULL, 'r3', 'openai', 'gpt', 'failed', 0, 0, 0, NULL, NULL,
     '2026-01-02 11:00+00', NULL);
INSERT INTO audit_logs (org_id, app_id, user_id, action, resource_type, details, ip_address) VALUES
    ('{ORG_A}', '{APP_A1}', '{USER_A1}', 'user_created', 'user', '{{"k": {{"x": 1}}}}',
     '10.0.0.1'),
    ('{ORG_A}', NULL, NULL, 'user_created', 'user', '{{}}', NULL);
"""
STATES = {"empty": "", "rich": RICH}

# parameter name -> (values to run with, a value that matches nothing); text format
VALUES: dict[str, tuple[list[str], str]] = {
    "org_id": ([ORG_A, ORG_B, ORG_C], MISSING),
    "app_id": ([APP_A1, APP_A2], MISSING),
    "user_id": ([USER_A1], MISSING),
    "new_id": ([NEW_ID], MISSING),
    "slug": (["alpha", "fresh-slug"], "nothing-here"),
    "description": (["changed"], "other"),
    "name": (["Alpha app", "nothing"], "nothing"),
    "ip_address": (["10.1.2.3"], "10.9.9.9"),
    "role": (["admin", "member"], "owner"),
    "details": (['{"k": 1}', "[]"], "[]"),
    "n": (["3"], "0"),
    "since": (["2026-01-01T00:00:00Z"], "1990-01-01T00:00:00Z"),
}


@dataclass
class Case:
    name: str
    construct: str
    null: frozenset[str]
    none: frozenset[str]
    spec: QuerySpec | None = None
    desc: Description | None = None
    failure: str | None = None
    columns: list[str] = field(default_factory=list)
    seen_null: set[str] = field(default_factory=set)
    meaningful_none: set[str] = field(default_factory=set)
    meaningless_none_breaks: list[str] = field(default_factory=list)


def _chunks(text: str) -> Iterator[str]:
    parts = re.split(r"^(?=-- name: )", text, flags=re.M)
    yield from (p for p in parts if p.startswith("-- name: "))


def _doc(chunk: str, key: str) -> frozenset[str]:
    match = re.search(rf"^-- {key}: (.*)$", chunk, flags=re.M)
    return frozenset(v.strip() for v in match[1].split(",")) if match else frozenset()


def _cases(tmp_path: Path) -> list[Case]:
    cases = []
    for index, chunk in enumerate(_chunks(CORPUS.read_text())):
        name = chunk.split()[2].split("(")[0]
        (construct,) = _doc(chunk, "construct")
        case = Case(name, construct, _doc(chunk, "null"), _doc(chunk, "none"))
        path = tmp_path / f"q{index}.sql"
        path.write_text(chunk)
        try:
            (case.spec,) = load_file(path)
        except CodegenError as exc:
            case.failure = str(exc)
        cases.append(case)
    return cases


def _execute(pgconn: pq.abc.PGconn, sql: bytes) -> None:
    result = pgconn.exec_(sql)
    assert result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK), (
        pgconn.error_message.decode()
    )


@dataclass(frozen=True)
class Outcome:
    ok: bool
    rows: tuple[tuple[bytes | None, ...], ...] = ()
    affected: int = 0


def _run(pgconn: pq.abc.PGconn, case: Case, values: list[str | None]) -> Outcome:
    assert case.spec is not None and case.desc is not None
    _execute(pgconn, b"SAVEPOINT corpus")
    try:
        result = pgconn.exec_params(
            case.spec.positional_sql.encode(),
            [None if v is None else v.encode() for v in values],
            list(case.desc.param_oids),
        )
        if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            return Outcome(ok=False)
        rows = tuple(
            tuple(result.get_value(r, c) for c in range(result.nfields))
            for r in range(result.ntuples)
        )
        return Outcome(True, rows, int(result.command_tuples or 0))
    finally:
        _execute(pgconn, b"ROLLBACK TO SAVEPOINT corpus")


def _is_write(case: Case) -> bool:
    assert case.spec is not None
    return case.spec.positional_sql.lstrip().split(None, 1)[0].upper() in {
        "INSERT", "UPDATE", "DELETE",
    }  # fmt: skip


def _meaningful(case: Case, none: Outcome, miss: Outcome) -> bool:
    if not none.ok:
        return False
    if _is_write(case):
        return none.affected > 0
    return bool(none.rows) and none.rows != miss.rows


def _observe(pgconn: pq.abc.PGconn, case: Case) -> None:
    assert case.spec is not None
    params = case.spec.params
    choices: list[list[str | None]] = [
        [*VALUES[p][0], *([None] if p in case.none else [])] for p in params
    ]
    for values in itertools.islice(itertools.product(*choices), 48):
        outcome = _run(pgconn, case, list(values))
        for row in outcome.rows:
            case.seen_null |= {c for c, v in zip(case.columns, row, strict=True) if v is None}
    base: list[tuple[str | None, ...]] = list(
        itertools.islice(itertools.product(*(VALUES[p][0] for p in params)), 12)
    )
    for position, param in enumerate(params):
        for values in base:
            with_none = [*values[:position], None, *values[position + 1 :]]
            with_miss = [*values[:position], VALUES[param][1], *values[position + 1 :]]
            if _meaningful(case, _run(pgconn, case, with_none), _run(pgconn, case, with_miss)):
                case.meaningful_none.add(param)


def _codegen_types(case: Case, renderer: Renderer, catalog: Any) -> tuple[set[str], set[str]]:
    """(nullable columns, None-accepting parameters) as codegen types them."""
    assert case.spec is not None and case.desc is not None
    inference = analyze(case.spec.positional_sql, catalog)
    method = renderer.method(case.spec, case.desc, inference)
    fields = renderer.result_fields(case.spec, case.desc, inference) if case.desc.fields else []
    columns = {f.name for f in fields if f.annotation.endswith("| None")}
    params = {
        p.name for p in method.params if p.annotation.endswith("| None")
        or p.annotation == "models.JsonValue"  # admits None
    }  # fmt: skip
    return columns, params


def test_corpus(tmp_path: Path, fresh_owner_db: str) -> None:
    cases = _cases(tmp_path)
    assert len(cases) >= 80
    # as the owner, as `llmcp codegen` describes: the NULLs observed are those of every
    # tenant's rows, which row-level security would hide from the application role
    with psycopg.connect(fresh_owner_db, autocommit=True) as conn:
        for case in cases:
            if case.spec is None:
                continue
            try:
                case.desc = describe(conn, case.spec)
            except CodegenError as exc:
                case.failure = str(exc)
                continue
            case.columns = [f.name for f in case.desc.fields]
        catalog = load_catalog(
            conn,
            {o for c in cases if c.desc for o in (*c.desc.param_oids,
                                                  *(f.type_oid for f in c.desc.fields))},
        )  # fmt: skip
        pgconn = conn.pgconn
        for state in STATES.values():
            _execute(pgconn, b"BEGIN")
            if state:
                _execute(pgconn, state.encode())
            for case in cases:
                if case.desc is not None:
                    _observe(pgconn, case)
            _execute(pgconn, b"ROLLBACK")

    # the corpus's claims, checked on the server
    wrong_truth = []
    for case in cases:
        if case.desc is None:
            continue
        for column in sorted(case.null - case.seen_null):
            wrong_truth.append(f"{case.name}.{column}: claimed nullable, never seen NULL")
        for column in sorted(case.seen_null - case.null):
            wrong_truth.append(f"{case.name}.{column}: claimed not null, seen NULL")
        for param in sorted(case.none - case.meaningful_none):
            wrong_truth.append(f"{case.name}(:{param}): claimed to accept None, means nothing")
        for param in sorted(case.meaningful_none - case.none):
            wrong_truth.append(f"{case.name}(:{param}): claimed not None, None means something")
        unknown = set(case.null) - set(case.columns)
        wrong_truth += [f"{case.name}.{c}: no such column" for c in sorted(unknown)]
    assert not wrong_truth, "\n".join(wrong_truth)

    # codegen against the truth
    renderer = Renderer(config_for(tmp_path), catalog)
    counts: dict[str, Counter[str]] = {}
    problems = []
    for case in cases:
        tally = counts.setdefault(case.construct, Counter())
        tally["queries"] += 1
        if case.failure is None:
            assert case.spec is not None
            try:
                columns, params = _codegen_types(case, renderer, catalog)
            except CodegenError as exc:
                case.failure = str(exc)
        if case.failure is not None:
            tally["failed"] += 1
            problems.append(f"{case.name}: refused: {case.failure}")
            continue
        for column in case.columns:
            if column in case.null and column not in columns:
                tally["unsafe"] += 1
                problems.append(f"{case.name}.{column}: typed non-null, can be NULL")
            elif column not in case.null and column in columns:
                tally["unhelpful"] += 1
        for param in case.spec.params if case.spec else ():
            if param in params and param not in case.none:
                tally["too_loose"] += 1
                problems.append(f"{case.name}(:{param}): accepts None, which means nothing")
            elif param in case.none and param not in params:
                tally["too_strict"] += 1
    print(_report(counts))
    assert not problems, "\n".join(problems)


def _report(counts: dict[str, Counter[str]]) -> str:
    keys = ("queries", "unsafe", "unhelpful", "too_loose", "too_strict", "failed")
    total: Counter[str] = Counter()
    lines = ["", f"{'construct':24}" + "".join(f"{k:>11}" for k in keys)]
    for construct, tally in sorted(counts.items()):
        total.update(tally)
        lines.append(f"{construct:24}" + "".join(f"{tally[k]:>11}" for k in keys))
    lines.append(f"{'total':24}" + "".join(f"{total[k]:>11}" for k in keys))
    return "\n".join(lines)
