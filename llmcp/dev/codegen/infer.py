"""Nullability from the statement's syntax tree (pglast), where it is certain.

Results: a column straight from a NOT NULL table column is not null unless its
table sits on the nullable side of an outer join; ``count(...)``, constants,
``coalesce`` with a non-null argument, casts and arithmetic of non-null
operands are not null; everything else (``sum``, ``max``, sub-queries, CTE
columns, ...) may be null.

Parameters: one written into a column (INSERT values, UPDATE SET) accepts None
exactly when that column is nullable; a non-last argument of ``coalesce``
accepts None; any other use (WHERE, LIMIT, expressions) does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast
from pglast.enums.nodes import JoinType
from pglast.enums.parsenodes import A_Expr_Kind, SetOperation
from pglast.enums.primnodes import SubLinkType

from llmcp.dev.codegen.describe import Catalog

_NON_NULL_FUNCTIONS = frozenset(
    {"count", "now", "gen_random_uuid", "row_number", "rank", "dense_rank"}
)
_NULL_PRESERVING_OPERATORS = frozenset(
    {"+", "-", "*", "/", "%", "||", "=", "<>", "<", ">", "<=", ">="}
)


@dataclass(frozen=True, slots=True)
class Inference:
    results: tuple[bool, ...]  # per result column: may it be NULL?
    param_nullable: dict[int, bool]  # per $n: may it be None?
    has_star: bool
    result_tables: tuple[str | None, ...]  # per result column: its table, if a plain column
    param_columns: dict[int, tuple[str, str]]  # per $n written straight into a column


@dataclass
class _Scope:
    tables: dict[str, str | None]  # alias -> table name (None: sub-query or CTE)
    nullable: set[str]  # aliases on the nullable side of an outer join


def _walk(node: Any) -> Iterator[Any]:
    if isinstance(node, ast.Node):
        yield node
        for slot in getattr(type(node), "__slots__", ()):
            yield from _walk(getattr(node, slot, None))
    elif isinstance(node, (tuple, list)):
        for item in node:
            yield from _walk(item)


def _name(node: Any) -> str:
    return str(node.sval) if isinstance(node, ast.String) else ""


def _scope(from_items: Any, ctes: set[str], scope: _Scope) -> set[str]:
    """Add ``from_items`` to ``scope``; returns the aliases they introduce."""
    added: set[str] = set()
    for item in from_items or ():
        if isinstance(item, ast.RangeVar):
            relname = str(item.relname)
            alias = str(item.alias.aliasname) if item.alias else relname
            scope.tables[alias] = None if relname in ctes and not item.schemaname else relname
            added.add(alias)
        elif isinstance(item, (ast.RangeSubselect, ast.RangeFunction)):
            if item.alias:
                scope.tables[str(item.alias.aliasname)] = None
                added.add(str(item.alias.aliasname))
        elif isinstance(item, ast.JoinExpr):
            left = _scope((item.larg,), ctes, scope)
            right = _scope((item.rarg,), ctes, scope)
            if item.jointype in (JoinType.JOIN_LEFT, JoinType.JOIN_FULL):
                scope.nullable |= right
            if item.jointype in (JoinType.JOIN_RIGHT, JoinType.JOIN_FULL):
                scope.nullable |= left
            added |= left | right
    return added


class _Analyzer:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def column(self, ref: ast.ColumnRef, scope: _Scope) -> tuple[str | None, bool]:
        """(table, may be null) of a column reference."""
        fields = [_name(f) for f in ref.fields or ()]
        if len(fields) == 2:
            alias, column = fields
            candidates = [alias] if alias in scope.tables else []
        elif len(fields) == 1:
            column = fields[0]
            candidates = [
                a for a, t in scope.tables.items() if t and (t, column) in self.catalog.columns
            ]
        else:
            return None, True
        if len(candidates) != 1:
            return None, True
        alias = candidates[0]
        table = scope.tables[alias]
        found = self.catalog.columns.get((table, column)) if table else None
        if found is None:
            return None, True
        return table, (not found.not_null) or alias in scope.nullable

    def nullable(self, node: Any, scope: _Scope) -> bool:
        if isinstance(node, ast.ColumnRef):
            return self.column(node, scope)[1]
        if isinstance(node, ast.A_Const):
            return bool(node.isnull)
        if isinstance(node, ast.TypeCast):
            return self.nullable(node.arg, scope)
        if isinstance(node, ast.CoalesceExpr):
            return all(self.nullable(arg, scope) for arg in node.args or ())
        if isinstance(node, ast.FuncCall):
            return _name((node.funcname or (None,))[-1]) not in _NON_NULL_FUNCTIONS
        if isinstance(node, ast.SQLValueFunction):
            return False
        if isinstance(node, ast.NullTest):
            return False
        if isinstance(node, ast.BoolExpr):
            return any(self.nullable(arg, scope) for arg in node.args or ())
        if isinstance(node, ast.A_Expr) and node.name and len(node.name) == 1:
            if (
                _name(node.name[0]) in _NULL_PRESERVING_OPERATORS
                and node.kind == A_Expr_Kind.AEXPR_OP
            ):
                operands = [n for n in (node.lexpr, node.rexpr) if n is not None]
                return any(self.nullable(n, scope) for n in operands)
            return True
        if isinstance(node, ast.CaseExpr):
            if node.defresult is None:
                return True
            branches = [w.result for w in node.args or ()] + [node.defresult]
            return any(self.nullable(b, scope) for b in branches)
        exists = isinstance(node, ast.SubLink) and node.subLinkType == SubLinkType.EXISTS_SUBLINK
        return not exists  # EXISTS (...) is true or false, never null

    def select_results(self, stmt: ast.SelectStmt, ctes: set[str]) -> list[_Target]:
        if stmt.op != SetOperation.SETOP_NONE:
            if stmt.larg is None or stmt.rarg is None:
                return []
            # a column of a set operation may be null if it may be in any branch
            left = self.select_results(stmt.larg, ctes)
            right = self.select_results(stmt.rarg, ctes)
            return [_Branches((a, b)) for a, b in zip(left, right, strict=False)]
        scope = _Scope({}, set())
        _scope(stmt.fromClause, ctes | _cte_names(stmt), scope)
        return [_Plain(target.val, scope) for target in stmt.targetList or ()]

    def target_nullable(self, target: _Target) -> bool:
        if isinstance(target, _Branches):
            return any(self.target_nullable(branch) for branch in target.branches)
        return self.nullable(target.node, target.scope)

    def target_table(self, target: _Target) -> str | None:
        if isinstance(target, _Plain) and isinstance(target.node, ast.ColumnRef):
            return self.column(target.node, target.scope)[0]
        return None


@dataclass(frozen=True, slots=True)
class _Plain:
    node: Any
    scope: _Scope


@dataclass(frozen=True, slots=True)
class _Branches:
    branches: tuple[_Target, ...]


_Target = _Plain | _Branches


def _cte_names(stmt: Any) -> set[str]:
    with_clause = getattr(stmt, "withClause", None)
    if not with_clause:
        return set()
    return {cte.ctename for cte in with_clause.ctes}


def analyze(sql: str, catalog: Catalog) -> Inference:
    """Infer result and parameter nullability of one positional-parameter statement."""
    stmt = pglast.parse_sql(sql)[0].stmt
    analyzer = _Analyzer(catalog)
    ctes = _cte_names(stmt)
    scope = _Scope({}, set())
    targets: list[_Target] = []
    param_verdicts: dict[int, list[bool]] = {}
    special: dict[int, bool] = {}  # id(ParamRef) -> may be None
    written: dict[int, tuple[str, str]] = {}  # $n -> (table, column) it is written into

    if isinstance(stmt, ast.SelectStmt):
        targets = analyzer.select_results(stmt, ctes)
    elif isinstance(stmt, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)) and stmt.relation:
        table = str(stmt.relation.relname)
        alias = str(stmt.relation.alias.aliasname) if stmt.relation.alias else table
        scope.tables[alias] = table
        extra = getattr(stmt, "fromClause", None) or getattr(stmt, "usingClause", None)
        _scope(extra, ctes, scope)
        returning = stmt.returningClause.exprs if stmt.returningClause else ()
        targets = [_Plain(t.val, scope) for t in returning or ()]
        if isinstance(stmt, ast.InsertStmt) and stmt.cols and stmt.selectStmt is not None:
            for row in getattr(stmt.selectStmt, "valuesLists", None) or ():
                for target, value in zip(stmt.cols, row, strict=False):
                    _mark_written(value, catalog, (table, str(target.name)), special, written)
        if isinstance(stmt, ast.UpdateStmt):
            for target in stmt.targetList or ():
                _mark_written(target.val, catalog, (table, str(target.name)), special, written)

    for node in _walk(stmt):
        if isinstance(node, ast.CoalesceExpr):
            for arg in (node.args or ())[:-1]:
                if isinstance(arg, ast.ParamRef):
                    special.setdefault(id(arg), True)
    for node in _walk(stmt):
        if isinstance(node, ast.ParamRef):
            verdict = special.get(id(node), False)
            param_verdicts.setdefault(int(node.number or 0), []).append(verdict)

    has_star = any(
        isinstance(node, ast.A_Star) for t in _plain_targets(targets) for node in _walk(t.node)
    )
    return Inference(
        results=tuple(analyzer.target_nullable(t) for t in targets),
        param_nullable={n: all(v) for n, v in param_verdicts.items()},
        has_star=has_star,
        result_tables=tuple(analyzer.target_table(t) for t in targets),
        param_columns=written,
    )


def _mark_written(
    value: Any,
    catalog: Catalog,
    column: tuple[str, str],
    special: dict[int, bool],
    written: dict[int, tuple[str, str]],
) -> None:
    """A parameter written straight into a column takes that column's nullability."""
    if isinstance(value, ast.ParamRef):
        found = catalog.columns.get(column)
        special[id(value)] = found is not None and not found.not_null
        written[int(value.number or 0)] = column


def _plain_targets(targets: list[_Target]) -> Iterator[_Plain]:
    for target in targets:
        if isinstance(target, _Branches):
            yield from _plain_targets(list(target.branches))
        else:
            yield target
