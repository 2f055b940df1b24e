"""dataqueue side by side with its peers, on its own durable PostgreSQL and Redis.

    python benches/peers/run.py [--only NAMES] [--jobs N] [--reps N] [--quick]

Starts a PostgreSQL cluster (initdb into a temp dir; server defaults, so fsync,
synchronous_commit and full_page_writes are on) and a redis-server (append-only file,
fsync every second, unless --redis-persistence says otherwise) on free ports; never the
test servers. Then, in interleaved repetitions (every system once per repetition, the order
rotated), runs each system in a process of its own (``harness.py``) through its own worker
command on the same no-op workload, and reports per system: drain jobs/s (``--jobs`` jobs
enqueued, then one worker process at concurrency 10 runs them), single enqueue jobs/s
(``--single`` sequential calls), bulk enqueue jobs/s (``--jobs`` jobs through the library's
bulk API), pickup latency p50/p99 at ``--rate`` jobs/s (enqueue time in the payload ->
handler start). Medians with min-max, and the ratio to the best peer of the same backend
family, as markdown (stdout and ``peers.md``), the raw numbers (``peers.json``) and a chart
(``peers.png``) under ``--out`` (default benches/peers/results/; ``--quick``: results/quick/).

The peers come from the ``bench`` extra (``pip install -e '.[bench]'`` or
``DQ_EXTRAS=postgres,redis,cli,dev,bench bash tools/bootstrap.sh``); nothing is installed at
run time, and a system whose packages are missing is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from adapters import SYSTEMS  # noqa: E402
from report import chart, full_table, notes, summarize, summary_table  # noqa: E402
from servers import REDIS_PERSISTENCE, PgServer, RedisServer  # noqa: E402

QUICK = {"jobs": 300, "single": 100, "samples": 60, "reps": 1}
DEFAULTS = {"jobs": 10_000, "single": 1_000, "samples": 1_000, "reps": 3}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def select(only: str | None) -> list[str]:
    """``--only``: comma-separated names, each a system or a prefix of some
    (``saq`` = saq-postgres and saq-redis, ``dataqueue`` = both backends)."""
    if not only:
        return list(SYSTEMS)
    wanted: set[str] = set()
    for part in (p.strip() for p in only.split(",")):
        if not part:
            continue
        hits = [s for s in SYSTEMS if s == part or s.startswith(part + "-")]
        if not hits:
            raise SystemExit(f"--only: unknown system {part!r}; known: {', '.join(SYSTEMS)}")
        wanted.update(hits)
    return [s for s in SYSTEMS if s in wanted]


def machine() -> dict[str, Any]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run_one(name: str, args: argparse.Namespace, pg: PgServer | None, rd: RedisServer | None,
            workdir: str) -> dict[str, Any]:  # fmt: skip
    cls = SYSTEMS[name]
    cmd = [
        sys.executable, os.path.join(HERE, "harness.py"), "--system", name,
        "--jobs", str(args.jobs), "--single", str(args.single), "--samples", str(args.samples),
        "--rate", str(args.rate), "--budget", str(args.budget), "--workdir", workdir,
    ]  # fmt: skip
    if cls.family == "postgres":
        assert pg is not None
        cmd += ["--url", pg.url, "--admin-url", pg.admin_url]
    else:
        assert rd is not None
        cmd += ["--url", rd.url]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        result: dict[str, Any] = {
            "system": name,
            "errors": {"harness": f"exit {proc.returncode}: {proc.stderr[-2000:]}"},
        }
    else:
        result = json.loads(lines[-1])
    result["seconds"] = time.monotonic() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", help="comma-separated systems (or prefixes): " + ", ".join(SYSTEMS)
    )
    parser.add_argument("--jobs", type=int, help="jobs drained and bulk-enqueued (10000)")
    parser.add_argument("--reps", type=int, help="interleaved repetitions (3)")
    parser.add_argument("--single", type=int, help="sequential single enqueues (1000)")
    parser.add_argument("--samples", type=int, help="latency samples (1000)")
    parser.add_argument("--rate", type=float, default=200.0, help="latency rate, jobs/s (200)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 300 jobs, 100 single, 60 samples, 1 rep"
    )
    parser.add_argument("--budget", type=float, default=120.0,
                        help="seconds for the single enqueues and for the drain of one system "
                        "(slower: measured over the jobs done by then) (120)")  # fmt: skip
    parser.add_argument("--out", help="results folder (benches/peers/results)")
    parser.add_argument("--redis-persistence", choices=sorted(REDIS_PERSISTENCE),
                        default="everysec", help="AOF fsync policy or none (everysec)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds one system's repetition may take")  # fmt: skip
    args = parser.parse_args()
    base = QUICK if args.quick else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    out = args.out or os.path.join(HERE, "results", "quick" if args.quick else "")
    os.makedirs(out, exist_ok=True)

    systems, skipped = [], {}
    for name in select(args.only):
        missing = SYSTEMS[name].missing()
        if missing:
            skipped[name] = f"not installed: {', '.join(missing)} (the `bench` extra)"
            log(f"skipped {name}: {skipped[name]}")
        else:
            systems.append(name)
    if not systems:
        raise SystemExit("no system to run")

    families = {SYSTEMS[s].family for s in systems}
    pg = PgServer() if "postgres" in families else None
    rd = RedisServer(args.redis_persistence) if "redis" in families else None
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    load_before = os.getloadavg()
    workdir = tempfile.mkdtemp(prefix="dq-peers-run-")
    try:
        if pg:
            pg.start()
        if rd:
            rd.start()
        servers = {
            "postgres": pg.describe() if pg else None,
            "redis": rd.describe() if rd else None,
        }
        for s in servers.values():
            if s:
                log(s)
        for rep in range(args.reps):
            order = systems[rep % len(systems) :] + systems[: rep % len(systems)]
            for name in order:
                result = run_one(name, args, pg, rd, workdir)
                result["rep"] = rep
                runs.append(result)
                shown = ", ".join(
                    f"{k} {result[k]:,.2f}" for k in ("drain", "single", "bulk", "p50", "p99")
                    if result.get(k) is not None
                )  # fmt: skip
                log(f"rep {rep + 1}/{args.reps} {name}: {shown} ({result['seconds']:.0f} s)")
                for phase, done in result.get("partial", {}).items():
                    log(f"  {name} {phase}: only {done} jobs within --budget {args.budget:.0f} s")
                for phase, err in result.get("errors", {}).items():
                    log(f"  {name} {phase} failed: {err}")
    finally:
        if pg:
            pg.stop()
        if rd:
            rd.stop()
    elapsed = time.monotonic() - started
    summary = summarize(runs, systems)
    partial = sorted({(r["system"], k, v) for r in runs for k, v in r.get("partial", {}).items()})
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "servers": servers,
        "versions": {s: SYSTEMS[s].versions() for s in systems},
        "skipped": skipped,
        "settings": {k: getattr(args, k) for k in ("jobs", "single", "samples", "rate", "reps")},
        "seconds": elapsed,
    }
    m = meta["machine"]
    title = (
        f"{args.jobs:,} no-op jobs, one worker process at concurrency 10; latency at "
        f"{args.rate:.0f} jobs/s; medians of {args.reps} interleaved runs. "
        f"{m['cores']} cores ({m['cpu']}), load average before {load_before[0]:.2f}"
    )
    server_line = "; ".join(s for s in servers.values() if s)
    dists = {d: v for s in systems for d, v in SYSTEMS[s].versions().items()}
    versions = ", ".join(f"{d} {v}" for d, v in dists.items())
    text = "\n\n".join(
        [
            title + ".  \n" + server_line + ".  \n" + versions + ".",
            summary_table(summary, systems),
            full_table(summary, systems),
            "Ratio (bold): times better than the best peer of the backend family (1.00x is "
            "that peer): median/best for rates, best/median for latencies, so above 1.00x "
            "is better.",
            notes(systems),
        ]
        + ([f"Skipped: {', '.join(f'{k} ({v})' for k, v in skipped.items())}."] if skipped else [])
        + (
            [
                f"Stopped at the {args.budget:.0f} s budget (rate over the jobs done): "
                + ", ".join(f"{s} {k} ({v} jobs)" for s, k, v in partial)
                + "."
            ]
            if partial
            else []
        )
    )
    with open(os.path.join(out, "peers.md"), "w") as fh:
        fh.write(text + "\n")
    with open(os.path.join(out, "peers.json"), "w") as fh:
        json.dump({"meta": meta, "summary": summary, "runs": runs}, fh, indent=1)
    png = os.path.join(out, "peers.png")
    drew = chart(summary, systems, title + "\n" + server_line, png)
    print(text)
    chart_note = ", peers.png" if drew else " (matplotlib missing: no chart)"
    log(f"\nwrote {out}/peers.md, peers.json{chart_note} in {elapsed:.0f} s")
    if any(r.get("errors") for r in runs):
        log(f"worker logs and record files: {workdir}")
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
