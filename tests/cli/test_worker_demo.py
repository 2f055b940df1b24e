"""``dataqueue worker`` and ``dataqueue demo`` end to end, on Postgres and Redis."""

from __future__ import annotations

import time

from ._run import cli, demo_worker
from .conftest import CliStorage


def test_worker_runs_jobs_and_stops_gracefully_on_sigterm(cli_storage: CliStorage) -> None:
    with cli_storage.queue() as q:
        job_id = q.add_job("demo.transform", {"file": "x.csv", "speed": 0.05})
        with demo_worker("--concurrency", "2", *cli_storage.args) as proc:
            deadline = time.monotonic() + 60
            status = None
            while time.monotonic() < deadline:
                record = q.get_job(job_id)
                status = record.status.value if record else None
                if status == "completed" or proc.poll() is not None:
                    break
                time.sleep(0.1)
            assert status == "completed", proc.stderr.read() if proc.poll() is not None else ""
            record = q.get_job(job_id)
            assert record is not None and record.output == {"file": "x.csv", "clean": True}


def test_demo_runs_the_pipeline(cli_storage: CliStorage) -> None:
    started = time.monotonic()
    r = cli("demo", *cli_storage.args, timeout=120)
    elapsed = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    out = r.stdout
    summary = out[out.rindex("summary") :]
    assert f"10 jobs on {cli_storage.backend}" in summary
    assert "8 completed" in summary and "1 failed" in summary and "1 cancelled" in summary
    assert "1 retry" in summary
    assert "retried after" in summary  # the flaky ingest came back after its backoff
    assert "cascade: #" in summary  # the notification cancelled behind the failed upload
    assert "ran after the tag drain" in summary
    assert "Traceback" not in r.stderr
    assert elapsed < 60, f"demo took {elapsed:.1f} s"


def test_demo_backend_option_must_match_the_url() -> None:
    r = cli("demo", "--backend", "redis", "--url", "postgresql://x@127.0.0.1:1/y")
    assert r.returncode == 1 and "needs a Redis URL" in r.stderr
    r = cli("demo", "--backend", "redis")
    assert r.returncode == 1 and "needs a Redis URL" in r.stderr
