"""Turn described queries into Python source: one models module, one module per SQL file."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field, replace

from aiosql.types import SQLOperationType as Op

import llmcp
from llmcp.dev.codegen.config import CodegenConfig
from llmcp.dev.codegen.describe import Catalog, Description, PgType
from llmcp.dev.codegen.infer import Inference
from llmcp.dev.codegen.loader import QuerySpec

_SCALARS = {
    "uuid": "uuid.UUID",
    "text": "str",
    "varchar": "str",
    "bpchar": "str",
    "name": "str",
    "citext": "str",
    "int2": "int",
    "int4": "int",
    "int8": "int",
    "oid": "int",
    "bool": "bool",
    "numeric": "decimal.Decimal",
    "float4": "float",
    "float8": "float",
    "timestamptz": "datetime.datetime",
    "timestamp": "datetime.datetime",
    "date": "datetime.date",
    "time": "datetime.time",
    "interval": "datetime.timedelta",
    # as text (llmcp.adapter reads them so): JSON has no address type, and
    # msgspec none either, so a row with an ipaddress object would not encode
    "inet": "str",
    "cidr": "str",
    "bytea": "bytes",
}
_JSON = ("json", "jsonb")
_OPERATION_DOC = {
    Op.SELECT: "a list of rows",
    Op.SELECT_ONE: "one row or None",
    Op.SELECT_VALUE: "one value or None",
    Op.INSERT_RETURNING: "the inserted row",
    Op.INSERT_UPDATE_DELETE: "the number of rows affected",
    Op.INSERT_UPDATE_DELETE_MANY: "the number of rows affected, over all parameter rows",
}


def pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name) if part)


def singular(table: str) -> str:
    if table.endswith("ies"):
        return table[:-3] + "y"
    if table.endswith("ses") or table.endswith("xes"):
        return table[:-2]
    if table.endswith("s"):
        return table[:-1]
    return table


def enum_member(label: str) -> str:
    name = re.sub(r"[^0-9A-Za-z]+", "_", label).strip("_").upper() or "EMPTY"
    return f"_{name}" if name[0].isdigit() else name


@dataclass(frozen=True, slots=True)
class StructField:
    name: str
    annotation: str
    convert_to: str | None  # a declared jsonb type to convert the decoded value into


@dataclass(frozen=True, slots=True)
class Struct:
    name: str
    doc: str
    fields: tuple[StructField, ...]

    @property
    def maker(self) -> str:
        """What builds one row from a result tuple: the class, or a generated function."""
        if any(f.convert_to for f in self.fields):
            return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower() + "_from_row"
        return self.name


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    annotation: str
    json: bool


@dataclass(frozen=True, slots=True)
class Method:
    spec: QuerySpec
    params: tuple[Param, ...]
    returns: str
    struct: Struct | None
    params_struct: Struct | None = None  # '*!': the type of one parameter row


@dataclass
class Generated:
    """Everything rendered, keyed by file name inside the output package."""

    files: dict[str, str] = field(default_factory=dict)


class Renderer:
    def __init__(self, config: CodegenConfig, catalog: Catalog) -> None:
        self.config = config
        self.catalog = catalog
        self.structs: dict[str, Struct] = {}
        self.struct_sources: dict[str, str] = {}
        self.used_imports: set[str] = set()

    # -- types ----------------------------------------------------------------

    def python_type(
        self, oid: int, spec: QuerySpec, what: str, column: tuple[str, str] | None
    ) -> str:
        pg = self.catalog.types.get(oid)
        if pg is None:
            raise spec.fail(f"{what}: unknown type oid {oid}")
        return self._python_type(pg, spec, what, column)

    def _python_type(
        self, pg: PgType, spec: QuerySpec, what: str, column: tuple[str, str] | None
    ) -> str:
        if pg.kind == "d":
            return self.python_type(pg.base_oid, spec, what, column)
        if pg.kind == "e":
            return f"models.{pascal(pg.name)}"
        if pg.element_oid and pg.name.startswith("_"):
            inner = self.python_type(pg.element_oid, spec, what, None)
            return f"builtins.list[{inner} | None]"
        if pg.name in _JSON:
            declared = self.config.jsonb.get(f"{column[0]}.{column[1]}") if column else None
            return f"models.{declared.rpartition(':')[2]}" if declared else "models.JsonValue"
        if pg.name in _SCALARS:
            return _SCALARS[pg.name]
        raise spec.fail(f"{what}: PostgreSQL type {pg.name!r} has no Python mapping")

    # -- queries --------------------------------------------------------------

    def method(self, spec: QuerySpec, desc: Description, inference: Inference) -> Method:
        if inference.has_star:
            raise spec.fail("SELECT * is not allowed: list the columns")
        if len(desc.param_oids) != len(spec.params):
            raise spec.fail(
                f"expected {len(spec.params)} parameters, PostgreSQL saw {len(desc.param_oids)}"
            )
        params = []
        for name in spec.declared:
            number = spec.params.index(name) + 1
            oid = desc.param_oids[number - 1]
            column = inference.param_columns.get(number)
            annotation = self.python_type(oid, spec, f"parameter :{name}", column)
            nullable = inference.param_nullable.get(number, False)
            if name in spec.annotations.nullable_params:
                nullable = True
            if name in spec.annotations.notnull_params:
                nullable = False
            pg = self.catalog.types[oid]
            json = pg.name in _JSON
            if name in spec.annotations.jsonnull_params:
                if not json:
                    raise spec.fail(f"@jsonnull :{name}: the parameter is not json or jsonb")
                annotation += " | JsonNull"
            params.append(Param(name, f"{annotation} | None" if nullable else annotation, json))

        if spec.operation == Op.INSERT_UPDATE_DELETE_MANY:
            if desc.fields:
                raise spec.fail("a '*!' query cannot return rows (executemany): drop RETURNING")
            return Method(spec, tuple(params), "int", None, self.params_struct(spec, params))

        if spec.operation == Op.SELECT_VALUE:  # a scalar: no struct
            fields = self.result_fields(spec, desc, inference) if desc.fields else []
            if len(fields) != 1:
                raise spec.fail("a '$' query must return exactly one column")
            annotation = fields[0].annotation
            returns = annotation if annotation.endswith("| None") else f"{annotation} | None"
            return Method(spec, tuple(params), returns, None)
        struct = self.result_struct(spec, desc, inference) if desc.fields else None
        returns = self.return_type(spec, desc, inference, struct)
        return Method(spec, tuple(params), returns, struct)

    def result_fields(
        self, spec: QuerySpec, desc: Description, inference: Inference
    ) -> list[StructField]:
        if len(inference.results) != len(desc.fields):
            construct = inference.unsupported or "a statement whose result columns are not analysed"
            raise spec.fail(
                f"codegen cannot analyse the result columns of {construct}; "
                "rewrite that part or ask for a new rule"
            )
        fields = []
        seen = set()
        for index, (f, nullable) in enumerate(zip(desc.fields, inference.results, strict=True)):
            if not f.name.isidentifier() or f.name in seen:
                raise spec.fail(
                    f"result column {index + 1} ({f.name!r}) needs a unique name: use AS"
                )
            seen.add(f.name)
            source = self.catalog.attnums.get((f.table_oid, f.column_number))
            column = (source.table, source.name) if source else None
            if f.name in spec.annotations.nullable_columns:
                nullable = True
            if f.name in spec.annotations.notnull_columns:
                nullable = False
            if f.name in spec.annotations.jsonnull_columns:
                nullable = True  # JSON null decodes to None, as SQL NULL does
            annotation = self.python_type(f.type_oid, spec, f"column {f.name}", column)
            declared = self.config.jsonb.get(f"{column[0]}.{column[1]}") if column else None
            convert = declared.rpartition(":")[2] if declared else None
            fields.append(
                StructField(f.name, f"{annotation} | None" if nullable else annotation, convert)
            )
        return fields

    def result_struct(self, spec: QuerySpec, desc: Description, inference: Inference) -> Struct:
        fields = self.result_fields(spec, desc, inference)
        table = self._whole_table(desc, inference)
        if table is not None:  # the table's own struct, with the table's nullability
            columns = self.catalog.table_columns[table]
            as_table = replace(inference, results=tuple(not c.not_null for c in columns))
            fields = self.result_fields(spec, desc, as_table)
            name = pascal(singular(table))
            struct = Struct(name, f"A row of table ``{table}``.", tuple(fields))
        else:
            name = pascal(spec.name) + "Row"
            if name in self.structs and self.struct_sources[name] != str(spec.file.name):
                name = pascal(spec.file.stem) + name
            struct = Struct(
                name, f"A row of query ``{spec.name}`` ({spec.file.name}).", tuple(fields)
            )
        existing = self.structs.get(name)
        if existing is not None and existing != struct:
            raise spec.fail(
                f"result struct {name} would differ from another query's: rename a column"
            )
        self.structs[name] = struct
        self.struct_sources.setdefault(name, spec.file.name)
        return struct

    def params_struct(self, spec: QuerySpec, params: list[Param]) -> Struct:
        """The struct of one parameter row of a '*!' query."""
        name = pascal(spec.name) + "Params"
        if name in self.structs and self.struct_sources[name] != str(spec.file.name):
            name = pascal(spec.file.stem) + name
        fields = tuple(StructField(p.name, p.annotation, None) for p in params)
        struct = Struct(name, f"One parameter row of query ``{spec.name}`` ({spec.file.name}).",
                        fields)  # fmt: skip
        if name in self.structs and self.structs[name] != struct:
            raise spec.fail(f"parameter struct {name} would clash with another struct")
        self.structs[name] = struct
        self.struct_sources.setdefault(name, spec.file.name)
        return struct

    def _whole_table(self, desc: Description, inference: Inference) -> str | None:
        """The table whose every column (in order, none more nullable) the query returns."""
        oids = {f.table_oid for f in desc.fields}
        if len(oids) != 1 or 0 in oids:
            return None
        table = self.catalog.tables.get(oids.pop())
        if table is None:
            return None
        columns = self.catalog.table_columns[table]
        if [f.name for f in desc.fields] != [c.name for c in columns]:
            return None
        if any(
            self.catalog.attnums.get((f.table_oid, f.column_number)) != c
            for f, c in zip(desc.fields, columns, strict=True)
        ):
            return None
        # the table's struct is safe when no column is more nullable than in the table
        # (a WHERE that proves a nullable column non-null keeps the shared struct)
        if any(n and c.not_null for n, c in zip(inference.results, columns, strict=True)):
            return None
        return table

    def return_type(self, spec: QuerySpec, desc: Description, inference: Inference,
                    struct: Struct | None) -> str:  # fmt: skip
        op = spec.operation
        if op == Op.INSERT_UPDATE_DELETE:
            return "int"
        if struct is None:
            raise spec.fail("this operator needs a result: add RETURNING or a select list")
        row = f"models.{struct.name}"
        if op == Op.SELECT:
            return f"builtins.list[{row}]"
        if op == Op.SELECT_ONE:
            return f"{row} | None"
        if op == Op.INSERT_RETURNING:
            return row
        raise spec.fail(f"unsupported operator {op}")

    # -- modules --------------------------------------------------------------

    def render_models(self) -> str:
        declared = sorted(set(self.config.jsonb.values()))
        lines = ["", "__all__ = ["]
        exported = (
            [pascal(e) for e in self.catalog.enums]
            + sorted(self.structs)
            + [s.maker for s in self._sorted_structs() if s.maker != s.name]
            + ["ENUMS", "JsonValue"]
            + [t.rpartition(":")[2] for t in declared]
        )
        lines += [f'    "{name}",' for name in sorted(exported)]
        lines += ["]", ""]
        for enum_name, labels in self.catalog.enums.items():
            lines += [
                "",
                f"class {pascal(enum_name)}(enum.StrEnum):",
                f'    """PostgreSQL enum ``{enum_name}``."""',
                "",
            ]
            lines += [f'    {enum_member(label)} = "{label}"' for label in labels]
            lines.append("")
        lines += ["", "ENUMS: dict[str, type[enum.StrEnum]] = {"]
        lines += [f'    "{e}": {pascal(e)},' for e in self.catalog.enums]
        lines += [
            "}",
            '"""Every enum of the schema, by PostgreSQL name (bound by value at run time)."""',
            "",
        ]
        converted = sorted({f.convert_to for s in self.structs.values() for f in s.fields
                            if f.convert_to})  # fmt: skip
        for target in converted:
            lines += [
                "",
                f"class {_holder(target)}(msgspec.Struct, frozen=True, gc=False):",
                f'    """Holds a {target} while a row is built: msgspec keeps the type information',
                "    of a Struct, not of a bare union, so converting through this one-field",
                '    Struct is about 13 times faster than converting to the union itself."""',
                "",
                f"    value: {target}",
                "",
            ]
        for struct in self._sorted_structs():
            lines += [
                "",
                f"class {struct.name}(msgspec.Struct, frozen=True, gc=False):",
                f'    """{struct.doc}"""',
                "",
            ]
            lines += [f"    {f.name}: {_in_models(f.annotation)}" for f in struct.fields]
            lines.append("")
            if struct.maker != struct.name:
                lines += ["", f"def {struct.maker}(*values: Any) -> {struct.name}:"]
                lines.append(
                    f'    """Build a {struct.name} from a result tuple; types jsonb columns."""'
                )
                args = []
                for index, f in enumerate(struct.fields):
                    if f.convert_to:
                        optional = f.annotation.endswith("| None")
                        holder = _holder(f.convert_to)
                        conversion = (
                            f'msgspec.convert({{"value": values[{index}]}}, {holder}).value'
                        )
                        if optional:
                            conversion = f"None if values[{index}] is None else {conversion}"
                        args.append(conversion)
                    else:
                        args.append(f"values[{index}]")
                lines.append(f"    return {struct.name}({', '.join(args)})")
                lines.append("")
        body = "\n".join(lines)
        head = [
            _header("sql/*.sql and the database schema"),
            '"""Row structs and enums, as PostgreSQL describes the named queries."""',
            "",
            "from __future__ import annotations",
            "",
            *_stdlib_imports(body),
            "",
            "import msgspec",
            "",
            "from llmcp.json_types import JsonValue"
            + (", JsonNull" if re.search(r"\bJsonNull\b", body) else ""),
            *(f"from {t.partition(':')[0]} import {t.partition(':')[2]}" for t in declared),
        ]
        return "\n".join(head) + "\n" + body + "\n"

    def _sorted_structs(self) -> list[Struct]:
        return [self.structs[name] for name in sorted(self.structs)]

    def render_queries(self, source: str, stem: str, methods: list[Method]) -> str:
        class_name = pascal(stem) + "Queries"
        rows = [m for m in methods if m.struct is not None]
        needs_json = any(p.json for m in methods for p in m.params)
        lines = [
            "",
            "from llmcp.adapter import RowMaker, encode_json, load_queries, sql_file" if needs_json
            else "from llmcp.adapter import RowMaker, load_queries, sql_file",
            f"from {self.config.package} import models",
            "",
            f'__all__ = ["Async{class_name}", "{class_name}"]',
            "",
            f'SOURCE = sql_file("{self.config.sql_package}", "{source.rpartition("/")[2]}")',
            "",
            "ROWS: dict[str, RowMaker] = {",
        ]  # fmt: skip
        lines += [f'    "{m.spec.name}": models.{m.struct.maker},' for m in rows if m.struct]
        lines += [
            "}",
            '"""How each query builds its rows (positionally, from result tuples)."""',
            "",
        ]
        for is_async in (False, True):
            lines += self._render_class(class_name, source, methods, is_async)
        body = "\n".join(lines)
        head = [
            _header(source),
            f'"""Typed queries of ``{source}``, sync and async."""',
            "",
            "from __future__ import annotations",
            "",
            *_stdlib_imports(body),
            "",
            "import psycopg",
            *(["from psycopg.types.json import Jsonb"] if needs_json else []),
            *(
                ["from llmcp.json_types import JsonNull"]
                if re.search(r"\bJsonNull\b", body)
                else []
            ),
        ]
        return "\n".join(head) + "\n" + body + "\n"

    def _render_class(
        self, class_name: str, source: str, methods: list[Method], is_async: bool
    ) -> list[str]:
        prefix = "Async" if is_async else ""
        conn_type = "psycopg.AsyncConnection[Any]" if is_async else "psycopg.Connection[Any]"
        kind = "an async" if is_async else "a sync"
        lines = [
            "",
            f"class {prefix}{class_name}:",
            f'    """The queries of ``{source}`` on {kind} psycopg connection."""',
            "",
            "    def __init__(self) -> None:",
            "        self._queries = load_queries(",
            f"            SOURCE, rows=ROWS, enums=models.ENUMS, is_async={is_async}",
            "        )",
        ]
        for method in methods:
            if method.params_struct is not None:  # '*!': one call, many parameter rows
                row_type = f"models.{method.params_struct.name}"
                signature = f"conn: {conn_type}, rows: Iterable[{row_type}]"
                items = ", ".join(
                    f'"{p.name}": {_value(p, "row." + p.name)}' for p in method.params
                )
                arguments = f"conn, [{{{items}}} for row in rows]"
            else:
                keyword_only = ["*"] if method.params else []
                declared = [f"{p.name}: {p.annotation}" for p in method.params]
                signature = ", ".join([f"conn: {conn_type}", *keyword_only, *declared])
                arguments = ", ".join(
                    ["conn", *(f"{p.name}={_value(p, p.name)}" for p in method.params)]
                )
            call = f"self._queries.{method.spec.name}({arguments})"
            if is_async:
                call = f"await {call}"
            doc = method.spec.doc or f"Run query {method.spec.name}."
            where = (
                f"``{method.spec.name}`` ({source}); "
                f"returns {_OPERATION_DOC[method.spec.operation]}."
            )
            define = "async def" if is_async else "def"
            lines += [
                "",
                f"    {define} {method.spec.name}(self, {signature}) -> {method.returns}:",
                *_docstring_lines(doc, where),
                f'        return cast("{method.returns}", {call})',
            ]
        lines.append("")
        return lines


def _stdlib_imports(body: str) -> list[str]:
    """Import lines for the standard modules and typing names that ``body`` uses."""
    modules = ("builtins", "datetime", "decimal", "enum", "uuid")
    lines = [f"import {m}" for m in modules if re.search(rf"\b{m}\.", body)]
    if re.search(r"\bIterable\[", body):
        lines.append("from collections.abc import Iterable")
    typing_names = [n for n in ("Any", "cast") if re.search(rf"\b{n}\b", body)]
    if typing_names:
        lines.append(f"from typing import {', '.join(typing_names)}")
    return lines


def _value(param: Param, expression: str) -> str:
    """How a parameter's value is passed on: jsonb values are wrapped for psycopg, and
    None is SQL NULL (JSON null is ``llmcp.JSON_NULL``)."""
    if not param.json:
        return expression
    wrapped = f"Jsonb({expression}, dumps=encode_json)"
    admits_none = param.annotation.endswith("| None") or "JsonValue" in param.annotation
    return f"None if {expression} is None else {wrapped}" if admits_none else wrapped


def _in_models(annotation: str) -> str:
    return annotation.replace("models.", "")


def _docstring_lines(summary: str, detail: str) -> list[str]:
    """A method docstring, wrapped to stay inside the line length."""

    def wrap(text: str) -> list[str]:
        safe = text.replace("\\", "\\\\").replace('"""', "'''")
        return textwrap.wrap(safe, width=92, initial_indent=" " * 8, subsequent_indent=" " * 8)

    first, *rest = wrap(summary)
    return [f'        """{first.strip()}', *rest, "", *wrap(detail), '        """']


def _header(source: str) -> str:
    """The first lines of a generated module: what made it, from what (as sqlc's)."""
    return (
        f"# Code generated by `llmcp codegen` from {source}. DO NOT EDIT.\n"
        f"# versions:\n#   llmcp {llmcp.__version__}"
    )


def _holder(target: str) -> str:
    """The private one-field Struct that a jsonb value converts through to ``target``."""
    return f"_{target}Value"
