"""What an operator of ``dataqueue worker`` sees, on both backends (issue 11): Ctrl-C stops it
cleanly (no "Task was destroyed but it is pending!"), one log line per job start and finish,
wrong credentials and an unreachable server as one line and a non-zero exit, and ``cron list``
readable at 80 columns."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

from _processes import ctrl_c, reaped

from ._run import clean_env, cli
from .conftest import CliStorage

HANDLERS = "dataqueue.cli.demo_handlers:HANDLERS"


def _worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dataqueue", "worker", HANDLERS, "--poll-interval", "0.2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )


def test_ctrl_c_stops_the_cli_worker_cleanly_and_it_logs_each_job(
    cli_storage: CliStorage,
) -> None:
    with cli_storage.queue() as q:
        job_id = q.add_job("demo.transform", {"file": "x.csv", "speed": 0.01})
        with reaped(_worker(*cli_storage.args)) as proc:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                record = q.get_job(job_id)
                if record is not None and record.status.value == "completed":
                    break
                time.sleep(0.1)
            out, err = ctrl_c(proc, idle=0.5)  # once the job is done
    text = out + err
    assert proc.returncode == 0, text
    assert "Task was destroyed" not in text and "Traceback" not in text, text
    assert "worker stopped" in out
    flat = " ".join(text.split())  # rich wraps long log lines
    assert re.search(rf"job {job_id} \(demo\.transform\) started, attempt 1/\d", flat), text
    assert re.search(rf"job {job_id} \(demo\.transform\) completed in [\d.]+s", flat), text


def _with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def test_wrong_credentials_are_one_line_at_once(cli_storage: CliStorage) -> None:
    user = "postgres" if cli_storage.backend == "postgres" else "nobody"
    url = _with_credentials(cli_storage.url, user, "certainly-wrong")
    extra = ["--key-prefix", cli_storage.key_prefix] if cli_storage.key_prefix else []
    for command in (["jobs", "list"], ["worker", HANDLERS]):
        started = time.monotonic()
        r = cli(*command, "--url", url, *extra, timeout=60)
        assert time.monotonic() - started < 20
        assert r.returncode != 0, r.stdout
        errors = [line for line in r.stderr.splitlines() if line.startswith("error")]
        assert errors, r.stderr
        assert "Traceback" not in r.stderr
        assert "certainly-wrong" not in r.stderr + r.stdout  # the password is not echoed
        assert re.search("password|credential|auth", r.stderr, re.I), r.stderr
        port = str(urlsplit(url).port)
        assert "127.0.0.1" in r.stderr and f"port {port}" in r.stderr, r.stderr  # where
        assert user in r.stderr, r.stderr


def test_worker_gives_up_on_an_unreachable_server_with_a_non_zero_exit(
    cli_storage: CliStorage,
) -> None:
    parts = urlsplit(cli_storage.url)
    down = urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0] + ":9"))
    started = time.monotonic()
    r = cli("worker", HANDLERS, "--url", down, "--give-up-after", "1", timeout=60)
    assert time.monotonic() - started < 30
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    text = " ".join((r.stdout + r.stderr).split())
    assert "127.0.0.1" in text and "9" in text, text


def test_cron_list_fits_80_columns_without_breaking_words(cli_storage: CliStorage) -> None:
    name = "nightly-report-export"
    r = cli(
        "cron", "add", name, "*/15 3-5 * * mon-fri", "build_the_daily_report",
        "--timezone", "America/Argentina/Buenos_Aires", *cli_storage.args,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    listed = cli("cron", "list", *cli_storage.args, env=clean_env(COLUMNS="80"))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, listed.stdout
    for whole in (name, "*/15 3-5 * * mon-fri", "America/Argentina/Buenos_Aires",
                  "build_the_daily_report", "active"):  # fmt: skip
        assert any(whole in line for line in lines), (whole, listed.stdout)
