"""``migrate``, ``jobs`` and ``cron`` through the real command line, on Postgres and Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ._run import cli
from .conftest import CliStorage


def _json(r: Any) -> Any:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_help_lists_every_command() -> None:
    r = cli("--help")
    assert r.returncode == 0, r.stderr
    for command in ("migrate", "worker", "jobs", "cron", "db", "demo"):
        assert command in r.stdout
    r = cli("jobs", "--help")
    for command in ("list", "show", "cancel", "retry", "events"):
        assert command in r.stdout
    r = cli("cron", "--help")
    for command in ("list", "add", "pause", "resume", "remove"):
        assert command in r.stdout
    r = cli("db", "--help")
    for command in ("start", "stop", "status", "url"):
        assert command in r.stdout
    assert "--url" in cli("jobs", "list", "--help").stdout


def test_migrate_is_idempotent(cli_storage: CliStorage) -> None:
    for _ in range(2):
        r = cli("migrate", *cli_storage.args)
        assert r.returncode == 0, r.stderr
    assert "up to date" in r.stdout


def test_jobs_list_show_events_cancel(cli_storage: CliStorage) -> None:
    with cli_storage.queue() as q:
        first = q.add_job("email", {"to": "a@example.com"}, tags=["mail", "urgent"])
        second = q.add_job("report", {"day": 1}, priority=5)
        third = q.add_job("email", {"to": "b@example.com"}, tags=["mail"])

    listed = _json(cli("jobs", "list", "--json", *cli_storage.args))
    assert [j["id"] for j in listed] == [third, second, first]
    assert listed[2]["payload"] == {"to": "a@example.com"}
    assert listed[2]["status"] == "pending"

    by_type = _json(cli("jobs", "list", "--json", "--job-type", "email", *cli_storage.args))
    assert {j["id"] for j in by_type} == {first, third}
    by_tag = _json(cli("jobs", "list", "--json", "--tag", "urgent", *cli_storage.args))
    assert [j["id"] for j in by_tag] == [first]
    limited = _json(cli("jobs", "list", "--json", "--limit", "1", *cli_storage.args))
    assert [j["id"] for j in limited] == [third]

    r = cli("jobs", "list", *cli_storage.args)  # the table
    assert r.returncode == 0, r.stderr
    assert "email" in r.stdout and "report" in r.stdout

    shown = _json(cli("jobs", "show", str(second), "--json", *cli_storage.args))
    assert shown["job"]["job_type"] == "report" and shown["job"]["priority"] == 5
    assert [e["event_type"] for e in shown["events"]] == ["added"]
    r = cli("jobs", "show", str(second), *cli_storage.args)
    assert r.returncode == 0 and "report" in r.stdout

    r = cli("jobs", "cancel", str(first), *cli_storage.args)
    assert r.returncode == 0, r.stderr
    assert "cancelled" in r.stdout
    events = _json(cli("jobs", "events", str(first), "--json", *cli_storage.args))
    assert [e["event_type"] for e in events] == ["added", "cancelled"]
    cancelled = _json(cli("jobs", "list", "--json", "--status", "cancelled", *cli_storage.args))
    assert [j["id"] for j in cancelled] == [first]
    mixed = _json(
        cli("jobs", "list", "--json", "--status", "pending", "--tag", "mail", *cli_storage.args)
    )
    assert [j["id"] for j in mixed] == [third]

    # A second cancel changes nothing: exit 1 with the reason, no traceback.
    r = cli("jobs", "cancel", str(first), *cli_storage.args)
    assert r.returncode == 1
    assert "unchanged (cancelled)" in r.stderr
    assert "Traceback" not in r.stderr

    r = cli("jobs", "show", "987654", *cli_storage.args)
    assert r.returncode == 1
    assert "job 987654 not found" in r.stderr


def test_jobs_retry_a_failed_job(cli_storage: CliStorage) -> None:
    def boom(payload: Any, ctx: Any) -> None:
        raise RuntimeError("boom")

    with cli_storage.queue() as q:
        job_id = q.add_job("fragile", {"n": 1}, max_attempts=1)
        with q.create_processor({"fragile": boom}) as processor:
            assert processor.start() == 1
        record = q.get_job(job_id)
        assert record is not None and record.status.value == "failed"

    r = cli("jobs", "retry", str(job_id), "--json", *cli_storage.args)
    assert _json(r) == [{"id": job_id, "result": "ok"}]
    shown = _json(cli("jobs", "show", str(job_id), "--json", *cli_storage.args))
    assert shown["job"]["status"] == "pending"
    assert "retried" in [e["event_type"] for e in shown["events"]]


def test_cron_add_list_pause_resume_remove(cli_storage: CliStorage) -> None:
    args = cli_storage.args
    r = cli(
        "cron",
        "add",
        "nightly",
        "0 3 * * *",
        "report",
        "--payload",
        '{"kind": "daily"}',
        "--tag",
        "reports",
        *args,
    )
    assert r.returncode == 0, r.stderr
    assert "nightly" in r.stdout

    schedules = _json(cli("cron", "list", "--json", *args))
    assert [(s["schedule_name"], s["status"]) for s in schedules] == [("nightly", "active")]
    assert schedules[0]["payload"] == {"kind": "daily"}
    assert schedules[0]["tags"] == ["reports"]

    assert cli("cron", "pause", "nightly", *args).returncode == 0
    assert _json(cli("cron", "list", "--json", *args))[0]["status"] == "paused"
    assert _json(cli("cron", "list", "--json", "--status", "active", *args)) == []
    assert cli("cron", "resume", str(schedules[0]["id"]), *args).returncode == 0  # by id
    assert _json(cli("cron", "list", "--json", *args))[0]["status"] == "active"
    assert "nightly" in cli("cron", "list", *args).stdout

    r = cli("cron", "add", "nightly", "0 3 * * *", "report", *args)  # duplicate name
    assert r.returncode == 1
    assert "nightly" in r.stderr and "Traceback" not in r.stderr

    assert cli("cron", "remove", "nightly", *args).returncode == 0
    assert _json(cli("cron", "list", "--json", *args)) == []
    r = cli("cron", "pause", "nightly", *args)
    assert r.returncode == 1 and "no cron schedule named 'nightly'" in r.stderr


def test_cron_add_rejects_bad_input(cli_storage: CliStorage) -> None:
    r = cli("cron", "add", "bad", "not a cron", "report", *cli_storage.args)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    r = cli("cron", "add", "bad", "* * * * *", "report", "--payload", "{oops", *cli_storage.args)
    assert r.returncode == 1
    assert "--payload is not valid JSON" in r.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2",
        "redis://127.0.0.1:1/0",
        "mysql://localhost/x",
    ],
)
def test_bad_url_is_one_red_line(url: str) -> None:
    r = cli("jobs", "list", "--url", url, timeout=60)
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_debug_shows_the_traceback() -> None:
    r = cli("jobs", "list", "--url", "mysql://localhost/x", "--debug")
    assert r.returncode != 0
    assert "Traceback" in r.stderr


def test_worker_rejects_a_bad_handler_spec() -> None:
    r = cli("worker", "no_such_module_xyz:HANDLERS", "--url", "redis://127.0.0.1:1/0")
    assert r.returncode == 1
    assert "cannot import 'no_such_module_xyz'" in r.stderr
    r = cli("worker", "dataqueue.cli.demo_handlers", "--url", "redis://127.0.0.1:1/0")
    assert r.returncode == 1 and "MODULE:HANDLERS" in r.stderr


def test_every_command_option_and_argument_has_help() -> None:
    """Walks the whole command tree: each command, option and argument explains itself."""
    import typer.main
    from dataqueue.cli import app

    missing: list[str] = []

    def walk(cmd: Any, path: str) -> None:
        if not (cmd.help or cmd.short_help):
            missing.append(path)
        for param in cmd.params:
            if not getattr(param, "help", None) and param.name != "help":
                missing.append(f"{path} {param.name}")
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "dataqueue")
    assert missing == []


def test_console_script_without_the_cli_extra_is_one_line() -> None:
    """The ``dataqueue`` script is installed even without typer/rich: it must say what to
    install, in one line, rather than fail with a traceback."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    found = re.search(r'^dataqueue = "([\w.]+):(\w+)"$', pyproject, re.MULTILINE)
    assert found, "no dataqueue console script in pyproject.toml"
    module, func = found.groups()
    code = (
        "import sys; sys.modules['typer'] = None; sys.modules['rich'] = None\n"
        f"from {module} import {func}; {func}()"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "pip install 'dataqueue[cli]'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
