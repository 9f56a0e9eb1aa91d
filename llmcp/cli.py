"""The ``llmcp`` command line.

Every command talks to ``LLMCP_DATABASE_URL`` when it is set, otherwise to an
embedded server (see :mod:`llmcp.target`). A failure prints one line to stderr
and exits non-zero; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from llmcp.errors import LlmcpError
from llmcp.migrate import Migrator
from llmcp.target import database_url

Handler = Callable[[argparse.Namespace], int]


def _db_up(args: argparse.Namespace) -> int:
    with database_url() as url:
        migrator = Migrator(url)
        migrator.up()
        status = migrator.status()
    print(f"migrated: {status.applied} applied, {status.pending} pending")
    return 0


def _db_rollback(args: argparse.Namespace) -> int:
    with database_url() as url:
        migrator = Migrator(url)
        migrator.rollback()
        status = migrator.status()
    print(f"rolled back: {status.applied} applied, {status.pending} pending")
    return 0


def _db_status(args: argparse.Namespace) -> int:
    with database_url() as url:
        status = Migrator(url).status()
    for migration in status.migrations:
        print(f"[{'X' if migration.applied else ' '}] {migration.name}")
    print(f"\napplied: {status.applied}\npending: {status.pending}")
    return 1 if args.exit_code and status.pending else 0


def _db_dump(args: argparse.Namespace) -> int:
    with database_url() as url:
        Migrator(url).dump(args.schema_file)
    print(f"wrote {args.schema_file}")
    return 0


def _db_new(args: argparse.Namespace) -> int:
    # `new` only writes a file; it needs no server.
    path = Migrator("postgres://unused", migrations_dir=args.migrations_dir).new(args.name)
    print(f"created {path}")
    return 0


def _codegen(args: argparse.Namespace) -> int:
    from llmcp.codegen import CodegenConfig, run

    code, message = run(CodegenConfig.load(args.config), check=args.check)
    if message:
        print(message, file=sys.stderr if code else sys.stdout)
    return code


def _demo(args: argparse.Namespace) -> int:
    from llmcp.demo import run

    return run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmcp", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="migrations (dbmate)")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("up", help="apply every pending migration").set_defaults(handler=_db_up)
    db_commands.add_parser("rollback", help="roll back the latest migration").set_defaults(
        handler=_db_rollback
    )
    status = db_commands.add_parser("status", help="list applied and pending migrations")
    status.add_argument("--exit-code", action="store_true", help="exit 1 when some are pending")
    status.set_defaults(handler=_db_status)
    dump = db_commands.add_parser("dump", help="write the schema dump")
    dump.add_argument("--schema-file", type=Path, default=Path("dbmate/schema.sql"))
    dump.set_defaults(handler=_db_dump)
    new = db_commands.add_parser("new", help="create a new migration file")
    new.add_argument("name")
    new.add_argument("--migrations-dir", type=Path, default=Path("dbmate/migrations"))
    new.set_defaults(handler=_db_new)

    codegen = commands.add_parser(
        "codegen", help="generate typed queries from sql/ into generated/"
    )
    codegen.add_argument(
        "--check", action="store_true", help="exit 1 with a diff if generated/ is stale"
    )
    codegen.add_argument("--config", type=Path, default=Path("pyproject.toml"))
    codegen.set_defaults(handler=_codegen)

    commands.add_parser("demo", help="run the demo").set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except LlmcpError as exc:
        print(f"llmcp: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
