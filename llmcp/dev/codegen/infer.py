"""Nullability from the statement's syntax tree (pglast), where it is certain.

The rule everywhere: a column is typed non-null only when NULL cannot come
back; when unsure, it is Optional. Each FROM item (table, sub-query, CTE,
``VALUES`` list, set-returning function) is a relation whose columns carry a
nullability; joins, ``WHERE`` and ``GROUP BY`` adjust it, and expressions
combine it by the rules below (see README "SQL and code generation" for the
table).

- A table column keeps its ``NOT NULL`` unless its table sits on the nullable
  side of an outer join (a ``LEFT JOIN`` to the parent key of a ``NOT NULL``
  foreign key is not nullable: the parent row exists) or is grouped under
  ``ROLLUP`` / ``CUBE`` / ``GROUPING SETS`` without being in every grouping set
  (subtotal rows carry NULL there). ``WHERE x IS NOT NULL`` (or a comparison of
  ``x`` that must hold) makes ``x`` non-null.
- Sub-queries in FROM, CTEs (recursive ones to a fixed point), ``LATERAL``
  sub-queries and ``VALUES`` lists carry their columns' nullability; a set
  operation's column may be NULL if it may be in any branch (UNION), in every
  branch (INTERSECT) or in the first (EXCEPT).
- Functions (the reviewed tables of :mod:`llmcp.dev.codegen.functions`):
  ``STRICT_NON_NULL`` return non-null for non-null arguments,
  ``ALWAYS_NON_NULL`` whatever the arguments; any other function (``nullif``,
  ``regexp_match``, ``array_position``, ``array_length``, ...) and ``->``,
  ``->>``, ``#>``, ``#>>`` may return NULL.
- Aggregates: ``count`` never returns NULL; ``min``, ``max``, ``sum``, ...
  over a non-null expression do not in a ``GROUP BY`` query whose groups are
  never empty (no ``FILTER``, no empty grouping set); without ``GROUP BY`` the
  input may be empty, and they return NULL.
- Operators and predicates over non-null operands (comparisons, arithmetic,
  ``BETWEEN``, ``LIKE``, ``IN (list)``, jsonb ``?``, ...) are non-null;
  ``IS [NOT] DISTINCT FROM``, ``IS [NOT] NULL``, ``IS TRUE``, ``EXISTS`` and
  ``GROUPING()`` never return NULL; window functions ``row_number``, ``rank``,
  ... and ``count() OVER`` neither; ``min``, ``sum``, ``first_value``, ...
  ``OVER`` a default frame (which holds the current row) over a non-null
  argument neither. A ``CASE`` branch is judged knowing its ``IS [NOT] NULL``
  guards.

Parameters: one written into a column (INSERT values, INSERT ... SELECT,
UPDATE SET, ON CONFLICT DO UPDATE SET), cast or not, accepts None exactly when
that column is nullable; a non-last argument of ``coalesce``, the operand of
``IS [NOT] NULL`` or ``IS [NOT] DISTINCT FROM``, a use inside the other arms
of ``:p IS NULL OR ...`` (the optional filter) and a value carried into the
select list (``SELECT :p::text AS x``, ``length(:p)``; not a comparison, a
CASE condition or a FILTER) accept None; any other use (WHERE comparisons,
LIMIT, ...) does not. A parameter accepts None only if all its uses do.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pglast
from pglast import ast
from pglast.enums.nodes import JoinType
from pglast.enums.parsenodes import A_Expr_Kind, GroupingSetKind, SetOperation
from pglast.enums.primnodes import BoolExprType, NullTestType, SQLValueFunctionOp, SubLinkType

from llmcp.dev.codegen.describe import Catalog
from llmcp.dev.codegen.functions import (
    AGGREGATES,
    AGGREGATES_NULL_IF_ALL_NULL,
    AGGREGATES_NULL_IF_EMPTY,
    ALWAYS_NON_NULL,
    BUILTIN_SCHEMAS,
    COMPARISONS,
    FIRST_ARGUMENT_NON_NULL,
    STRICT_NON_NULL,
    STRICT_OPERATORS,
    WINDOW_NON_NULL,
)


@dataclass(frozen=True, slots=True)
class Inference:
    results: tuple[bool, ...]  # per result column: may it be NULL?
    param_nullable: dict[int, bool]  # per $n: may it be None?
    has_star: bool
    result_tables: tuple[str | None, ...]  # per result column: its table, if a plain column
    param_columns: dict[int, tuple[str, str]]  # per $n written straight into a column
    unsupported: str | None = None  # the construct that kept results from being matched


@dataclass(frozen=True, slots=True)
class _Col:
    name: str
    nullable: bool
    source: tuple[str, str] | None = None  # (table, column) of a plain table column


@dataclass
class _Rel:
    """A FROM item: its columns, or unknown (then every column may be null)."""

    columns: list[_Col] | None

    def get(self, name: str) -> _Col | None:
        if self.columns is None:
            return None
        found = [c for c in self.columns if c.name == name]
        return found[0] if len(found) == 1 else None

    def has(self, name: str) -> bool:
        return self.columns is None or any(c.name == name for c in self.columns)


@dataclass
class _Scope:
    rels: dict[str, _Rel] = field(default_factory=dict)  # alias -> relation
    nullable: set[str] = field(default_factory=set)  # aliases on an outer join's nullable side
    parent: _Scope | None = None
    not_null: set[tuple[str, str]] = field(default_factory=set)  # (alias, column) by WHERE
    present: set[str] = field(default_factory=set)  # aliases WHERE proves not null-extended
    rolled_up: bool = False  # under grouping sets: columns outside aggregates may be null
    always_grouped: set[tuple[str, str]] = field(default_factory=set)
    groups_non_empty: bool = False  # GROUP BY without an empty grouping set
    ctes: dict[str, _Rel] = field(default_factory=dict)
    windows: dict[str, Any] = field(default_factory=dict)  # WINDOW name -> WindowDef
    known: frozenset[tuple[str, str]] = frozenset()  # non-null here (a CASE branch's guard)

    def cte(self, name: str) -> _Rel | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.ctes:
                return scope.ctes[name]
            scope = scope.parent
        return None


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


def _func_name(node: ast.FuncCall) -> str | None:
    """The function's name when it is a built-in one (unqualified or pg_catalog)."""
    names = [_name(n) for n in node.funcname or ()]
    if len(names) == 2 and names[0] in BUILTIN_SCHEMAS:
        return names[1]
    return names[0] if len(names) == 1 else None


def _unwrap(node: Any) -> Any:
    """Strip casts and COLLATE."""
    while isinstance(node, (ast.TypeCast, ast.CollateClause)):
        node = node.arg
    return node


def _figure_name(node: Any) -> str:
    """The column name PostgreSQL gives an unnamed select-list expression."""
    node = node if not isinstance(node, ast.CollateClause) else node.arg
    if isinstance(node, ast.ColumnRef):
        return _name((node.fields or (None,))[-1]) or "?column?"
    if isinstance(node, ast.FuncCall):
        return _name((node.funcname or (None,))[-1]) or "?column?"
    if isinstance(node, ast.TypeCast):
        inner = _figure_name(node.arg)
        if inner != "?column?":
            return inner
        names = [_name(n) for n in (node.typeName.names if node.typeName else None) or ()]
        return names[-1] if names else "?column?"
    if isinstance(node, ast.CaseExpr):
        return "case"
    if isinstance(node, ast.CoalesceExpr):
        return "coalesce"
    if isinstance(node, ast.MinMaxExpr):
        return "greatest" if node.op == 0 else "least"
    if isinstance(node, ast.A_ArrayExpr):
        return "array"
    if isinstance(node, ast.RowExpr):
        return "row"
    if isinstance(node, ast.GroupingFunc):
        return "grouping"
    if isinstance(node, ast.SubLink):
        if node.subLinkType == SubLinkType.EXISTS_SUBLINK:
            return "exists"
        if node.subLinkType == SubLinkType.ARRAY_SUBLINK:
            return "array"
        if node.subLinkType == SubLinkType.EXPR_SUBLINK:
            targets: Sequence[Any] = getattr(node.subselect, "targetList", None) or ()
            if len(targets) == 1:
                return str(targets[0].name or _figure_name(targets[0].val))
    return "?column?"


class _Analyzer:
    def __init__(self, catalog: Catalog, param_nullable: dict[int, bool]) -> None:
        self.catalog = catalog
        self.param_nullable = param_nullable
        self.unsupported: str | None = None

    # -- relations ------------------------------------------------------------

    def table(self, name: str) -> _Rel:
        columns = self.catalog.table_columns.get(name)
        if columns is None:
            return _Rel(None)
        return _Rel([_Col(c.name, not c.not_null, (c.table, c.name)) for c in columns])

    def from_items(self, items: Iterable[Any], scope: _Scope) -> set[str]:
        """Add ``items`` to ``scope``; returns the aliases they introduce."""
        added: set[str] = set()
        for item in items or ():
            added |= self.from_item(item, scope)
        return added

    def from_item(self, item: Any, scope: _Scope) -> set[str]:
        if isinstance(item, ast.RangeVar):
            relname = str(item.relname)
            rel = scope.cte(relname) if not item.schemaname else None
            if rel is None:
                rel = self.table(relname) if item.schemaname in (None, "public") else _Rel(None)
            alias = str(item.alias.aliasname) if item.alias else relname
            return self.bind(scope, alias, rel, item.alias)
        if isinstance(item, ast.RangeSubselect):
            columns = self.statement_columns(item.subquery, scope)
            rel = _Rel(None if columns is None else [_Col(c.name, c.nullable) for c in columns])
            alias = str(item.alias.aliasname) if item.alias else _anonymous(scope)
            return self.bind(scope, alias, rel, item.alias)
        if isinstance(item, ast.RangeFunction):
            return self.function_item(item, scope)
        if isinstance(item, ast.JoinExpr):
            left = self.from_item(item.larg, scope)
            right = self.from_item(item.rarg, scope)
            if item.jointype == JoinType.JOIN_FULL or (
                item.jointype == JoinType.JOIN_LEFT
                and not self.fk_guarantees(item, left, right, scope)
            ):
                scope.nullable |= right
            if item.jointype in (JoinType.JOIN_RIGHT, JoinType.JOIN_FULL):
                scope.nullable |= left
            added = left | right
            if item.alias is not None:  # (a JOIN b) AS j: columns not tracked
                scope.rels[str(item.alias.aliasname)] = _Rel(None)
                added.add(str(item.alias.aliasname))
            return added
        # anything else (TABLESAMPLE, XMLTABLE, ...): columns not tracked
        alias_node = getattr(item, "alias", None)
        alias = str(alias_node.aliasname) if alias_node is not None else _anonymous(scope)
        scope.rels[alias] = _Rel(None)
        return {alias}

    def bind(self, scope: _Scope, alias: str, rel: _Rel, alias_node: Any) -> set[str]:
        colnames = [_name(n) for n in (alias_node.colnames if alias_node else None) or ()]
        if colnames and rel.columns is not None:
            renamed = [
                _Col(colnames[i], c.nullable, c.source) if i < len(colnames) else c
                for i, c in enumerate(rel.columns)
            ]
            rel = _Rel(renamed)
        scope.rels[alias] = rel
        return {alias}

    def function_item(self, item: ast.RangeFunction, scope: _Scope) -> set[str]:
        alias = None if item.alias is None else str(item.alias.aliasname)
        functions = item.functions or ()
        columns: list[_Col] | None = None
        if len(functions) == 1 and not item.is_rowsfrom:
            call, coldefs = functions[0]
            if isinstance(call, ast.FuncCall) and coldefs is None:
                name = _func_name(call)
                if name in {"generate_series", "generate_subscripts"}:
                    nullable = False  # strict: NULL arguments yield no rows
                elif name == "unnest" and len(call.args or ()) == 1:
                    nullable = True
                else:
                    name = None
                    nullable = True
                if name is not None or alias is not None:
                    colnames = [_name(n) for n in (item.alias.colnames if item.alias else None)
                                or ()]  # fmt: skip
                    column = colnames[0] if colnames else alias or str(name)
                    columns = [_Col(column, nullable)]
                    if item.ordinality:
                        columns.append(_Col(colnames[1] if len(colnames) > 1 else "ordinality",
                                            False))  # fmt: skip
                    if name is None:  # a function returning a row type: columns unknown
                        columns = None
        if alias is None:
            alias = columns[0].name if columns is not None else _anonymous(scope)
        scope.rels[alias] = _Rel(columns)
        return {alias}

    def fk_guarantees(self, join: ast.JoinExpr, left: set[str], right: set[str],
                      scope: _Scope) -> bool:  # fmt: skip
        """A LEFT JOIN of a parent table on ``parent.key = child.fk`` (a NOT NULL foreign
        key of a preserved child): every child row finds its parent."""
        rarg = join.rarg
        if not isinstance(rarg, ast.RangeVar) or len(right) != 1:
            return False
        if rarg.schemaname not in (None, "public") or scope.cte(str(rarg.relname)) is not None:
            return False  # the parent must be the table itself, not a CTE of its rows
        parent_alias = next(iter(right))
        parent = scope.rels[parent_alias]
        if parent.columns is None or not parent.columns or parent.columns[0].source is None:
            return False
        parent_table = parent.columns[0].source[0]
        pairs: dict[str, dict[str, str]] = {}  # child alias -> parent column -> child column
        for conjunct in _conjuncts(join.quals):
            if not (isinstance(conjunct, ast.A_Expr) and conjunct.kind == A_Expr_Kind.AEXPR_OP
                    and [_name(n) for n in conjunct.name or ()] == ["="]):  # fmt: skip
                return False
            sides = [_qualified(conjunct.lexpr), _qualified(conjunct.rexpr)]
            if None in sides:
                return False
            (a_alias, a_col), (b_alias, b_col) = sides  # type: ignore[misc]
            if b_alias == parent_alias:
                (a_alias, a_col), (b_alias, b_col) = (b_alias, b_col), (a_alias, a_col)
            if a_alias != parent_alias or b_alias not in left or b_alias in scope.nullable:
                return False
            pairs.setdefault(b_alias, {})[a_col] = b_col
        if len(pairs) != 1:
            return False
        ((child_alias, mapping),) = pairs.items()
        child = scope.rels.get(child_alias)
        if child is None or child.columns is None:
            return False
        for fk in self.catalog.foreign_keys:
            if fk.parent_table != parent_table or set(fk.parent_columns) != set(mapping):
                continue
            child_cols = [child.get(mapping[p]) for p in fk.parent_columns]
            if all(
                c is not None and c.source == (fk.child_table, fk_col) and not c.nullable
                for c, fk_col in zip(child_cols, fk.child_columns, strict=True)
            ):
                return True
        return False

    # -- statements -----------------------------------------------------------

    def statement_columns(self, stmt: Any, outer: _Scope | None) -> list[_Col] | None:
        """The result columns of a statement (None when they cannot be worked out)."""
        if isinstance(stmt, ast.SelectStmt):
            return self.select_columns(stmt, outer)
        if isinstance(stmt, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)):
            scope = _Scope(parent=outer)
            self.with_clause(stmt, scope)
            self.dml_scope(stmt, scope)
            returning = stmt.returningClause.exprs if stmt.returningClause else ()
            return self.targets(returning or (), scope)
        return None

    def with_clause(self, stmt: Any, scope: _Scope) -> None:
        with_clause = getattr(stmt, "withClause", None)
        if not with_clause:
            return
        for cte in with_clause.ctes or ():
            name = str(cte.ctename)
            colnames = [_name(n) for n in cte.aliascolnames or ()]
            query = cte.ctequery
            recursive = bool(with_clause.recursive) and any(
                isinstance(n, ast.RangeVar) and n.relname == name and not n.schemaname
                for n in _walk(query)
            )
            if recursive:
                self.recursive_cte(name, colnames, query, scope)
                continue
            columns = self.statement_columns(query, scope)
            if columns is not None and not isinstance(query, ast.SelectStmt):
                # rows written by this statement are not visible to the rest of it (one
                # snapshot), so their columns are no table's rows (no foreign-key facts)
                columns = [_Col(c.name, c.nullable) for c in columns]
            scope.ctes[name] = _Rel(_renamed(columns, colnames))

    def recursive_cte(self, name: str, colnames: list[str], query: Any, scope: _Scope) -> None:
        if not (isinstance(query, ast.SelectStmt) and query.op == SetOperation.SETOP_UNION):
            scope.ctes[name] = _Rel(None)
            return
        scope.ctes[name] = _Rel(_renamed(self.statement_columns(query.larg, scope), colnames))
        width = len(scope.ctes[name].columns or ())
        for _ in range(width + 2):  # nullability only grows: a fixed point within width + 1
            before = scope.ctes[name].columns
            columns = self.statement_columns(query, scope)
            scope.ctes[name] = _Rel(_renamed(columns, colnames))
            if scope.ctes[name].columns == before:
                return
        scope.ctes[name] = _Rel(None)

    def dml_scope(self, stmt: Any, scope: _Scope) -> str:
        table = str(stmt.relation.relname)
        alias = str(stmt.relation.alias.aliasname) if stmt.relation.alias else table
        scope.rels[alias] = self.table(table)
        extra = getattr(stmt, "fromClause", None) or getattr(stmt, "usingClause", None)
        self.from_items(extra or (), scope)
        return table

    def select_columns(self, stmt: ast.SelectStmt, outer: _Scope | None) -> list[_Col] | None:
        scope = _Scope(parent=outer)
        self.with_clause(stmt, scope)
        if stmt.op != SetOperation.SETOP_NONE:
            left = self.statement_columns(stmt.larg, scope)
            right = self.statement_columns(stmt.rarg, scope)
            if left is None or right is None or len(left) != len(right):
                return None
            if stmt.op == SetOperation.SETOP_UNION:
                combine = [a.nullable or b.nullable for a, b in zip(left, right, strict=True)]
            elif stmt.op == SetOperation.SETOP_INTERSECT:
                combine = [a.nullable and b.nullable for a, b in zip(left, right, strict=True)]
            else:  # EXCEPT: every row comes from the left
                combine = [a.nullable for a in left]
            return [_Col(a.name, n) for a, n in zip(left, combine, strict=True)]
        if stmt.valuesLists:
            rows = [list(row) for row in stmt.valuesLists]
            width = len(rows[0])
            if any(len(row) != width for row in rows):
                return None
            return [
                _Col(f"column{i + 1}", any(self.nullable(row[i], scope) for row in rows))
                for i in range(width)
            ]
        self.from_items(stmt.fromClause or (), scope)
        scope.windows = {str(w.name): w for w in stmt.windowClause or () if w.name}
        self.where_facts(stmt.whereClause, scope)
        self.grouping(stmt, scope)
        return self.targets(stmt.targetList or (), scope)

    def targets(self, targets: Sequence[Any], scope: _Scope) -> list[_Col] | None:
        columns: list[_Col] = []
        for target in targets:
            val = target.val
            if isinstance(val, ast.ColumnRef) and isinstance((val.fields or (None,))[-1],
                                                              ast.A_Star):  # fmt: skip
                expanded = self.star(val, scope)
                if expanded is None:
                    return None
                columns += expanded
                continue
            name = str(target.name) if target.name else _figure_name(val)
            source = self.column(val, scope)[0] if isinstance(val, ast.ColumnRef) else None
            columns.append(_Col(name, self.nullable(val, scope), source))
        return columns

    def star(self, ref: ast.ColumnRef, scope: _Scope) -> list[_Col] | None:
        fields = [_name(f) for f in ref.fields or ()][:-1]
        aliases = fields[-1:] if fields else list(scope.rels)
        columns: list[_Col] = []
        for alias in aliases:
            rel = scope.rels.get(alias)
            if rel is None or rel.columns is None:
                return None
            nullable_side = alias in scope.nullable and alias not in scope.present
            columns += [_Col(c.name, c.nullable or nullable_side or scope.rolled_up, c.source)
                        for c in rel.columns]  # fmt: skip
        return columns

    def where_facts(self, where: Any, scope: _Scope) -> None:
        """Columns that ``WHERE`` proves non-null: ``x IS NOT NULL``, or a comparison of
        ``x`` that must be true (both conjuncts of a top-level AND)."""
        for conjunct in _conjuncts(where):
            refs: list[Any] = []
            if isinstance(conjunct, ast.NullTest) and conjunct.nulltesttype == \
                    NullTestType.IS_NOT_NULL:  # fmt: skip
                refs = [conjunct.arg]
            elif isinstance(conjunct, ast.A_Expr) and conjunct.kind in (
                A_Expr_Kind.AEXPR_OP, A_Expr_Kind.AEXPR_LIKE, A_Expr_Kind.AEXPR_ILIKE,
                A_Expr_Kind.AEXPR_IN, A_Expr_Kind.AEXPR_BETWEEN,
            ):  # fmt: skip
                operator = [_name(n) for n in conjunct.name or ()]
                if conjunct.kind != A_Expr_Kind.AEXPR_OP or (
                    len(operator) == 1 and operator[0] in COMPARISONS
                ):
                    refs = [conjunct.lexpr, conjunct.rexpr]
            for ref in refs:
                ref = _unwrap(ref)
                if isinstance(ref, ast.ColumnRef):
                    alias = self.resolve_alias(ref, scope)
                    if alias is not None:  # (a null-extended row has NULL there too)
                        scope.not_null.add((alias, _name((ref.fields or (None,))[-1])))
                        scope.present.add(alias)

    def grouping(self, stmt: ast.SelectStmt, scope: _Scope) -> None:
        clause = list(stmt.groupClause or ())
        if not clause:
            return
        sets = _grouping_sets(clause)
        if sets is None:  # too many to expand: assume the worst
            scope.rolled_up = True
            return
        scope.groups_non_empty = all(sets)
        if any(isinstance(item, ast.GroupingSet) for item in clause):
            scope.rolled_up = True
            keys = [
                {k for k in (self.column_key(e, scope) for e in grouping_set) if k is not None}
                for grouping_set in sets
            ]
            scope.always_grouped = set.intersection(*keys) if keys else set()

    # -- columns --------------------------------------------------------------

    def resolve_alias(self, ref: ast.ColumnRef, scope: _Scope) -> str | None:
        """The alias, in ``scope`` itself, that a column reference resolves to."""
        fields = [f for f in ref.fields or ()]
        if not all(isinstance(f, ast.String) for f in fields):
            return None
        names = [_name(f) for f in fields]
        if len(names) == 2:
            return names[0] if names[0] in scope.rels else None
        if len(names) == 1:
            candidates = [a for a, rel in scope.rels.items() if rel.has(names[0])]
            return candidates[0] if len(candidates) == 1 else None
        return None

    def column_key(self, node: Any, scope: _Scope) -> tuple[str, str] | None:
        if isinstance(node, ast.ColumnRef):
            alias = self.resolve_alias(node, scope)
            if alias is not None:
                return alias, _name((node.fields or (None,))[-1])
        return None

    def column(self, ref: ast.ColumnRef, scope: _Scope, *, in_aggregate: bool = False
               ) -> tuple[tuple[str, str] | None, bool]:  # fmt: skip
        """((table, column) of a plain table column, may be null) of a column reference."""
        current: _Scope | None = scope
        names = [_name(f) for f in ref.fields or ()]
        if not names or not all(names):
            return None, True
        while current is not None:
            alias = self.resolve_alias(ref, current)
            if alias is None:
                if len(names) == 2 and names[0] in current.rels:
                    return None, True
                if len(names) == 1 and any(r.has(names[0]) for r in current.rels.values()):
                    return None, True  # ambiguous here
                current = current.parent
                continue
            col = current.rels[alias].get(names[-1])
            if col is None:
                return None, True
            key = (alias, names[-1])
            extended = alias in current.nullable and alias not in current.present
            nullable = (col.nullable or extended) and key not in current.not_null
            if current.rolled_up and not (in_aggregate and current is scope):
                nullable = nullable or key not in current.always_grouped
            return col.source, nullable and key not in current.known
        return None, True

    # -- expressions ----------------------------------------------------------

    def nullable(self, node: Any, scope: _Scope, *, in_aggregate: bool = False) -> bool:
        def sub(n: Any) -> bool:
            return self.nullable(n, scope, in_aggregate=in_aggregate)

        if isinstance(node, ast.ColumnRef):
            return self.column(node, scope, in_aggregate=in_aggregate)[1]
        if isinstance(node, ast.A_Const):
            return bool(node.isnull)
        if isinstance(node, ast.ParamRef):
            return self.param_nullable.get(int(node.number or 0), True)
        if isinstance(node, (ast.TypeCast, ast.CollateClause, ast.NamedArgExpr)):
            return sub(node.arg)
        if isinstance(node, (ast.CoalesceExpr, ast.MinMaxExpr)):
            return all(sub(arg) for arg in node.args or ())
        if isinstance(node, ast.FuncCall):
            return self.function(node, scope, in_aggregate=in_aggregate)
        if isinstance(node, ast.SQLValueFunction):
            return node.op == SQLValueFunctionOp.SVFOP_CURRENT_SCHEMA
        if isinstance(node, (ast.NullTest, ast.BooleanTest, ast.GroupingFunc, ast.A_ArrayExpr)):
            return False
        if isinstance(node, ast.RowExpr):
            return any(sub(arg) for arg in node.args or ())
        if isinstance(node, ast.BoolExpr):
            return any(sub(arg) for arg in node.args or ())
        if isinstance(node, ast.A_Expr):
            return self.operator(node, sub)
        if isinstance(node, ast.CaseExpr):
            return self.case(node, scope, in_aggregate=in_aggregate)
        if isinstance(node, ast.SubLink):
            return self.sublink(node, scope)
        return True

    def operator(self, node: ast.A_Expr, sub: Any) -> bool:
        kind = node.kind
        if kind in (A_Expr_Kind.AEXPR_DISTINCT, A_Expr_Kind.AEXPR_NOT_DISTINCT):
            return False
        operands = [node.lexpr] if node.lexpr is not None else []
        if isinstance(node.rexpr, (list, tuple)):
            operands += list(node.rexpr)
        elif node.rexpr is not None:
            operands.append(node.rexpr)
        names = [_name(n) for n in node.name or ()]
        if kind == A_Expr_Kind.AEXPR_OP:
            if len(names) != 1 or names[0] not in STRICT_OPERATORS:
                return True
        elif kind == A_Expr_Kind.AEXPR_SIMILAR:
            rexpr = node.rexpr
            if isinstance(rexpr, ast.FuncCall) and _func_name(rexpr) == "similar_to_escape":
                operands = [node.lexpr, *(rexpr.args or ())]  # type: ignore[list-item]
            else:
                return True
        elif kind not in (
            A_Expr_Kind.AEXPR_LIKE, A_Expr_Kind.AEXPR_ILIKE, A_Expr_Kind.AEXPR_IN,
            A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_NOT_BETWEEN,
            A_Expr_Kind.AEXPR_BETWEEN_SYM, A_Expr_Kind.AEXPR_NOT_BETWEEN_SYM,
        ):  # fmt: skip
            return True  # NULLIF, = ANY (array), ...
        return any(sub(n) for n in operands)

    def function(self, node: ast.FuncCall, scope: _Scope, *, in_aggregate: bool) -> bool:
        name = _func_name(node)
        args = list(node.args or ())
        if name is None:
            return True
        if node.over is not None:  # a window function
            if name == "count":
                return False
            if name in WINDOW_NON_NULL:  # ntile(n): NULL for a NULL n
                return any(self.nullable(a, scope) for a in args)
            if node.agg_filter is None and self.frame_holds_current_row(node.over, scope):
                if name in AGGREGATES_NULL_IF_EMPTY:
                    return False
                if name in AGGREGATES_NULL_IF_ALL_NULL | {"first_value", "last_value"}:
                    return any(self.nullable(a, scope) for a in args)
            return True  # lag, lead, nth_value, an explicit frame (may be empty), ...
        if name in AGGREGATES and not in_aggregate:
            if name == "count":
                return False
            if not scope.groups_non_empty or node.agg_filter is not None:
                return True  # an empty group (or input): NULL
            if name in AGGREGATES_NULL_IF_EMPTY:
                return False
            if name in AGGREGATES_NULL_IF_ALL_NULL:
                return any(self.nullable(a, scope, in_aggregate=True) for a in args)
            return True

        def sub(n: Any) -> bool:
            return self.nullable(n, scope, in_aggregate=in_aggregate)

        if name in ALWAYS_NON_NULL:
            return False
        if name in FIRST_ARGUMENT_NON_NULL:
            return not args or sub(args[0])
        if name == "substring":  # substring(x FROM pattern) returns NULL when nothing matches
            numeric = all(
                isinstance(a, ast.A_Const) and isinstance(a.val, ast.Integer) for a in args[1:]
            )
            return not numeric or any(sub(a) for a in args)
        if name in STRICT_NON_NULL:
            return any(sub(a) for a in args)
        return True

    def frame_holds_current_row(self, window: Any, scope: _Scope) -> bool:
        """The default frame (no frame clause anywhere in the window's definition) always
        holds the current row, so it is never empty."""
        seen = 0
        while window is not None and seen < 8:
            if int(window.frameOptions or 0) & 1:  # FRAMEOPTION_NONDEFAULT
                return False
            name = window.refname or (window.name if window.partitionClause is None
                                      and window.orderClause is None else None)  # fmt: skip
            if name is None:
                return True
            window = scope.windows.get(str(name))
            seen += 1
        return False

    def case(self, node: ast.CaseExpr, scope: _Scope, *, in_aggregate: bool) -> bool:
        """CASE: may any branch be null? A branch is judged knowing its guard: after
        ``WHEN x IS NULL THEN ...``, the later branches see ``x`` non-null; under
        ``WHEN x IS NOT NULL THEN ...``, that branch does."""
        if node.defresult is None:
            return True
        later: set[tuple[str, str]] = set()  # non-null in the branches after this WHEN
        for when in node.args or ():
            here = set(later)
            if node.arg is None:
                test = _unwrap(when.expr)
                if isinstance(test, ast.NullTest) and isinstance(test.arg, ast.ColumnRef):
                    key = self.guard_key(test.arg, scope)
                    if key is not None and test.nulltesttype == NullTestType.IS_NULL:
                        later.add(key)
                    elif key is not None:
                        here.add(key)
            guarded = replace(scope, known=scope.known | here)
            if self.nullable(when.result, guarded, in_aggregate=in_aggregate):
                return True
        guarded = replace(scope, known=scope.known | later)
        return self.nullable(node.defresult, guarded, in_aggregate=in_aggregate)

    def guard_key(self, ref: ast.ColumnRef, scope: _Scope) -> tuple[str, str] | None:
        alias = self.resolve_alias(ref, scope)
        return None if alias is None else (alias, _name((ref.fields or (None,))[-1]))

    def sublink(self, node: ast.SubLink, scope: _Scope) -> bool:
        kind = node.subLinkType
        if kind in (SubLinkType.EXISTS_SUBLINK, SubLinkType.ARRAY_SUBLINK):
            return False
        if kind != SubLinkType.EXPR_SUBLINK:
            return True
        sub = node.subselect
        if not (isinstance(sub, ast.SelectStmt) and sub.op == SetOperation.SETOP_NONE
                and not sub.groupClause and not sub.havingClause and sub.limitCount is None
                and sub.limitOffset is None and not sub.valuesLists and not sub.withClause
                and len(sub.targetList or ()) == 1):  # fmt: skip
            return True
        target = (sub.targetList or (None,))[0].val
        if not _is_plain_aggregate(target):
            return True  # may return no row
        columns = self.select_columns(sub, scope)
        return columns is None or columns[0].nullable


def _anonymous(scope: _Scope) -> str:
    """An alias no SQL name can reach, for a FROM item without one."""
    return f"\0{len(scope.rels)}"


def _is_plain_aggregate(node: Any) -> bool:
    """A select-list item that makes its query return exactly one row (an aggregate at
    the top, possibly under coalesce or a cast)."""
    node = _unwrap(node)
    if isinstance(node, ast.CoalesceExpr):
        return any(_is_plain_aggregate(a) for a in node.args or ())
    return isinstance(node, ast.FuncCall) and node.over is None and _func_name(node) in AGGREGATES


def _renamed(columns: list[_Col] | None, names: list[str]) -> list[_Col] | None:
    if columns is None or not names:
        return columns
    return [_Col(names[i], c.nullable) if i < len(names) else c for i, c in enumerate(columns)]


def _conjuncts(node: Any) -> Iterator[Any]:
    if isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.AND_EXPR:
        for arg in node.args or ():
            yield from _conjuncts(arg)
    elif node is not None:
        yield node


def _qualified(node: Any) -> tuple[str, str] | None:
    if isinstance(node, ast.ColumnRef):
        names = [_name(f) for f in node.fields or ()]
        if len(names) == 2 and all(names):
            return names[0], names[1]
    return None


def _grouping_sets(clause: list[Any], limit: int = 256) -> list[list[Any]] | None:
    """GROUP BY as a list of grouping sets (each a list of expressions); None if too many."""

    def sets_of(item: Any) -> list[list[Any]] | None:
        if isinstance(item, ast.GroupingSet):
            content = list(item.content or ())
            if item.kind == GroupingSetKind.GROUPING_SET_EMPTY:
                return [[]]
            if item.kind == GroupingSetKind.GROUPING_SET_SIMPLE:
                return [[e for c in content for e in _elements(c)]]
            if item.kind == GroupingSetKind.GROUPING_SET_ROLLUP:
                elements = [_elements(c) for c in content]
                return [[e for part in elements[:n] for e in part]
                        for n in range(len(elements), -1, -1)]  # fmt: skip
            if item.kind == GroupingSetKind.GROUPING_SET_CUBE:
                elements = [_elements(c) for c in content]
                if len(elements) > 8:
                    return None
                return [[e for keep, part in zip(mask, elements, strict=True) if keep
                         for e in part]
                        for mask in itertools.product((True, False), repeat=len(elements))]  # fmt: skip
            result: list[list[Any]] = []  # GROUPING SETS (...)
            for c in content:
                inner = sets_of(c) if isinstance(c, ast.GroupingSet) else [_elements(c)]
                if inner is None:
                    return None
                result += inner
            return result
        return [[item]]

    combined: list[list[Any]] = [[]]
    for item in clause:
        sets = sets_of(item)
        if sets is None or len(combined) * len(sets) > limit:
            return None
        combined = [a + b for a in combined for b in sets]
    return combined


def _elements(node: Any) -> list[Any]:
    """A grouping element: ``(a, b)`` (a row) is several expressions, others one."""
    if isinstance(node, ast.RowExpr):
        return list(node.args or ())
    return [node]


# -- parameters ----------------------------------------------------------------


def _param_number(node: Any) -> int | None:
    node = _unwrap(node)
    return int(node.number or 0) if isinstance(node, ast.ParamRef) else None


def _param_refs(node: Any) -> Iterator[ast.ParamRef]:
    for n in _walk(node):
        if isinstance(n, ast.ParamRef):
            yield n


_CARRYING_OPERATORS = frozenset({"+", "-", "*", "/", "%", "^", "||"})


def _carried(node: Any) -> Iterator[ast.ParamRef]:
    """The parameters whose value a select-list expression carries into the result (a
    None there is a NULL in the result), not those it tests (comparisons, CASE
    conditions, FILTER, sub-queries, aggregates)."""
    if isinstance(node, ast.ParamRef):
        yield node
    elif isinstance(node, (ast.TypeCast, ast.CollateClause, ast.NamedArgExpr)):
        yield from _carried(node.arg)
    elif isinstance(node, (ast.CoalesceExpr, ast.MinMaxExpr, ast.A_ArrayExpr, ast.RowExpr)):
        for arg in (node.elements if isinstance(node, ast.A_ArrayExpr) else node.args) or ():
            yield from _carried(arg)
    elif isinstance(node, ast.CaseExpr):
        for branch in [w.result for w in node.args or ()] + [node.defresult]:
            yield from _carried(branch)
    elif isinstance(node, ast.FuncCall):
        name = _func_name(node)
        if node.over is None and node.agg_filter is None and name not in AGGREGATES:
            for arg in node.args or ():
                yield from _carried(arg)
    elif (
        isinstance(node, ast.A_Expr)
        and node.kind == A_Expr_Kind.AEXPR_OP
        and [_name(n) for n in node.name or ()] in [[o] for o in _CARRYING_OPERATORS]
    ):
        for operand in (node.lexpr, node.rexpr):
            yield from _carried(operand)


class _Params:
    """Per ParamRef node: may it be None? (unmarked uses do not accept None)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.verdict: dict[int, bool] = {}  # id(ParamRef) -> accepts None
        self.written: dict[int, tuple[str, str]] = {}  # $n -> (table, column)

    def mark(self, node: Any, accepts: bool) -> None:
        target = _unwrap(node)
        if isinstance(target, ast.ParamRef):
            self.verdict.setdefault(id(target), accepts)

    def write(self, value: Any, column: tuple[str, str]) -> None:
        """A parameter written straight into a column takes that column's nullability."""
        target = _unwrap(value)
        if isinstance(target, ast.ParamRef):
            found = self.catalog.columns.get(column)
            self.verdict[id(target)] = found is not None and not found.not_null
            self.written[int(target.number or 0)] = column

    def statement(self, stmt: Any) -> None:
        for node in _walk(stmt):  # the statement and its data-modifying CTEs
            if isinstance(node, (ast.InsertStmt, ast.UpdateStmt)):
                self.writes(node)
        if isinstance(stmt, ast.SelectStmt) and stmt.op == SetOperation.SETOP_NONE:
            for target in stmt.targetList or ():  # a value only selected: passed through
                for ref in _carried(target.val):
                    self.verdict.setdefault(id(ref), True)
        for node in _walk(stmt):
            if isinstance(node, ast.CoalesceExpr):
                for arg in (node.args or ())[:-1]:
                    self.mark(arg, True)
            elif isinstance(node, ast.NullTest):
                self.mark(node.arg, True)
            elif isinstance(node, ast.A_Expr) and node.kind in (
                A_Expr_Kind.AEXPR_DISTINCT, A_Expr_Kind.AEXPR_NOT_DISTINCT
            ):  # fmt: skip
                self.mark(node.lexpr, True)
                self.mark(node.rexpr, True)
            elif isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.OR_EXPR:
                self.optional_filter(node)

    def writes(self, stmt: ast.InsertStmt | ast.UpdateStmt) -> None:
        """Parameters written into columns by an INSERT or UPDATE."""
        if isinstance(stmt, ast.InsertStmt) and stmt.relation is not None:
            table = str(stmt.relation.relname)
            if stmt.cols:
                names = [str(c.name) for c in stmt.cols]
            else:
                names = [c.name for c in self.catalog.table_columns.get(table, ())]
            select = stmt.selectStmt
            if isinstance(select, ast.SelectStmt) and select.op == SetOperation.SETOP_NONE:
                rows = [list(r) for r in select.valuesLists or ()]
                if not rows and select.targetList:
                    rows = [[t.val for t in select.targetList]]
                for row in rows:
                    for name, value in zip(names, row, strict=False):
                        self.write(value, (table, name))
            conflict = stmt.onConflictClause
            if conflict is not None:
                for target in conflict.targetList or ():
                    self.write(target.val, (table, str(target.name)))
        if isinstance(stmt, ast.UpdateStmt) and stmt.relation is not None:
            table = str(stmt.relation.relname)
            for target in stmt.targetList or ():
                if target.name:
                    self.write(target.val, (table, str(target.name)))

    def optional_filter(self, node: ast.BoolExpr) -> None:
        """``:p IS NULL OR <uses of :p>``: None selects the first arm, so the other
        arms' uses of ``:p`` accept it."""
        args = list(node.args or ())
        tested = {
            n
            for arg in args
            if isinstance(arg, ast.NullTest) and arg.nulltesttype == NullTestType.IS_NULL
            for n in [_param_number(arg.arg)]
            if n is not None
        }
        for arg in args:
            for ref in _param_refs(arg):
                if int(ref.number or 0) in tested:
                    self.verdict.setdefault(id(ref), True)

    def result(self, stmt: Any) -> dict[int, bool]:
        verdicts: dict[int, list[bool]] = {}
        for ref in _param_refs(stmt):
            verdicts.setdefault(int(ref.number or 0), []).append(self.verdict.get(id(ref), False))
        return {n: all(v) for n, v in verdicts.items()}


_STATEMENT_NAMES = {
    "MergeStmt": "a MERGE statement",
    "CallStmt": "a CALL statement",
    "ExplainStmt": "an EXPLAIN statement",
    "VariableShowStmt": "a SHOW statement",
    "CopyStmt": "a COPY statement",
    "FetchStmt": "a FETCH statement",
}


def analyze(sql: str, catalog: Catalog, nullable_params: Iterable[int] = ()) -> Inference:
    """Infer result and parameter nullability of one positional-parameter statement.

    ``nullable_params``: parameter numbers annotated ``@nullable`` (their values in
    results may then be NULL)."""
    stmt = pglast.parse_sql(sql)[0].stmt
    params = _Params(catalog)
    params.statement(stmt)
    param_nullable = params.result(stmt)
    analyzer = _Analyzer(catalog, {**param_nullable, **dict.fromkeys(nullable_params, True)})
    columns: list[_Col] | None
    unsupported = None
    if isinstance(stmt, (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)):
        columns = analyzer.statement_columns(stmt, None)
        if columns is None:
            unsupported = _unsupported(stmt)
    else:
        columns = None
        unsupported = _STATEMENT_NAMES.get(type(stmt).__name__, f"a {type(stmt).__name__}")
    top_targets = _top_targets(stmt)
    has_star = any(isinstance(node, ast.A_Star) for t in top_targets for node in _walk(t))
    return Inference(
        results=tuple(c.nullable for c in columns or ()),
        param_nullable=param_nullable,
        has_star=has_star,
        result_tables=tuple(c.source[0] if c.source else None for c in columns or ()),
        param_columns=params.written,
        unsupported=unsupported,
    )


def _top_targets(stmt: Any) -> list[Any]:
    """The select-list (or RETURNING) expressions of a statement, every branch of a set
    operation included."""
    if isinstance(stmt, ast.SelectStmt):
        if stmt.op != SetOperation.SETOP_NONE:
            return _top_targets(stmt.larg) + _top_targets(stmt.rarg)
        return [t.val for t in stmt.targetList or ()]
    returning = getattr(stmt, "returningClause", None)
    return [t.val for t in (returning.exprs if returning else None) or ()]


def _unsupported(stmt: Any) -> str:
    """Name the construct whose columns could not be worked out."""
    for node in _walk(stmt):
        if isinstance(node, ast.SelectStmt) and node.valuesLists:
            widths = {len(row) for row in node.valuesLists}
            if len(widths) > 1:
                return "a VALUES list whose rows differ in length"
        if isinstance(node, ast.SelectStmt) and node.op != SetOperation.SETOP_NONE:
            return "a set operation (UNION / INTERSECT / EXCEPT) with a branch not analysed"
        if isinstance(node, ast.ColumnRef) and isinstance((node.fields or (None,))[-1],
                                                          ast.A_Star):  # fmt: skip
            return "a '*' over a relation whose columns are not known (a function's rows?)"
    return f"a {type(stmt).__name__} whose result columns are not analysed"
