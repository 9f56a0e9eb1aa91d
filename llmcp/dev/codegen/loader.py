"""Read ``sql/*.sql`` with aiosql's own loader, so names, operators and
parameters are exactly what aiosql runs."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path

from aiosql.adapters.generic import GenericAdapter
from aiosql.query_loader import QueryLoader
from aiosql.types import SQLOperationType
from aiosql.utils import VAR_REF, SQLLoadException, SQLParseException

from llmcp.dev.codegen.errors import CodegenError

_ANNOTATION = re.compile(r"^@(?P<kind>nullable|notnull|jsonnull)\s+(?P<targets>.+)$")


@dataclass(frozen=True, slots=True)
class Annotations:
    """Overrides written in the SQL file (``-- @nullable :param``, ``-- @notnull column``)."""

    nullable_params: frozenset[str] = frozenset()
    notnull_params: frozenset[str] = frozenset()
    nullable_columns: frozenset[str] = frozenset()
    notnull_columns: frozenset[str] = frozenset()
    # jsonb that may hold JSON null as a value: a parameter then also accepts
    # JSON_NULL; a column is typed Optional (JSON null reads back as None)
    jsonnull_params: frozenset[str] = frozenset()
    jsonnull_columns: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """One named query as aiosql sees it, plus its positional form for PostgreSQL."""

    file: Path
    line: int
    name: str
    operation: SQLOperationType
    doc: str
    sql: str
    params: tuple[str, ...]  # in order of first appearance: $1, $2, ...
    declared: tuple[str, ...]  # as the name line declares them
    positional_sql: str
    annotations: Annotations = field(default_factory=Annotations)

    def fail(self, message: str) -> CodegenError:
        return CodegenError(message, file=self.file, line=self.line, query=self.name)


def to_positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """Replace ``:name`` by ``$n`` (one number per distinct name, in order of appearance)."""
    names: list[str] = []

    def replace(match: re.Match[str]) -> str:
        groups = match.groupdict()
        if groups["dquote"] is not None or groups["squote"] is not None:
            return match.group(0)
        name = groups["var_name"]
        if name not in names:
            names.append(name)
        return f"{groups['lead']}${names.index(name) + 1}"

    return VAR_REF.sub(replace, sql), tuple(names)


def _annotations(lines: list[str], spec_params: tuple[str, ...], fail: CodegenError) -> Annotations:
    buckets: dict[str, set[str]] = {k: set() for k in ("np", "nnp", "nc", "nnc", "jp", "jc")}
    for line in lines:
        match = _ANNOTATION.match(line)
        if match is None:
            raise CodegenError(f"{fail} unknown annotation {line!r}")
        for target in (t.strip() for t in match["targets"].split(",")):
            is_param = target.startswith(":")
            name = target.removeprefix(":")
            if is_param and name not in spec_params:
                raise CodegenError(f"{fail} annotation names unknown parameter {target!r}")
            prefix = {"nullable": "n", "notnull": "nn", "jsonnull": "j"}[match["kind"]]
            key = prefix + ("p" if is_param else "c")
            buckets[key].add(name)
    return Annotations(
        frozenset(buckets["np"]),
        frozenset(buckets["nnp"]),
        frozenset(buckets["nc"]),
        frozenset(buckets["nnc"]),
        frozenset(buckets["jp"]),
        frozenset(buckets["jc"]),
    )


def load_file(path: Path) -> list[QuerySpec]:
    """Every query of one SQL file; duplicate names and bad specs are errors."""
    # the pass-through adapter keeps `:name` placeholders; to_positional numbers them
    adapter = GenericAdapter()  # type: ignore[no-untyped-call]
    loader = QueryLoader(adapter, None, attribute="__", mandatory_parameters=True)
    try:
        data = loader.load_query_data_from_file(path)
    except (SQLParseException, SQLLoadException) as exc:
        raise CodegenError(str(exc), file=path) from exc
    specs: list[QuerySpec] = []
    seen: dict[str, int] = {}
    for datum in data:
        line = int(datum.floc[1])
        if datum.query_name in seen:
            raise CodegenError(
                f"duplicate query name (first defined at line {seen[datum.query_name]})",
                file=path, line=line, query=datum.query_name,
            )  # fmt: skip
        seen[datum.query_name] = line
        if keyword.iskeyword(datum.query_name):
            raise CodegenError(
                "a query name cannot be a Python keyword",
                file=path,
                line=line,
                query=datum.query_name,
            )
        if datum.operation_type == SQLOperationType.SCRIPT:
            raise CodegenError(
                "operator '#' (a script) is not supported by codegen",
                file=path, line=line, query=datum.query_name,
            )  # fmt: skip
        doc_lines = [d.strip() for d in (datum.doc_comments or "").splitlines() if d.strip()]
        notes = [d for d in doc_lines if d.startswith("@")]
        docs = [d for d in doc_lines if not d.startswith("@")]
        positional, names = to_positional(datum.sql)
        fail = CodegenError("", file=path, line=line, query=datum.query_name)
        for name in names:
            if keyword.iskeyword(name):
                raise CodegenError(f"parameter {name!r} is a Python keyword", file=path, line=line,
                                   query=datum.query_name)  # fmt: skip
        specs.append(
            QuerySpec(
                file=path, line=line, name=datum.query_name, operation=datum.operation_type,
                doc=" ".join(docs), sql=datum.sql, params=names,
                declared=tuple(datum.parameters or names), positional_sql=positional,
                annotations=_annotations(notes, names, fail),
            )
        )  # fmt: skip
    return specs
