"""Every command with hostile arguments exits non-zero with one error line and no traceback,
and writes nothing (issue 12). Lone surrogates reach the program as undecodable argv bytes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ._run import clean_env
from .conftest import CliStorage

BAD = b"\xff\xfe"  # not UTF-8: Python sees lone surrogates (surrogateescape)
DEEP = "[" * 20_000 + "]" * 20_000  # one argv string may hold 128 KiB


def _cli(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    argv = [os.fsencode(a) if isinstance(a, str) else a for a in args]
    return subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"dataqueue", *argv],
        capture_output=True,
        timeout=120,
        env=clean_env(),
        check=False,
    )


def _one_line_error(r: subprocess.CompletedProcess[bytes]) -> str:
    err = r.stderr.decode(errors="replace")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert r.returncode != 0, (r.returncode, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


_COMMANDS: list[tuple[str | bytes, ...]] = [
    ("jobs", "show", "99999999999999999999999"),
    ("jobs", "events", "-9999999999999999999999"),
    ("jobs", "cancel", "1", "99999999999999999999999"),
    ("jobs", "retry", "99999999999999999999999"),
    ("jobs", "list", "--job-type", BAD),
    ("jobs", "list", "--tag", BAD),
    ("jobs", "list", "--tag", ""),
    ("jobs", "list", "--status", "bogus"),
    ("jobs", "list", "--limit", "0"),
    ("jobs", "show", "abc"),
    ("cron", "add", BAD, "* * * * *", "t"),
    ("cron", "add", "n", "* * * * *", BAD),
    ("cron", "add", "n", "bogus", "t"),
    ("cron", "add", "n", "* * * * *", "t", "--timezone", "../../etc/passwd"),
    ("cron", "add", "n", "* * * * *", "t", "--payload", DEEP),
    ("cron", "add", "n", "* * * * *", "t", "--payload", '{"a": "\\u0000"}'),
    ("cron", "add", "n", "* * * * *", "t", "--payload", "[9007199254740993]"),
    ("cron", "add", "n", "* * * * *", "t", "--priority", "99999999999"),
    ("cron", "add", "n", "* * * * *", "t", "--tag", BAD),
    ("cron", "pause", BAD),
    ("cron", "remove", "99999999999999999999999"),
    ("cron", "list", "--status", "bogus"),
]


@pytest.mark.parametrize("args", _COMMANDS, ids=[repr(a)[:60] for a in _COMMANDS])
def test_hostile_arguments(cli_storage: CliStorage, args: tuple[str | bytes, ...]) -> None:
    with cli_storage.queue() as q:
        q.add_job("t")
        before = [(j.id, j.status) for j in q.get_all_jobs()], q.list_cron_jobs()
    _one_line_error(_cli(*args, *cli_storage.args))
    with cli_storage.queue() as q:
        assert ([(j.id, j.status) for j in q.get_all_jobs()], q.list_cron_jobs()) == before


@pytest.mark.parametrize(
    "connection",
    [
        ("--url", "redis://127.0.0.1:6379/abc"),
        ("--url", "redis://127.0.0.1:6379/0", "--key-prefix", "app}{"),
        ("--url", "redis://127.0.0.1:6379/0", "--key-prefix", "p:{p}:"),
        ("--url", "redis://127.0.0.1:6379/0", "--key-prefix", BAD),
        ("--url", "postgresql://127.0.0.1:5432/postgres?search_path=a%09-c%09work_mem%3D1"),
        ("--url", "postgresql://127.0.0.1:5432/postgres", "--schema", "x" * 64),
        ("--url", "postgresql://127.0.0.1:5432/postgres", "--schema", BAD),
        ("--url", "postgresql://[::1/postgres"),
        ("--url", "mysql://127.0.0.1/x"),
    ],
)
def test_hostile_connection_options(connection: tuple[str | bytes, ...]) -> None:
    line = _one_line_error(_cli("jobs", "list", *connection))
    assert any(w in line for w in ("url", "URL", "key_prefix", "schema", "search_path")), line


def test_the_readme_search_path_url_form_works(cli_storage: CliStorage) -> None:
    if cli_storage.backend != "postgres":
        pytest.skip("a PostgreSQL URL option")
    with cli_storage.queue() as q:
        q.add_job("t")
    url = cli_storage.url + "?search_path=public&options=-c%20statement_timeout%3D5000"
    r = _cli("jobs", "list", "--json", "--url", url)
    assert r.returncode == 0, r.stderr.decode()
    assert b'"job_type": "t"' in r.stdout
