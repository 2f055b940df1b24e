"""The chaos run: a mixed workload, real worker processes, injected faults, and the checks.

One :func:`run_scenario` call drives one scenario on one backend and returns a report (a dict)
with the invariant counts (every one must be 0) and the numbers at-least-once allows.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from _connections import kill_named, named
from dataqueue import DependsOn, JobStatus, batch_dep_ref, init_job_queue

WORKER_SCRIPT = str(Path(__file__).with_name("_worker.py"))
JOB_TYPE = "chaos"
DESIGNED_ATTEMPTS = 10  # room for attempts consumed by killed workers
FAILING_ATTEMPTS = 2
RETRY_DELAY = 1  # seconds, no backoff: flaky and failing jobs retry quickly
WORKER_TAG = "dqchaos-w"  # names the workers' connections (the ones the killer drops)


@dataclass
class Scenario:
    name: str
    faults: frozenset[str]  # sigkill, connkill, restart, sigstop, client
    jobs: int
    long_jobs: bool = False  # 1.5 s jobs, so a stopped worker is mid-run


@dataclass
class Expect:
    kind: str
    final: str  # completed / failed / cancelled
    runs: int  # designed handler runs (retries included)
    prereqs: list[int] = field(default_factory=list)
    drain: str | None = None  # tag-drain dependent: the tag it waits on
    tags: list[str] = field(default_factory=list)


# -- workload ----------------------------------------------------------------------------


def _units(rng: random.Random, n: int, long_jobs: bool) -> list[list[dict[str, Any]]]:
    """Lists of job specs; ``dep`` (indexes in the unit) and ``role`` describe each job."""
    units: list[list[dict[str, Any]]] = []
    count = 0
    drain_no = 0
    while count < n:
        r = rng.random()
        if long_jobs and r < 0.1:
            unit = [{"k": "long", "ms": 1500}]
        elif r < 0.40:
            unit = [{"k": "noop"}]
        elif r < 0.60:
            unit = [{"k": "sleep", "ms": 50}]
        elif r < 0.70:
            unit = [{"k": "sleep", "ms": 10}, {"k": "sleep", "ms": 10, "dep": [0]},
                    {"k": "noop", "dep": [1]}]  # fmt: skip
        elif r < 0.78:
            drain_no += 1
            tag = f"drain-{drain_no}"
            unit = [{"k": "sleep", "ms": 20, "tags": [tag]} for _ in range(3)]
            unit.append({"k": "noop", "drain": tag})
        elif r < 0.90:
            unit = [{"k": "flaky", "fails": rng.choice((1, 2))}]
        else:
            unit = [{"k": "fail"}, {"k": "noop", "dep": [0]}, {"k": "noop", "dep": [1]}]
        units.append(unit)
        count += len(unit)
    return units


def enqueue(q: Any, units: list[list[dict[str, Any]]], chunk: int = 500) -> dict[int, Expect]:
    """Add the workload in atomic batches of whole units; return the expectations by id."""
    expect: dict[int, Expect] = {}
    pending: list[list[dict[str, Any]]] = []

    def flush() -> None:
        jobs: list[dict[str, Any]] = []
        metas: list[tuple[dict[str, Any], list[int]]] = []
        for unit in pending:
            base = len(jobs)
            for spec in unit:
                payload = {k: v for k, v in spec.items() if k in ("k", "ms", "fails")}
                job: dict[str, Any] = {"job_type": JOB_TYPE, "payload": payload}
                if spec["k"] == "fail":
                    job.update(max_attempts=FAILING_ATTEMPTS)
                else:
                    job.update(max_attempts=DESIGNED_ATTEMPTS)
                job.update(retry_delay=RETRY_DELAY, retry_backoff=False)
                if spec.get("tags"):
                    job["tags"] = spec["tags"]
                deps = [base + d for d in spec.get("dep", [])]
                if deps:
                    job["depends_on"] = DependsOn(job_ids=[batch_dep_ref(d) for d in deps])
                if spec.get("drain"):
                    job["depends_on"] = DependsOn(tags=[spec["drain"]])
                jobs.append(job)
                metas.append((spec, deps))
        ids = _retrying(lambda: q.add_jobs(jobs))
        for i, (spec, deps) in enumerate(metas):
            expect[ids[i]] = Expect(spec["k"], "completed", 1, [ids[d] for d in deps],
                                    spec.get("drain"), list(spec.get("tags", [])))  # fmt: skip
        # designed outcomes: a failing job fails; everything downstream of it is cancelled
        for i, (spec, _deps) in enumerate(metas):
            e = expect[ids[i]]
            if spec["k"] == "fail":
                e.final, e.runs = "failed", FAILING_ATTEMPTS
            elif spec["k"] == "flaky":
                e.runs = spec["fails"] + 1
            if any(expect[p].final != "completed" for p in e.prereqs):
                e.final, e.runs = "cancelled", 0
        pending.clear()

    size = 0
    for unit in units:
        pending.append(unit)
        size += len(unit)
        if size >= chunk:
            flush()
            size = 0
    if pending:
        flush()
    return expect


def _retrying(fn: Any, tries: int = 60) -> Any:
    """The orchestrator's own calls ride out server restarts too."""
    for i in range(tries):
        try:
            return fn()
        except Exception:
            if i == tries - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


# -- storage access ----------------------------------------------------------------------


class Store:
    """Reads the run's storage directly (counts, jobs, completion events)."""

    def __init__(self, backend: str, url: str, prefix: str | None) -> None:
        self.backend, self.url, self.prefix = backend, url, prefix
        opts = {} if prefix is None else {"key_prefix": prefix}
        self.q = init_job_queue(url, **opts)

    def _pg_counts(self, query: str) -> dict[Any, int]:
        """PostgreSQL: ``{key: count}`` from a ``SELECT key, count(*) ...``."""
        import psycopg

        with psycopg.connect(self.url, connect_timeout=3) as conn:
            return {key: int(n) for key, n in conn.execute(query).fetchall()}

    def counts(self) -> dict[str, int]:
        if self.backend == "postgres":
            return self._pg_counts(
                "SELECT status || CASE WHEN status = 'failed' AND next_attempt_at IS NOT NULL"
                " THEN '+retry' ELSE '' END, count(*) FROM job_queue GROUP BY 1"
            )
        client = self.q.get_redis_client()
        base = self.q._backend.keys.base
        out = {s.value: int(client.zcard(f"{base}st:{s.value}")) for s in JobStatus}
        retrying = int(client.zcard(f"{base}delayed"))
        return {**out, "failed+retry": min(retrying, out["failed"])}

    def jobs(self) -> dict[int, Any]:
        out: dict[int, Any] = {}
        offset = 0
        while True:
            page = self.q.get_all_jobs(1000, offset)
            for job in page:
                out[job.id] = job
            if len(page) < 1000:
                return out
            offset += 1000

    def completed_events(self, ids: list[int]) -> dict[int, int]:
        if self.backend == "postgres":
            return self._pg_counts(
                "SELECT job_id, count(*) FROM job_events WHERE event_type = 'completed'"
                " GROUP BY job_id"
            )
        client = self.q.get_redis_client()
        keys = self.q._backend.keys
        out: dict[int, int] = {}
        for i in range(0, len(ids), 1000):
            pipe = client.pipeline(transaction=False)
            chunk = ids[i : i + 1000]
            for job_id in chunk:
                pipe.lrange(keys.events(job_id), 0, -1)
            for job_id, raw in zip(chunk, pipe.execute(), strict=True):
                out[job_id] = sum(1 for e in raw if json.loads(e).get("event_type") == "completed")
        return out

    def count_tag(self, tag: str) -> int:
        return len(self.q.get_jobs_by_tags([tag], "all", 100_000, 0))

    def close(self) -> None:
        self.q.close()


# -- processes ---------------------------------------------------------------------------


class Workers:
    """Keeps ``n`` worker processes running (a killed one is replaced)."""

    def __init__(self, n: int, cfg: dict[str, Any]) -> None:
        self.n, self.cfg = n, cfg
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stopped: dict[int, tuple[float, float | None]] = {}  # pid → SIGSTOP span
        self._index = 0

    def spawn(self) -> None:
        self._index += 1
        cfg = {**self.cfg, "mode": "worker", "index": self._index}
        log = open(os.path.join(self.cfg["ledger"], f"worker-{self._index}.log"), "ab")  # noqa: SIM115
        with log:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                [sys.executable, WORKER_SCRIPT, json.dumps(cfg)], stdout=log, stderr=log
            )
        self.procs.append(proc)

    def fill(self) -> None:
        self.procs = [p for p in self.procs if p.poll() is None]
        while len(self.procs) < self.n:
            self.spawn()

    def sigkill_one(self, rng: random.Random) -> None:
        live = [p for p in self.procs if p.poll() is None and p.pid not in self._stopped_now()]
        if live:
            rng.choice(live).kill()
        self.fill()

    def _stopped_now(self) -> set[int]:
        return {pid for pid, (_, end) in self.stopped.items() if end is None}

    def sigstop_one(self, rng: random.Random) -> subprocess.Popen[bytes] | None:
        live = [p for p in self.procs if p.poll() is None]
        if not live:
            return None
        victim = rng.choice(live)
        victim.send_signal(signal.SIGSTOP)
        self.stopped[victim.pid] = (time.time(), None)
        return victim

    def sigcont(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
        start, _ = self.stopped[proc.pid]
        self.stopped[proc.pid] = (start, time.time())

    def stop(self) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGCONT)
                p.terminate()
        end = time.monotonic() + 10
        for p in self.procs:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def kill_connections(backend: str, url: str) -> int:
    """Drop every server connection of the workers (pg_terminate_backend / CLIENT KILL)."""
    try:
        return kill_named(backend, url, WORKER_TAG)
    except Exception:
        return 0  # the server may be restarting


def kill_client_mid_batch(cfg: dict[str, Any], rng: random.Random, size: int) -> str:
    """Start a client adding ``size`` jobs in one add_jobs call; SIGKILL it mid-call."""
    batch = f"batch-{uuid.uuid4().hex[:8]}"
    ccfg = {**cfg, "mode": "client", "batch": batch, "size": size}
    proc = subprocess.Popen(
        [sys.executable, WORKER_SCRIPT, json.dumps(ccfg)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "ready": the jobs are built, add_jobs starts now
    assert line.strip() == b"ready", line
    time.sleep(rng.uniform(0.0, 1.5))  # before, during or after the call
    proc.kill()
    proc.wait()
    return batch


# -- the run -----------------------------------------------------------------------------


def run_scenario(
    backend: str, server: Any, scenario: Scenario, workdir: str, *, seed: int = 0,
    workers: int = 4, lease: float = 5.0, deadline_s: float = 240.0,
) -> dict[str, Any]:  # fmt: skip
    rng = random.Random(seed)
    marker = uuid.uuid4().hex[:10]
    if backend == "postgres":
        url = server.database(f"chaos_{scenario.name}_{marker}")
        client_url = server.database(f"chaos_{scenario.name}_{marker}_client")
        prefix = client_prefix = None
    else:
        url = client_url = server.url
        prefix, client_prefix = f"chaos{marker}:", f"chaos{marker}c:"
    worker_url = named(backend, url, WORKER_TAG)
    store = Store(backend, url, prefix)
    store.q.migrate()
    client_store = Store(backend, client_url, client_prefix)
    client_store.q.migrate()
    ledger = os.path.join(workdir, f"ledger-{backend}-{scenario.name}-{marker}")
    os.makedirs(ledger)
    opts = {} if prefix is None else {"key_prefix": prefix}
    cfg = {"url": worker_url, "opts": opts, "ledger": ledger, "concurrency": 8, "lease": lease}
    ccfg = {"url": client_url, "opts": {} if client_prefix is None else
            {"key_prefix": client_prefix}}  # fmt: skip
    pool = Workers(workers, cfg)
    supervisor = store.q.create_supervisor(
        interval=1.0, cleanup_jobs_days_to_keep=0, cleanup_events_days_to_keep=0
    )
    faults: dict[str, list[float]] = defaultdict(list)
    batches: list[str] = []
    started = time.time()
    pool.fill()
    supervisor.start_in_background()
    expect: dict[int, Expect] = {}
    units = _units(rng, scenario.jobs, scenario.long_jobs)
    adder = threading.Thread(target=lambda: expect.update(enqueue(store.q, units)))
    adder.start()
    n_total = sum(len(u) for u in units)
    restarts = ["fast", "immediate"] if backend == "postgres" else ["kill", "kill"]
    next_kill = time.time() + rng.uniform(1, 3)
    next_conn = time.time() + 1
    stopped: tuple[Any, float] | None = None
    stops_left = 2 if "sigstop" in scenario.faults else 0
    clients_left = 3 if "client" in scenario.faults else 0
    done = False
    counts: dict[str, int] = {}
    while time.time() - started < deadline_s:
        now = time.time()
        try:
            counts = store.counts()
        except Exception:
            counts = {}
        finished = (
            counts.get("completed", 0)
            + counts.get("cancelled", 0)
            + (counts.get("failed", 0) - counts.get("failed+retry", 0))
        )
        progress = finished / n_total
        if not adder.is_alive() and finished >= n_total:
            done = True
            break
        if "sigkill" in scenario.faults and now >= next_kill:
            pool.sigkill_one(rng)
            faults["sigkill"].append(now)
            next_kill = now + rng.uniform(1, 3)
        if "connkill" in scenario.faults and now >= next_conn:
            if kill_connections(backend, url):
                faults["connkill"].append(now)
            next_conn = now + 1
        if "restart" in scenario.faults and restarts and progress >= (0.2, 0.55)[2 - len(restarts)]:
            mode = restarts.pop(0)
            faults[f"restart-{mode}"].append(time.time())
            server.restart(mode)
        if stopped is not None and now >= stopped[1]:
            pool.sigcont(stopped[0])
            stopped = None
        if stops_left and stopped is None and progress >= (0.15, 0.5)[2 - stops_left]:
            victim = pool.sigstop_one(rng)
            if victim is not None:
                faults["sigstop"].append(now)
                stopped = (victim, now + lease + 2.0)  # past its lease
            stops_left -= 1
        if clients_left and progress >= 0.1 * (4 - clients_left):
            batches.append(kill_client_mid_batch(ccfg, rng, 10_000))
            faults["client-kill"].append(time.time())
            clients_left -= 1
        pool.procs = [p for p in pool.procs if p.poll() is None or p.pid in pool._stopped_now()]
        pool.fill()
        time.sleep(0.2)
    if stopped is not None:
        pool.sigcont(stopped[0])
    drained_at = time.time()
    adder.join(60)
    time.sleep(0.5)
    supervisor.stop_and_drain(10)
    _retrying(lambda: store.q.create_supervisor(
        cleanup_jobs_days_to_keep=0, cleanup_events_days_to_keep=0).start())  # fmt: skip
    pool.stop()
    report = check(store, client_store, expect, ledger, batches, faults, pool.stopped)
    report.update(
        scenario=scenario.name, backend=backend, jobs=len(expect), drained=done,
        seconds=round(drained_at - started, 1), faults={k: len(v) for k, v in faults.items()},
        final_counts=counts,
    )  # fmt: skip
    store.close()
    client_store.close()
    return report


# -- the checks --------------------------------------------------------------------------


def _read_ledger(directory: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in os.listdir(directory):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(directory, name)) as fh:
            rows.extend(json.loads(line) for line in fh if line.strip())
    return rows


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def check(
    store: Store, client_store: Store, expect: dict[int, Expect], ledger_dir: str,
    batches: list[str], faults: dict[str, list[float]], stopped: dict[int, Any],
) -> dict[str, Any]:  # fmt: skip
    jobs = store.jobs()
    events = store.completed_events(sorted(jobs))
    rows = _read_ledger(ledger_dir)
    runs: dict[int, list[dict[str, Any]]] = defaultdict(list)  # job → runs in start order
    open_runs: dict[tuple[int, int, int], dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: r["t"]):
        if r["e"] == "s":
            run = {"pid": r["p"], "v": r["v"], "a": r["a"], "start": r["t"], "end": None,
                   "ok": None}  # fmt: skip
            runs[r["j"]].append(run)
            open_runs[(r["j"], r["p"], r["v"])] = run
        else:
            # the end line carries the lock version at the end (a run may adopt a new one)
            run = open_runs.pop((r["j"], r["p"], r["v"]), None)
            if run is None:
                cands = [x for x in runs[r["j"]] if x["pid"] == r["p"] and x["end"] is None]
                run = cands[-1] if cands else None
            if run is not None:
                run["end"], run["ok"] = r["t"], r["e"] == "ok"
    bad: dict[str, list[Any]] = defaultdict(list)
    reruns_after_finished = 0
    for job_id, e in expect.items():
        job = jobs.get(job_id)
        if job is None:
            bad["lost"].append(job_id)
            continue
        status = job.status.value
        if status in ("pending", "processing", "waiting") or (
            status == "failed" and job.next_attempt_at is not None
        ):
            bad["stuck"].append(job_id)
        elif status != e.final:
            bad["wrong_state"].append((job_id, e.kind, status, job.failure_reason))
        if events.get(job_id, 0) > 1:
            bad["duplicate_completions"].append(job_id)
        if job.attempts > job.max_attempts or any(r["a"] > job.max_attempts for r in runs[job_id]):
            bad["attempts"].append(job_id)
        if e.final == "failed" and status == "failed" and job.attempts != job.max_attempts:
            bad["attempts"].append(job_id)
        # order: no start before every prerequisite completed; none after a final failure
        my_runs = runs[job_id]
        first = min((r["start"] for r in my_runs), default=None)
        prereqs = list(e.prereqs)
        if e.drain:
            prereqs += [i for i, x in expect.items() if e.drain in x.tags]
        for p in prereqs:
            pj = jobs.get(p)
            if first is None or pj is None:
                continue
            done_at = _ts(pj.completed_at)
            if pj.status.value != "completed" or done_at is None or first < done_at:
                bad["order"].append((job_id, p))
        if e.final == "cancelled" and my_runs:
            bad["order"].append((job_id, "ran after a prerequisite's final failure"))
        # a stale worker's write never overwrote the result: the stored output is the
        # completing attempt's (completion keeps the lock version it was fenced by)
        if (
            status == "completed"
            and isinstance(job.output, dict)
            and job.output.get("v") != job.lock_version
        ):
            bad["stale_writes"].append((job_id, job.output, job.lock_version))
        # live overlapping runs: two runs of one job at once, both alive (neither killed,
        # neither SIGSTOPped meanwhile), or two in one worker process
        for i, a in enumerate(my_runs):
            for b in my_runs[i + 1 :]:
                a_end = a["end"] if a["end"] is not None else float("inf")
                if b["start"] >= a_end:
                    continue
                if a["pid"] == b["pid"]:
                    bad["overlapping_runs"].append((job_id, "same worker"))
                elif (
                    a["end"] is not None
                    and b["end"] is not None
                    and not (_was_stopped(stopped, a) or _was_stopped(stopped, b))
                ):
                    bad["overlapping_runs"].append((job_id, a["pid"], b["pid"]))
        # a re-run after a run that finished fine: its completion was lost or fenced off
        # (at-least-once allows it; the lost-reply handling keeps it rare)
        if e.final == "completed" and len(my_runs) > e.runs:
            reruns_after_finished += sum(1 for r in my_runs[:-1] if r["ok"])
    total_reruns = sum(max(0, len(runs[j]) - e.runs) for j, e in expect.items())
    batch_sizes = [client_store.count_tag(b) for b in batches]
    partial = [n for n in batch_sizes if n not in (0, 10_000)]
    recovery = 0.0
    ends = sorted(r["end"] for rs in runs.values() for r in rs if r["ok"])
    import bisect

    for kind, times in faults.items():
        if kind == "client-kill":
            continue
        for t in times:
            k = bisect.bisect_right(ends, t)
            if k < len(ends):
                recovery = max(recovery, ends[k] - t)
    per10k = 10_000 / max(1, len(expect))
    return {
        "lost": len(bad["lost"]),
        "stuck": len(bad["stuck"]),
        "wrong_state": len(bad["wrong_state"]),
        "duplicate_completions": len(bad["duplicate_completions"]),
        "order_violations": len(bad["order"]),
        "attempt_violations": len(bad["attempts"]),
        "stale_writes": len(bad["stale_writes"]),
        "overlapping_runs": len(bad["overlapping_runs"]),
        "partial_batches": len(partial),
        "batches": batch_sizes,
        "reruns": total_reruns,
        "reruns_per_10k": round(total_reruns * per10k, 1),
        "reruns_after_finished_run": reruns_after_finished,
        "max_recovery_s": round(recovery, 2),
        "examples": {k: v[:5] for k, v in bad.items() if v},
    }


def _was_stopped(stopped: dict[int, Any], run: dict[str, Any]) -> bool:
    span = stopped.get(run["pid"])
    if span is None:
        return False
    start, end = span
    return bool(start <= run["end"] and (end is None or end >= run["start"]))


INVARIANTS = (
    "lost", "stuck", "wrong_state", "duplicate_completions", "order_violations",
    "attempt_violations", "stale_writes", "overlapping_runs", "partial_batches",
)  # fmt: skip
