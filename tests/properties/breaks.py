"""`make test-teeth`: break the SQL on purpose and check that the properties notice.

Each break edits one named query in ``sql/`` (or one migration, or one line of
the library; a few edit two places at once: ``also``) inside a throwaway copy of
the checkout, runs the property tests there (``-x``: stop at the first failure)
and records which test failed first.

The tenant-isolation breaks take down one wall at a time (issue 12): a query's
``org_id`` predicate (caught by the properties run as the administrator, whom
row-level security does not stop: the predicates alone), row-level security on a
table or one of its policies (caught by the "RLS alone" properties), or both at
once (caught by the properties run as the service's role, both walls). A break with
``holds`` also runs the tests of the other wall, which must still pass: with a
query's predicate gone, row-level security alone keeps the other tenant out.
A break that no test catches is a hole in the suite: the command says which and
exits 1.

    .venv/bin/python -m tests.properties.breaks            # every break
    .venv/bin/python -m tests.properties.breaks --only keyset-lte --only priority-asc
    .venv/bin/python -m tests.properties.breaks --list

The copy runs with ``PYTHONPATH`` pointing at it, so ``llmcp``, its SQL files and
its migrations are the copy's; the checkout itself is never touched.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROPERTIES = "tests/properties"


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` by ``new`` (first occurrence) in one named query of ``path``."""

    path: str
    query: str | None  # None: anywhere in the file (migrations)
    old: str
    new: str


@dataclass(frozen=True)
class Break:
    """Replace ``old`` by ``new`` (first occurrence) in one named query of ``path``, and
    make the edits of ``also`` too."""

    name: str
    path: str
    query: str | None  # None: anywhere in the file (migrations)
    old: str
    new: str
    why: str
    tests: str = PROPERTIES  # pytest's arguments (split like a shell's)
    also: tuple[Edit, ...] = ()
    holds: str | None = None  # tests that must still pass: the other wall keeps B out

    def edits(self) -> list[Edit]:
        return [Edit(self.path, self.query, self.old, self.new), *self.also]


ORDER = "ORDER BY created_at DESC, id DESC"
KEYSET = "(created_at, id) < (:after_created_at, :after_id)"

VERBATIM = "tests/properties/test_fuzz.py::test_valid_values_are_stored_and_read_back_verbatim"

# Tenant isolation (tests/properties/test_tenant_isolation.py): an org predicate made
# always true (the parameter stays: aiosql refuses a declared parameter left unused)
ISOLATION = "tests/properties/test_tenant_isolation.py"
ORG = "WHERE org_id = :org_id"
ANY_ORG = "WHERE (org_id = :org_id OR TRUE)"
RLS = "dbmate/migrations/20261201000500_enable_row_level_security.sql"
# rebuilds audit_logs and inference_requests (partitioned), their policies and keys included
PARTITIONED = (
    "dbmate/migrations/20261201000700_partition_audit_logs_and_inference_requests_by_month.sql"
)
AUDIT_POLICY = (
    "CREATE POLICY audit_logs_tenant ON audit_logs FOR SELECT TO llmcp_app\n"
    "USING (org_id = llmcp_current_org());"
)
AUDIT_POLICY_WIDE = (
    "CREATE POLICY audit_logs_tenant ON audit_logs FOR SELECT TO llmcp_app\nUSING (true);"
)
PREDICATES_ALONE = f"{ISOLATION} -k 'learns_nothing and predicates'"
BOTH_WALLS = f"{ISOLATION} -k 'learns_nothing and both'"
RLS_ALONE = f"{ISOLATION} -k 'rls_alone or without_a_tenant'"

BREAKS = [
    Break("offset-order-asc", "sql/organizations.sql", "list",
          ORDER, "ORDER BY created_at ASC, id DESC",
          "offset pages oldest first instead of newest first"),
    Break("offset-tiebreak-flipped", "sql/policies.sql", "get_by_org_id",
          ORDER, "ORDER BY created_at DESC, id ASC",
          "equal timestamps ordered by id ascending"),
    Break("offset-tiebreak-dropped", "sql/users.sql", "get_by_org_id",
          ORDER, "ORDER BY created_at DESC",
          "no tie-breaker: order among equal timestamps is up to the server"),
    Break("offset-off-by-one", "sql/applications.sql", "get_by_org_id",
          "OFFSET :offset", "OFFSET :offset + 1",
          "every offset page skips one row"),
    Break("keyset-lte", "sql/audit_logs.sql", "get_by_org_id_after",
          KEYSET, "(created_at, id) <= (:after_created_at, :after_id)",
          "the continuation repeats the cursor's row"),
    Break("keyset-timestamp-only", "sql/inference_requests.sql", "get_by_status_after",
          KEYSET, "created_at < :after_created_at AND id <> :after_id",
          "the keyset predicate ignores the id order: rows sharing the cursor's timestamp are lost"),
    Break("keyset-order-mismatch", "sql/inference_requests.sql", "get_by_app_id_after",
          ORDER, "ORDER BY created_at DESC, id ASC",
          "the continuation orders ties differently from the first page"),
    Break("keyset-first-page-order", "sql/audit_logs.sql", "get_by_user_id",
          ORDER, "ORDER BY created_at ASC, id ASC",
          "the first keyset page is in the opposite order"),
    Break("keyset-wrong-scope", "sql/inference_requests.sql", "get_by_user_id_after",
          "AND user_id = :user_id", "AND (user_id IS NOT NULL OR user_id = :user_id)",
          "continuation pages include other users' rows"),
    Break("range-end-inclusive", "sql/audit_logs.sql", "get_by_date_range",
          "AND created_at < :end_time", "AND created_at <= :end_time",
          "a date range includes its end"),
    Break("range-start-exclusive", "sql/inference_requests.sql", "get_by_date_range_after",
          "AND created_at >= :start_time", "AND created_at > :start_time",
          "keyset continuation of a date range drops its start"),
    Break("request-id-order", "sql/audit_logs.sql", "get_by_request_id",
          "ORDER BY created_at ASC, id ASC", "ORDER BY created_at DESC, id ASC",
          "a request's audit trail newest first"),
    Break("applicable-app-level-widened", "sql/policies.sql", "get_applicable",
          "OR (app_id = :app_id AND user_id IS NULL)", "OR (app_id = :app_id)",
          "other users' policies of the same app apply"),
    Break("applicable-user-level-widened", "sql/policies.sql", "get_applicable",
          "(user_id = :user_id AND (app_id IS NULL OR app_id = :app_id))", "(user_id = :user_id)",
          "a user's policies for other apps apply"),
    Break("applicable-disabled", "sql/policies.sql", "get_applicable",
          "    AND enabled\n", "",
          "disabled policies apply"),
    Break("applicable-other-org", "sql/policies.sql", "get_applicable",
          "WHERE org_id = :org_id", "WHERE (org_id = :org_id OR app_id IS NULL)",
          "org-level policies of other organizations apply"),
    Break("specificity-swapped", "sql/policies.sql", "get_applicable",
          "WHEN user_id IS NOT NULL THEN 2", "WHEN user_id IS NOT NULL THEN 0",
          "user-level policies before user+app ones"),
    Break("priority-asc", "sql/policies.sql", "get_applicable",
          "priority DESC", "priority ASC",
          "lowest priority first"),
    Break("applicable-created-desc", "sql/policies.sql", "get_applicable",
          "created_at ASC,", "created_at DESC,",
          "equal priorities newest first"),
    Break("applicable-tiebreak-dropped", "sql/policies.sql", "get_applicable",
          "    created_at ASC,\n    id ASC", "    created_at ASC",
          "no tie-breaker after created_at"),
    Break("update-version-gte", "sql/organizations.sql", "update",
          "AND version = :version", "AND version >= :version",
          "an update from a stale copy is accepted"),
    Break("update-version-ignored", "sql/policies.sql", "update",
          "AND version = :version", "AND (version = :version OR TRUE)",
          "lost updates: the optimistic check is gone"),
    Break("email-case-sensitive", "llmcp/validation.py", None,
          'unicodedata.normalize("NFKC", address).casefold()',
          'unicodedata.normalize("NFKC", address)',
          "e-mail keys keep their case: lookups and uniqueness become case-sensitive",
          tests=VERBATIM),
    Break("email-look-alikes", "llmcp/validation.py", None,
          'unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", address).casefold())',
          "address.casefold()",
          "e-mail keys without NFKC: a full-width or Kelvin-sign look-alike is another address",
          tests=VERBATIM),
    Break("cascade-user-requests", "dbmate/migrations/20261126000700_create_inference_requests.sql",
          None, "REFERENCES users (org_id, id) ON DELETE SET NULL (user_id)",
          "REFERENCES users (org_id, id) ON DELETE CASCADE",
          "deleting a user deletes their inference requests",
          also=(Edit(PARTITIONED, None, "REFERENCES users (org_id, id) ON DELETE SET NULL (user_id);",
                     "REFERENCES users (org_id, id) ON DELETE CASCADE;"),)),
    Break("metrics-hour-double-counted", "sql/inference_requests.sql", "get_metrics",
          "AND m.hour < (SELECT b.last_hour", "AND m.hour <= (SELECT b.last_hour",
          "the last whole hour counted from the rollup and again from raw rows",
          tests="tests/test_metrics.py"),
    Break("commit-on-lost-connection", "llmcp/transactions_base.py", None,
          "if conn.pgconn.status != psycopg.pq.ConnStatus.OK:", "if False:",
          "a transaction whose connection was lost ends as if committed (psycopg skips COMMIT)",
          tests="tests/properties/test_stateful.py"),
    # -- tenant isolation: the org predicates (wall 1) ------------------------------------
    Break("org-predicate-app-get", "sql/applications.sql", "get_by_id",
          ORG, ANY_ORG,
          "applications.get_by_id returns another organization's application",
          tests=PREDICATES_ALONE, holds=BOTH_WALLS),
    Break("org-predicate-policy-update", "sql/policies.sql", "update",
          ORG, ANY_ORG,
          "policies.update changes another organization's policy, knowing its id",
          tests=PREDICATES_ALONE, holds=BOTH_WALLS),
    Break("org-predicate-audit-request", "sql/audit_logs.sql", "get_by_request_id",
          ORG, ANY_ORG,
          "a request's audit trail includes other organizations' entries of the same request id",
          tests=PREDICATES_ALONE, holds=BOTH_WALLS),
    Break("org-predicate-user-delete", "sql/users.sql", "delete",
          ORG, ANY_ORG,
          "users.delete deletes another organization's user",
          tests=PREDICATES_ALONE),
    Break("org-predicate-version-oracle", "sql/inference_requests.sql", "version_of",
          ORG, ANY_ORG,
          "an update of another organization's row says ConflictError (it exists) not NotFound",
          tests=PREDICATES_ALONE),
    Break("org-predicate-metrics", "sql/inference_requests.sql", "get_metrics",
          "WHERE m.org_id = :org_id", "WHERE (m.org_id = :org_id OR TRUE)",
          "metrics count other organizations' whole hours",
          tests=PREDICATES_ALONE),
    # -- tenant isolation: row-level security (wall 2) ------------------------------------
    Break("rls-off-applications", RLS, None,
          "ALTER TABLE applications ENABLE ROW LEVEL SECURITY;", "",
          "no row-level security on applications",
          tests=RLS_ALONE),
    Break("rls-policy-widened-audit-logs", RLS, None,
          "CREATE POLICY audit_logs_tenant ON audit_logs FOR SELECT TO llmcp_app\n"
          "USING (org_id = llmcp_current_org());",
          "CREATE POLICY audit_logs_tenant ON audit_logs FOR SELECT TO llmcp_app\nUSING (true);",
          "the audit trail's policy lets every tenant read every entry",
          tests=RLS_ALONE, also=(Edit(PARTITIONED, None, AUDIT_POLICY, AUDIT_POLICY_WIDE),)),
    Break("rls-policy-dropped-users", RLS, None,
          "CREATE POLICY users_tenant ON users TO llmcp_app\n"
          "USING (org_id = llmcp_current_org()) WITH CHECK (org_id = llmcp_current_org());",
          "CREATE POLICY users_tenant ON users TO llmcp_app USING (true);",
          "users' tenant policy replaced by one that lets everything through",
          tests=RLS_ALONE),
    Break("tenant-setting-session-wide", "llmcp/adapter.py", None,
          '_SET_SETTING = "SELECT set_config(%s, %s, true)"',
          '_SET_SETTING = "SELECT set_config(%s, %s, false)"',
          "the tenant setting outlives its transaction: the next statement on the pooled "
          "connection runs as the previous call's tenant",
          tests=RLS_ALONE),
    # -- tenant isolation: both walls down at once ----------------------------------------
    Break("both-walls-app-get", "sql/applications.sql", "get_by_id",
          ORG, ANY_ORG,
          "applications.get_by_id without its org predicate and applications without RLS",
          tests=BOTH_WALLS,
          also=(Edit(RLS, None, "ALTER TABLE applications ENABLE ROW LEVEL SECURITY;", ""),)),
    Break("both-walls-policy-update", "sql/policies.sql", "update",
          ORG, ANY_ORG,
          "policies.update without its org predicate and policies' tenant policy letting "
          "everything through",
          tests=BOTH_WALLS,
          also=(Edit(RLS, None,
                     "CREATE POLICY policies_tenant ON policies TO llmcp_app\n"
                     "USING (org_id = llmcp_current_org()) WITH CHECK (org_id = llmcp_current_org());",
                     "CREATE POLICY policies_tenant ON policies TO llmcp_app USING (true);"),)),
    Break("both-walls-audit-request", "sql/audit_logs.sql", "get_by_request_id",
          ORG, ANY_ORG,
          "audit_logs.get_by_request_id without its org predicate and audit_logs' read "
          "policy widened",
          tests=BOTH_WALLS,
          also=(Edit(RLS, None,
                     "CREATE POLICY audit_logs_tenant ON audit_logs FOR SELECT TO llmcp_app\n"
                     "USING (org_id = llmcp_current_org());",
                     "CREATE POLICY audit_logs_tenant ON audit_logs FOR SELECT TO llmcp_app\n"
                     "USING (true);"),
                Edit(PARTITIONED, None, AUDIT_POLICY, AUDIT_POLICY_WIDE))),
    Break("scope-not-set", "llmcp/repositories/base.py", None,
          'org_id = kwargs.get("org_id")', "org_id = None",
          "repositories never set the tenant: as the service's role every tenant call sees "
          "nothing and every insert is refused",
          tests=BOTH_WALLS),
]  # fmt: skip


def apply(root: Path, brk: Break) -> None:
    """Edit the copy at ``root``; fail loudly if a text to break is not there."""
    for edit in brk.edits():
        file = root / edit.path
        text = file.read_text()
        start, end = 0, len(text)
        if edit.query is not None:
            found = re.search(rf"^-- name: {re.escape(edit.query)}\(", text, re.MULTILINE)
            if found is None:
                raise SystemExit(f"{brk.name}: no query {edit.query} in {edit.path}")
            start = found.start()
            following = text.find("\n-- name: ", start)
            end = len(text) if following < 0 else following
        block = text[start:end]
        if edit.old not in block:
            raise SystemExit(f"{brk.name}: {edit.old!r} is not in {edit.path} ({edit.query})")
        file.write_text(text[:start] + block.replace(edit.old, edit.new, 1) + text[end:])


def copy_checkout(dest: Path) -> None:
    """The tracked files, plus the links the package layout maps (see pyproject)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = ROOT / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)
    (dest / "llmcp" / "sql").symlink_to("../sql")
    (dest / "llmcp" / "dbmate").symlink_to("../dbmate")


def environment(root: Path) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(root), "HYPOTHESIS_PROFILE": "default"}


def check_isolation(root: Path) -> None:
    """The copy's package, SQL and migrations are the ones imported, not the checkout's."""
    probe = (
        "import importlib.resources as r, llmcp; "
        "print(llmcp.__file__); print(r.files('llmcp.sql')); print(r.files('llmcp.dbmate'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, env=environment(root),
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    outside = [path for path in out if not path.startswith(str(root))]
    if outside:
        raise SystemExit(f"the copy imports files outside it: {outside}")


class BrokenRun(Exception):
    """pytest did not run the tests (a usage or collection error): no verdict."""


def run_tests(root: Path, tests: str) -> tuple[str | None, float]:
    """(the first failing test or None, seconds)."""
    shutil.rmtree(root / ".hypothesis", ignore_errors=True)  # no replay across breaks
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *shlex.split(tests), "-x", "-q", "-rf",
         "-p", "no:cacheprovider"],
        cwd=root, env=environment(root), capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if result.returncode == 0:
        return None, seconds
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", result.stdout, re.MULTILINE)
    if result.returncode != 1 or failed is None:  # 1: some tests failed
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise BrokenRun(f"pytest exited {result.returncode}: " + " | ".join(tail))
    return failed.group(1), seconds


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.properties.breaks")
    parser.add_argument("--only", action="append", default=[], help="run this break (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the breaks and stop")
    args = parser.parse_args()
    chosen = [b for b in BREAKS if not args.only or b.name in args.only]
    if args.list or not chosen:
        for brk in BREAKS:
            also = "".join(f" + {edit.path}:{edit.query or '-'}" for edit in brk.also)
            print(f"{brk.name:<32} {brk.path}:{brk.query or '-'}{also}  {brk.why}")
        return 0 if args.list else 2

    with tempfile.TemporaryDirectory(prefix="llmcp-breaks-") as tmp:
        pristine = Path(tmp) / "pristine"
        copy_checkout(pristine)
        check_isolation(pristine)
        for tests in sorted({brk.tests for brk in chosen}):
            failed, seconds = run_tests(pristine, tests)
            print(f"baseline {tests}: {'passes' if failed is None else failed} ({seconds:.0f} s)")
            if failed is not None:
                print("the unbroken suite must pass first")
                return 1

        survivors: list[str] = []
        unusable: list[str] = []
        fallen: list[str] = []  # breaks whose other wall did not hold
        print(f"\n{'break':<32} {'seconds':>7}  caught by")
        for brk in chosen:
            root = Path(tmp) / brk.name
            shutil.copytree(pristine, root, symlinks=True)
            apply(root, brk)
            try:
                failed, seconds = run_tests(root, brk.tests)
                held = None if brk.holds is None else run_tests(root, brk.holds)
            except BrokenRun as exc:  # the break must leave a loadable package
                unusable.append(brk.name)
                print(f"{brk.name:<32} {'-':>7}  NO VERDICT: {exc}", flush=True)
                continue
            finally:
                shutil.rmtree(root)
            if failed is None:
                survivors.append(brk.name)
            print(f"{brk.name:<32} {seconds:>7.0f}  {failed or 'NOT CAUGHT'}", flush=True)
            if held is not None:
                fell, held_seconds = held
                if fell is not None:
                    fallen.append(brk.name)
                verdict = (
                    f"the other wall FELL: {fell}"
                    if fell
                    else f"the other wall holds ({brk.holds})"
                )
                print(f"{'':<32} {held_seconds:>7.0f}  {verdict}", flush=True)

    print(f"\n{len(chosen) - len(survivors) - len(unusable)} of {len(chosen)} breaks caught")
    if survivors:
        print("not caught: " + ", ".join(survivors))
    if unusable:
        print("no verdict (the broken copy did not load): " + ", ".join(unusable))
    if fallen:
        print("the other wall did not hold: " + ", ".join(fallen))
    return 1 if survivors or unusable or fallen else 0


if __name__ == "__main__":
    sys.exit(main())
