"""The wheel carries its migrations and runs from any directory, outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_runs_db_up_and_status_from_another_directory(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    wheel = next(dist.glob("llmcp-*.whl"))

    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    # The dependencies come from this environment; a plain path entry (not a
    # site dir) so that this checkout's editable install stays invisible.
    site = Path(sysconfig.get_paths()["purelib"])
    new_site = next((target / "lib").glob("python3*/site-packages"))
    (new_site / "deps.pth").write_text(f"{site}\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMCP_", "PYTHON"))}
    env["LLMCP_DATA_DIR"] = str(tmp_path / "pg")

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

    llmcp = target / "bin" / "llmcp"
    up = subprocess.run(
        [str(llmcp), "db", "up"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert up.returncode == 0, up.stderr
    status = subprocess.run(
        [str(llmcp), "db", "status", "--exit-code"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert "pending: 0" in status.stdout
    assert status.stdout.count("[X]") == len(list((ROOT / "dbmate" / "migrations").glob("*.sql")))
