"""The user-facing typing samples: ok_sample.py type-checks cleanly under mypy --strict (and
pyright when installed), and every line of bad_sample.py marked ``# E:`` is reported."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def _mypy(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir=/dev/null",
         "--python-version", "3.10", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip


def _expected_lines(path: Path) -> set[int]:
    return {
        n for n, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"#\s*E:", line)
    }


def test_ok_sample_passes_mypy_strict() -> None:
    result = _mypy(HERE / "ok_sample.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_sample_fails_mypy_on_every_marked_line() -> None:
    path = HERE / "bad_sample.py"
    result = _mypy(path)
    assert result.returncode != 0
    reported = {int(m.group(1)) for m in re.finditer(r"bad_sample\.py:(\d+): error", result.stdout)}
    missing = _expected_lines(path) - reported
    assert not missing, f"mypy did not report lines {sorted(missing)}:\n{result.stdout}"


def _pyright() -> str:
    exe = shutil.which("pyright", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("pyright is not installed (pip install 'dataqueue[dev]')")
    return exe


def test_samples_under_pyright() -> None:
    exe = _pyright()
    ok = subprocess.run(
        [exe, "--pythonversion", "3.10", str(HERE / "ok_sample.py")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    path = HERE / "bad_sample.py"
    bad = subprocess.run(
        [exe, "--pythonversion", "3.10", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert bad.returncode != 0
    reported = {
        int(m.group(1)) for m in re.finditer(r"bad_sample\.py:(\d+):\d+ - error", bad.stdout)
    }
    missing = _expected_lines(path) - reported
    assert not missing, f"pyright did not report lines {sorted(missing)}:\n{bad.stdout}"


def test_the_plain_string_aliases_name_exactly_the_enum_values() -> None:
    # A Literal cannot be derived from an enum for type checkers: this keeps the two in step.
    from typing import get_args

    from dataqueue.records import (
        CronStatus,
        CronStatusName,
        JobStatus,
        JobStatusName,
        TagQueryMode,
        TagQueryModeName,
    )

    for alias, enum in ((JobStatusName, JobStatus), (TagQueryModeName, TagQueryMode),
                        (CronStatusName, CronStatus)):  # fmt: skip
        assert list(get_args(alias)) == [member.value for member in enum]
