"""CPU per job of a drain, on both sides of the wire, on DURABLE servers started for the run.

    python benches/bench_cpu.py [--backend postgres|redis|both] [--jobs 10000]
                                [--what drain,pickup,enqueue,bulk,two] [--server own|test]
                                [--stats] [--py-spy OUT.svg]

``drain``: ``--jobs`` no-op jobs are enqueued, then ONE worker process (the real processor:
``queue.create_processor({...}, concurrency=10).run()``) drains them. Reported per job:
worker CPU (the subprocess's user+system time from ``os.wait4``, minus what it had used when
it reported ready, i.e. imports and set-up), server CPU (PostgreSQL: user+system time of the
worker's backend processes from ``/proc/<pid>/stat`` and, on an own server, of the whole
server process tree including exited children; Redis: ``INFO cpu`` deltas) and the drain
rate (first handler start to last completion, timed in the worker).
``pickup``: jobs added one by one at 200/s to an idle worker; handler start - add_job return.
``enqueue``: sequential ``add_job`` calls. ``bulk``: one ``add_jobs`` call of ``--jobs`` jobs
in chains of 10 (``batch_dep_ref``). ``two``: the drain by two worker processes.

``--server own`` (default) runs initdb into a temp dir and starts PostgreSQL with its defaults
(fsync, synchronous_commit and full_page_writes on; pg_stat_statements preloaded) and a Redis
without persistence, each on its own port, stopped at the end (and after 30 minutes in any
case). ``--server test`` reuses DATAQUEUE_TEST_PG_URL / DATAQUEUE_TEST_REDIS_URL (fsync off:
quick iterations only; server CPU then counts the worker's backends only).
``--stats`` prints the top statements (pg_stat_statements) / commands (INFO commandstats)
per job of the drain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from _scratch import add_worker_options

TEST_PG = os.environ.get(
    "DATAQUEUE_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
)
TEST_REDIS = os.environ.get("DATAQUEUE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
APP_NAME = "dqbench_worker"
CONCURRENCY = 10
SERVER_LIFETIME = 1800  # seconds: own servers stop by themselves even if this script dies
TICK = os.sysconf("SC_CLK_TCK")
WORKER_CHECKOUT: str | None = None

TARGETS = {
    "postgres": {"worker_us": 65, "server_us": 70, "drain": 8000, "p50": 2.0, "p99": 6.0,
                 "enqueue": 1800, "bulk": 60000},
    "redis": {"worker_us": 45, "server_us": 35, "drain": 10000, "p50": 0.8, "p99": 1.5,
              "enqueue": 5000, "bulk": 50000},
}  # fmt: skip


# -- servers ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres() -> dict[str, Any]:
    """Subprocess options running as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("postgres")

    def drop() -> None:
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    return {"preexec_fn": drop}


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else name


class OwnPostgres:
    """A throwaway PostgreSQL cluster with default (durable) settings."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="dqbench_pg_")
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.port = _free_port()
        data = os.path.join(self.dir, "data")
        subprocess.run(
            [_pg_bin("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-sync"],
            check=True, stdout=subprocess.DEVNULL, **_as_postgres(),
        )  # fmt: skip
        self._log = open(os.path.join(self.dir, "log"), "w")  # noqa: SIM115 - the server's life
        self.proc = subprocess.Popen(
            ["timeout", "--signal=INT", str(SERVER_LIFETIME), _pg_bin("postgres"), "-D", data,
             "-p", str(self.port), "-k", self.dir, "-c", "listen_addresses=127.0.0.1",
             "-c", "shared_preload_libraries=pg_stat_statements",
             "-c", "pg_stat_statements.track=all"],
            stdout=subprocess.DEVNULL, stderr=self._log,
            **_as_postgres(),
        )  # fmt: skip
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        import psycopg

        for _ in range(100):
            try:
                psycopg.connect(self.admin_url).close()
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the benchmark's PostgreSQL did not start")
        with psycopg.connect(self.admin_url) as conn:
            self.postmaster = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
            self.postmaster = _ppid(self.postmaster)
            settings = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN"
                    " ('fsync', 'synchronous_commit', 'full_page_writes', 'server_version')"
                ).fetchall()
            )
        self.settings = settings

    def stop(self) -> None:
        # timeout forwards the signal: fast shutdown
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class OwnRedis:
    def __init__(self) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            ["timeout", str(SERVER_LIFETIME), "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        import redis

        for _ in range(100):
            try:
                redis.Redis.from_url(self.url).ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the benchmark's Redis did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- process CPU --------------------------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def _ppid(pid: int) -> int:
    fields = _stat(pid)
    assert fields is not None
    return int(fields[1])


def _cpu_of(pid: int, children: bool = False) -> float:
    """utime+stime (and, with ``children``, of its exited, reaped children) in seconds."""
    f = _stat(pid)
    if f is None:
        return 0.0
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return ticks / TICK


def tree_cpu(root: int) -> float:
    """CPU of a process, its live children and every child it has reaped."""
    total = _cpu_of(root, children=True)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat(int(entry))
            if f is not None and int(f[1]) == root:
                total += _cpu_of(int(entry))
    return total


def tree_breakdown(root: int) -> dict[str, float]:
    """CPU seconds per process title of a server's live children (for --stats)."""
    out: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat(int(entry))
            if f is not None and int(f[1]) == root:
                try:
                    title = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0].decode()
                except OSError:
                    continue
                key = " ".join(title.split()[:3])
                out[key] = out.get(key, 0.0) + _cpu_of(int(entry))
    return out


# -- storage per run ----------------------------------------------------------------------------
class Storage:
    """A scratch database (PostgreSQL) or key prefix (Redis) on the chosen server."""

    def __init__(self, backend: str, server: Any) -> None:
        self.backend = backend
        self.server = server
        self.key_prefix: str | None = None
        if backend == "postgres":
            import psycopg

            admin = server.admin_url if server is not None else TEST_PG
            self.admin = admin
            self.dbname = f"dq_cpu_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.dbname}"')
            self.url = urlunsplit(urlsplit(admin)._replace(path="/" + self.dbname))
            if server is not None:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        else:
            self.url = server.url if server is not None else TEST_REDIS
            self.key_prefix = f"dqcpu_{uuid.uuid4().hex[:10]}:"

    def worker_url(self) -> str:
        if self.backend == "postgres":
            sep = "&" if "?" in self.url else "?"
            return f"{self.url}{sep}application_name={APP_NAME}"
        return self.url

    def options(self) -> dict[str, Any]:
        return {"key_prefix": self.key_prefix} if self.key_prefix else {}

    def queue(self) -> Any:
        from dataqueue import init_job_queue

        q = init_job_queue(self.url, **self.options())
        q.migrate()
        return q

    def drop(self) -> None:
        if self.backend == "postgres":
            import psycopg

            with psycopg.connect(self.admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        else:
            import redis

            client = redis.Redis.from_url(self.url)
            keys = list(client.scan_iter(match=f"*{self.key_prefix}*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
            client.close()

    # server-side CPU and statistics
    def backend_pids(self) -> list[int]:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,)
            ).fetchall()
        return [int(r[0]) for r in rows]

    def server_cpu(self) -> dict[str, float]:
        """Cumulative server CPU seconds: ``whole`` (own PostgreSQL: the process tree; Redis:
        INFO cpu) and, on PostgreSQL, ``backends`` (per pid, the worker's connections)."""
        if self.backend == "redis":
            import redis

            client = redis.Redis.from_url(self.url)
            info = client.info("cpu")
            client.close()
            return {"whole": float(info["used_cpu_sys"]) + float(info["used_cpu_user"])}
        out: dict[str, float] = {f"pid:{p}": _cpu_of(p) for p in self.backend_pids()}
        if self.server is not None:
            out["whole"] = tree_cpu(self.server.postmaster)
        return out

    def reset_stats(self) -> None:
        if self.backend == "redis":
            import redis

            client = redis.Redis.from_url(self.url)
            client.config_resetstat()
            client.close()
        elif self.server is not None:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute("SELECT pg_stat_statements_reset()")

    def print_stats(self, n: int) -> None:
        if self.backend == "redis":
            import redis

            client = redis.Redis.from_url(self.url)
            stats = client.info("commandstats")
            client.close()
            rows = sorted(
                ((k.removeprefix("cmdstat_"), v) for k, v in stats.items()),
                key=lambda kv: -kv[1]["usec"],
            )
            total = sum(v["calls"] for _, v in rows)
            print(f"  commands per job: {total / n:.2f}")
            for name, v in rows[:16]:
                print(
                    f"    {name:<14} {v['calls'] / n:7.2f}/job {v['usec'] / n:8.2f} us/job"
                    f" ({v['usec_per_call']:.2f} us/call)"
                )
            return
        if self.server is None:
            return
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT calls, total_exec_time, toplevel,"
                " regexp_replace(query, '\\s+', ' ', 'g')"
                " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 14"
            ).fetchall()
        print("  statements (exec time per job, calls per job):")
        for calls, total_ms, top, query in rows:
            print(
                f"    {total_ms * 1000 / n:8.2f} us/job {calls / n:6.3f} calls/job"
                f" {'top' if top else 'nested'}  {query[:110]}"
            )


# -- the worker process -------------------------------------------------------------------------
def _rusage() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def worker_main(args: argparse.Namespace) -> None:
    from dataqueue import init_async_job_queue

    opts: dict[str, Any] = {"key_prefix": args.key_prefix} if args.key_prefix else {}
    queue = init_async_job_queue(args.url, **opts)
    await queue.get_job(1)  # connect before the clock starts
    loop = asyncio.get_running_loop()
    starts: dict[int, float] = {}
    state: dict[str, Any] = {"count": 0, "first": None, "last": None}
    drained = asyncio.Event()
    want = args.n

    async def noop(payload: Any, ctx: Any) -> None:
        if state["first"] is None:
            state["first"] = time.time()
        if payload and "t" in payload:
            starts[ctx.job_id] = time.time()

    def on_completed(_: Any) -> None:
        state["count"] += 1
        state["last"] = time.time()
        if want and state["count"] >= want and not drained.is_set():
            state["cpu_at_drained"] = _rusage()
            state["sys_at_drained"] = resource.getrusage(resource.RUSAGE_SELF).ru_stime
            drained.set()

    queue.on("job:completed", on_completed)
    proc = queue.create_processor({"noop": noop}, concurrency=CONCURRENCY, poll_interval=5.0)
    print(json.dumps({"ready": True, "cpu": _rusage()}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # "go"
    cpu0 = _rusage()
    sys0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    run = loop.create_task(proc.run(handle_signals=False))
    if want:
        await drained.wait()
        print(json.dumps({"drained": True}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # "exit"
    proc.stop()
    await run
    await queue.close()
    end = state.get("cpu_at_drained", _rusage())
    print(
        json.dumps(
            {
                "n": state["count"],
                "first": state["first"],
                "last": state["last"],
                "cpu_drain": end - cpu0,
                "sys_drain": state.get("sys_at_drained", 0.0) - sys0,
                "cpu_go": cpu0,
                "starts": starts,
            }
        ),
        flush=True,
    )


class Worker:
    def __init__(self, storage: Storage, n: int | None) -> None:
        cmd = [sys.executable, __file__, "--role", "worker", "--url", storage.worker_url()]
        if storage.key_prefix:
            cmd += ["--key-prefix", storage.key_prefix]
        if n:
            cmd += ["--n", str(n)]
        env = None
        if WORKER_CHECKOUT:  # --worker-checkout: the worker runs another checkout's package
            env = {**os.environ, "PYTHONPATH": os.path.join(WORKER_CHECKOUT, "python")}
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.ready = json.loads(self._line())
        assert self.ready.get("ready")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the worker ended early")
        return line

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def wait_drained(self) -> None:
        assert json.loads(self._line()).get("drained")

    def finish(self) -> dict[str, Any]:
        self.send("exit")
        result = json.loads(self._line())
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        result["cpu_total"] = usage.ru_utime + usage.ru_stime
        return result  # type: ignore[no-any-return]


# -- measurements -------------------------------------------------------------------------------
def _enqueue_noops(q: Any, n: int) -> None:
    for i in range(0, n, 1000):
        q.add_jobs([{"job_type": "noop", "payload": {}} for _ in range(min(1000, n - i))])


def _cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    pids = [k for k in after if k.startswith("pid:")]
    out = {"backends": sum(after[k] - before.get(k, 0.0) for k in pids)}
    if "whole" in after:
        out["whole"] = after["whole"] - before["whole"]
    return out


def measure_drain(storage: Storage, n: int, stats: bool, py_spy: str | None) -> dict[str, Any]:
    q = storage.queue()
    _enqueue_noops(q, n)
    q.close()
    if storage.backend == "postgres" and storage.server is not None:
        import psycopg

        with psycopg.connect(storage.url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # as a settled table would be; not part of the drain
    worker = Worker(storage, n)
    storage.reset_stats()
    spy = None
    if py_spy:
        spy = subprocess.Popen(
            ["py-spy", "record", "--pid", str(worker.proc.pid), "-r", "250", "-o", py_spy,
             "--nonblocking"] + (["-f", "raw"] if py_spy.endswith(".txt") else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)
    before = storage.server_cpu()
    tree0 = (
        tree_breakdown(storage.server.postmaster)
        if stats and storage.server and storage.backend == "postgres"
        else {}
    )
    worker.send("go")
    worker.wait_drained()
    after = storage.server_cpu()
    if tree0:
        tree1 = tree_breakdown(storage.server.postmaster)
        print("  server processes (us/job, live ones):")
        for key, v in sorted(tree1.items(), key=lambda kv: -(kv[1] - tree0.get(kv[0], 0.0))):
            d = (v - tree0.get(key, 0.0)) * 1e6 / n
            if d > 0.5:
                print(f"    {d:8.1f}  {key}")
    result = worker.finish()
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
    whole_after = storage.server_cpu()  # its backends have exited and been reaped now
    server = _cpu_delta(before, after)
    if "whole" in whole_after and "whole" in before:
        server["whole"] = whole_after["whole"] - before["whole"]
    elapsed = result["last"] - result["first"]
    out = {
        "n": result["n"],
        "drain": result["n"] / elapsed if elapsed > 0 else float("nan"),
        "worker_us": (result["cpu_total"] - result["cpu_go"]) * 1e6 / n,
        "worker_window_us": result["cpu_drain"] * 1e6 / n,
        "worker_sys_us": result["sys_drain"] * 1e6 / n,
        "server_us": server.get("whole", server["backends"]) * 1e6 / n,
        "backends_us": server["backends"] * 1e6 / n if storage.backend == "postgres" else None,
    }
    print(f"  worker: {out['worker_sys_us']:.1f} us/job of its drain-window CPU in the kernel")
    if stats:
        storage.print_stats(n)
    return out


def measure_two(storage: Storage, n: int) -> dict[str, Any]:
    q = storage.queue()
    _enqueue_noops(q, n)
    workers = [Worker(storage, None), Worker(storage, None)]
    for w in workers:
        w.send("go")
    from dataqueue import JobStatus

    deadline = time.time() + 300
    while time.time() < deadline:
        counts = q._backend.count_jobs(n + 1, [JobStatus.COMPLETED])
        if sum(c.count for c in counts) >= n:
            break
        time.sleep(0.05)
    results = [w.finish() for w in workers]
    q.close()
    first = min(r["first"] for r in results if r["first"])
    last = max(r["last"] for r in results if r["last"])
    return {"two_drain": sum(r["n"] for r in results) / (last - first)}


def measure_pickup(storage: Storage, samples: int, rate: float) -> dict[str, Any]:
    q = storage.queue()
    worker = Worker(storage, samples)
    worker.send("go")
    time.sleep(1.0)
    interval = 1.0 / rate
    next_at = time.perf_counter()
    sent: dict[int, float] = {}
    for _ in range(samples):
        next_at += interval
        job_id = q.add_job("noop", {"t": 1})
        sent[job_id] = time.time()
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    worker.wait_drained()
    starts = {int(k): v for k, v in worker.finish()["starts"].items()}
    q.close()
    pickup = sorted((starts[i] - t) * 1000.0 for i, t in sent.items())
    return {"p50": statistics.median(pickup), "p99": pickup[int(len(pickup) * 0.99)]}


def measure_enqueue(storage: Storage, n: int) -> dict[str, Any]:
    q = storage.queue()
    for _ in range(50):  # warm up: connections, prepared statements
        q.add_job("noop", {"i": 0})
    t = time.perf_counter()
    for i in range(n):
        q.add_job("noop", {"i": i})
    rate = n / (time.perf_counter() - t)
    q.close()
    return {"enqueue": rate}


def measure_bulk(storage: Storage, n: int) -> dict[str, Any]:
    from dataqueue import batch_dep_ref

    q = storage.queue()
    q.add_jobs([{"job_type": "noop", "payload": {}}])  # warm up
    jobs: list[dict[str, Any]] = []
    for i in range(n):
        job: dict[str, Any] = {"job_type": "noop", "payload": {"i": i}}
        if i % 10:
            job["depends_on"] = {"job_ids": [batch_dep_ref(i - 1)]}
        jobs.append(job)
    t = time.perf_counter()
    q.add_jobs(jobs)
    rate = n / (time.perf_counter() - t)
    q.close()
    return {"bulk": rate}


def run_backend(backend: str, args: argparse.Namespace, server: Any) -> dict[str, Any]:
    what = set(args.what.split(","))
    row: dict[str, Any] = {"backend": backend}
    steps = [
        ("drain", lambda s: measure_drain(s, args.jobs, args.stats, args.py_spy)),
        ("two", lambda s: measure_two(s, args.jobs)),
        ("pickup", lambda s: measure_pickup(s, args.samples, args.rate)),
        ("enqueue", lambda s: measure_enqueue(s, args.enqueue_jobs)),
        ("bulk", lambda s: measure_bulk(s, args.jobs)),
    ]
    for name, fn in steps:
        if name not in what:
            continue
        storage = Storage(backend, server)
        try:
            row.update(fn(storage))
        finally:
            storage.drop()
    return row


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgres", "redis", "both"], default="both")
    parser.add_argument("--server", choices=["own", "test"], default="own")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--what", default="drain")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--enqueue-jobs", type=int, default=3000)
    parser.add_argument("--stats", action="store_true")
    parser.add_argument("--py-spy", default=None)
    parser.add_argument(
        "--worker-checkout",
        default=None,
        help="run the worker from this checkout (its python/ first on PYTHONPATH): A/B runs",
    )
    add_worker_options(parser)
    args = parser.parse_args()
    if args.role == "worker":
        profile_to = os.environ.get("DQBENCH_CPROFILE")
        if not profile_to:
            asyncio.run(worker_main(args))
            return
        import cProfile

        # CPU-time clock: what the worker spends, not where it waits (or is preempted)
        prof = cProfile.Profile(time.process_time)
        prof.runcall(asyncio.run, worker_main(args))
        prof.dump_stats(profile_to)
        return
    global WORKER_CHECKOUT
    WORKER_CHECKOUT = args.worker_checkout
    random.seed(1)
    backends = ["postgres", "redis"] if args.backend == "both" else [args.backend]
    rows = []
    for backend in backends:
        server: Any = None
        if args.server == "own":
            server = OwnPostgres() if backend == "postgres" else OwnRedis()
        try:
            if backend == "postgres" and server is not None:
                print(f"postgres settings: {server.settings}", flush=True)
            print(f"[{backend}]", flush=True)
            rows.append(run_backend(backend, args, server))
        finally:
            if server is not None:
                server.stop()
    load = os.getloadavg()
    print()
    print(
        f"{args.jobs} no-op jobs, one worker process, concurrency {CONCURRENCY};"
        f" {args.server} servers; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    header = (
        f"{'backend':<9} {'worker us/job':>14} {'(window)':>9} {'server us/job':>14}"
        f" {'(backends)':>10} {'drain/s':>8} {'2 workers/s':>11} {'pickup p50/p99 ms':>18}"
        f" {'enqueue/s':>9} {'bulk/s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        t = TARGETS[r["backend"]]
        print(
            f"{r['backend']:<9} {_fmt(r.get('worker_us'), '14.1f')} "
            f"{_fmt(r.get('worker_window_us'), '9.1f')} {_fmt(r.get('server_us'), '14.1f')}"
            f" {_fmt(r.get('backends_us'), '10.1f')} {_fmt(r.get('drain'), '8.0f')}"
            f" {_fmt(r.get('two_drain'), '11.0f')}"
            f" {_fmt(r.get('p50'), '8.2f')} / {_fmt(r.get('p99'), '<7.2f')}"
            f" {_fmt(r.get('enqueue'), '9.0f')} {_fmt(r.get('bulk'), '8.0f')}"
        )
        print(
            f"{'target':<9} {t['worker_us']:>14} {'':>9} {t['server_us']:>14} {'':>10}"
            f" {t['drain']:>8} {'1.5x':>11} {t['p50']:>8} / {t['p99']:<7}"
            f" {t['enqueue']:>9} {t['bulk']:>8}"
        )


if __name__ == "__main__":
    main()
