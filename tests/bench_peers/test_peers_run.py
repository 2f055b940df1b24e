"""``benches/peers/run.py`` end to end on its own servers, with tiny numbers: dataqueue on both
backends and one peer of each family, through their own worker commands.

A peer is left out only when its package is missing (the ``bench`` extra is not part of the
default bootstrap); dataqueue's two rows always run.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "benches" / "peers" / "run.py"
#: One peer per family: the modules it needs and its label in the table.
PEERS = {"pgqueuer": (("pgqueuer", "asyncpg"), "pgqueuer"), "saq-redis": (("saq",), "SAQ")}
METRICS = ("drain", "single", "bulk", "p50", "p99")


def _installed(modules: tuple[str, ...]) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def test_quick_run_prints_the_table(tmp_path: Path) -> None:
    systems = ["dataqueue-postgres", "dataqueue-redis"]
    systems += [name for name, (modules, _) in PEERS.items() if _installed(modules)]
    cmd = [
        sys.executable, str(RUN), "--quick", "--only", ",".join(systems), "--out", str(tmp_path),
        "--jobs", "150", "--single", "40", "--samples", "30",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    out = proc.stdout
    assert "| metric | dataqueue PostgreSQL | best PostgreSQL peer |" in out, out
    assert "| system | backend | drain, jobs/s |" in out, out
    assert "failed" not in out, out
    # The servers are the run's own, durable PostgreSQL and a persisting Redis.
    assert "fsync=on, synchronous_commit=on, full_page_writes=on" in out, out
    assert "appendonly yes, appendfsync everysec" in out, out

    data = json.loads((tmp_path / "peers.json").read_text())
    assert sorted(data["meta"]["settings"].items()) == sorted(
        {"jobs": 150, "single": 40, "samples": 30, "rate": 200.0, "reps": 1}.items()
    )
    assert {r["system"] for r in data["runs"]} == set(systems)
    for run in data["runs"]:
        assert run["errors"] == {}, run
        for key in METRICS:
            assert run[key] > 0, (run["system"], key, run)
        assert run["p50"] <= run["p99"]
    for name in systems:
        label = "dataqueue" if name.startswith("dataqueue") else PEERS[name][1]
        assert any(line.startswith(f"| {label}") or line.startswith(f"| **{label}")
                   for line in out.splitlines()), (name, out)  # fmt: skip
    # Ratios are against the best *peer*: with a peer in the family dataqueue's row has one.
    if "pgqueuer" in systems:
        assert data["summary"]["dataqueue-postgres"]["drain"]["ratio"] > 0
        assert data["summary"]["pgqueuer"]["drain"]["ratio"] == pytest.approx(1.0)
    assert (tmp_path / "peers.md").read_text().strip() in out
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "peers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_peer_of_the_quick_run_is_installed(peer: str) -> None:
    """Shows in the summary (-ra) when the quick run above had to leave a peer out."""
    modules, _ = PEERS[peer]
    if not _installed(modules):
        pytest.skip(f"{peer} not installed (the bench extra): left out of the quick run")
    sys.path.insert(0, str(RUN.parent))
    try:
        from adapters import SYSTEMS
    finally:
        sys.path.remove(str(RUN.parent))
    assert SYSTEMS[peer].missing() == []
    assert "missing" not in SYSTEMS[peer].versions().values()
