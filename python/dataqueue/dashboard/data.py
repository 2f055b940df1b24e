"""What the dashboard shows, computed from the queue (no HTTP here): the overview, a job's
detail, its "why is it not running?" answer, and JSON conversion of records.

Every read is bounded: counts come from ``count_jobs`` (capped per cell on PostgreSQL, exact
counts kept by the write scripts on Redis), the throughput chart from the most recent finishes
(``recent_finished``, a capped sample), live workers from the processing jobs (bounded by the
workers' concurrency).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final, TypeVar

from dataqueue.lifecycle import TERMINAL_STATUSES
from dataqueue.queue_async import AsyncJobQueue
from dataqueue.records import JobEvent, JobRecord, JobStatus, TokenStatus, to_json

__all__ = [
    "COUNT_CAP",
    "FINISHED_SAMPLE",
    "OverviewCache",
    "cascade_root",
    "duration",
    "gather_bounded",
    "job_detail",
    "overview",
    "to_json",
    "why_not_running",
]

#: PostgreSQL counts a cell of the per-type table exactly up to this many jobs, then shows
#: "1,000+" (Redis keeps exact counts as it writes: no cap there).
COUNT_CAP: Final = 1_000
#: The overview counts these per type; completed and cancelled jobs (the bulk of a large
#: queue) are shown as the last hour's finishes instead.
OVERVIEW_STATUSES: Final = (
    JobStatus.PENDING,
    JobStatus.PROCESSING,
    JobStatus.WAITING,
    JobStatus.FAILED,
)
#: The throughput chart is drawn from at most this many of the latest finishes.
FINISHED_SAMPLE: Final = 2_000
#: Live workers: at most this many processing jobs are read.
PROCESSING_SAMPLE: Final = 1_000
CHART_MINUTES: Final = 60

UTC = timezone.utc


#: Concurrent reads one request issues at most (a pool or client has few connections).
READ_CONCURRENCY: Final = 8

_T = TypeVar("_T")


async def gather_bounded(aws: Iterable[Awaitable[_T]], limit: int = READ_CONCURRENCY) -> list[_T]:
    """``asyncio.gather`` with at most ``limit`` awaitables running at once, in order."""
    sem = asyncio.Semaphore(limit)

    async def one(aw: Awaitable[_T]) -> _T:
        async with sem:
            return await aw

    return list(await asyncio.gather(*(one(a) for a in aws)))


async def overview(q: AsyncJobQueue) -> dict[str, Any]:
    """Per job type counts, the last hour's throughput and failures, and live workers."""
    backend = q._backend
    now = datetime.now(UTC)
    since = now - timedelta(minutes=CHART_MINUTES)
    counts, finished, processing = await asyncio.gather(
        backend.count_jobs(COUNT_CAP, OVERVIEW_STATUSES),
        backend.recent_finished(since, FINISHED_SAMPLE),
        q.get_jobs_by_status(JobStatus.PROCESSING, PROCESSING_SAMPLE),
    )
    types: dict[str, dict[str, Any]] = {}

    def row(job_type: str) -> dict[str, Any]:
        known = types.get(job_type)
        if known is not None:
            return known
        return types.setdefault(
            job_type,
            {
                "job_type": job_type,
                **{st.value: 0 for st in OVERVIEW_STATUSES},
                "capped": [],
                "blocked": 0,
                "completed_last_hour": 0,
                "failed_last_hour": 0,
                "cancelled_last_hour": 0,
                "oldest_pending_at": None,
                "oldest_pending_age_seconds": None,
            },
        )

    for c in counts:
        r = row(c.job_type)
        r[c.status.value] = c.count
        if c.capped:
            r["capped"].append(c.status.value)
        if c.status is JobStatus.PENDING:
            r["blocked"] = c.blocked
            if c.oldest_created_at is not None:
                r["oldest_pending_at"] = c.oldest_created_at.isoformat()
                r["oldest_pending_age_seconds"] = max(
                    0.0, (now - c.oldest_created_at).total_seconds()
                )
    buckets = [{"completed": 0, "failed": 0, "cancelled": 0} for _ in range(CHART_MINUTES)]
    for f in finished:
        r = row(f.job_type)
        if f.status is JobStatus.COMPLETED:
            r["completed_last_hour"] += 1
        elif f.status is JobStatus.FAILED:
            r["failed_last_hour"] += 1
        else:
            r["cancelled_last_hour"] += 1
        idx = int((now - f.finished_at).total_seconds() // 60)
        if 0 <= idx < CHART_MINUTES:
            buckets[CHART_MINUTES - 1 - idx][f.status.value] += 1
    # A full sample means older finishes of the hour were not read: the chart then covers only
    # the minutes after the oldest finish read.
    sample_full = len(finished) >= FINISHED_SAMPLE
    covered_from = finished[-1].finished_at.isoformat() if sample_full and finished else None
    workers: dict[str, list[dict[str, Any]]] = {}
    for job in processing:
        workers.setdefault(job.locked_by or "?", []).append(
            {
                "id": job.id,
                "job_type": job.job_type,
                "progress": job.progress,
                "started_at": job.locked_at.isoformat() if job.locked_at else None,
                "lease_expires_at": (
                    job.lease_expires_at.isoformat() if job.lease_expires_at else None
                ),
            }
        )
    totals = {st.value: sum(t[st.value] for t in types.values()) for st in OVERVIEW_STATUSES}
    return {
        "generated_at": now.isoformat(),
        "count_cap": COUNT_CAP,
        "types": [types[k] for k in sorted(types)],
        "totals": totals,
        "throughput": {
            "minutes": CHART_MINUTES,
            "buckets": buckets,
            "sample_full": sample_full,
            "covered_from": covered_from,
        },
        "workers": [
            {"worker_id": w, "in_flight": len(jobs), "jobs": jobs}
            for w, jobs in sorted(workers.items())
        ],
        "processing_sample_full": len(processing) >= PROCESSING_SAMPLE,
    }


class OverviewCache:
    """One overview computation shared by every viewer for ``ttl`` seconds, so N open
    dashboards cost the database what one does."""

    def __init__(self, q: AsyncJobQueue, ttl: float) -> None:
        self.q = q
        self.ttl = ttl
        self._value: dict[str, Any] | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> dict[str, Any]:
        async with self._lock:
            if self._value is None or time.monotonic() - self._at >= self.ttl:
                self._value = await overview(self.q)
                self._at = time.monotonic()
            return self._value

    def invalidate(self) -> None:
        self._value = None


def cascade_root(job: JobRecord, events: Sequence[JobEvent] | None = None) -> int | None:
    """The job whose failure or cancellation cascade-cancelled ``job`` (None if it was not)."""
    if job.status is not JobStatus.CANCELLED:
        return None
    for ev in reversed(events or []):
        meta = ev.metadata or {}
        if ev.event_type.value == "cancelled" and meta.get("dependency_cascade"):
            root = meta.get("root_job_id")
            return int(root) if isinstance(root, int) else None
    if job.pending_reason and job.pending_reason.startswith("{"):
        try:
            meta = json.loads(job.pending_reason)
        except ValueError:
            return None
        if isinstance(meta, dict) and meta.get("dependency_cascade"):
            root = meta.get("root_job_id")
            return int(root) if isinstance(root, int) else None
    return None


async def why_not_running(q: AsyncJobQueue, job: JobRecord) -> list[dict[str, Any]]:
    """Plain-language reasons why ``job`` is not running right now, most important first.
    Each item: ``{"kind", "text", ...details}``."""
    backend = q._backend
    now = datetime.now(UTC)
    out: list[dict[str, Any]] = []
    st = job.status
    if st is JobStatus.PROCESSING:
        return [
            {
                "kind": "running",
                "text": f"It is running: worker {job.locked_by or '?'} holds it "
                f"(attempt {job.attempts} of {job.max_attempts}).",
            }
        ]
    if st is JobStatus.COMPLETED:
        return [{"kind": "finished", "text": "It has completed."}]
    if st is JobStatus.CANCELLED:
        events = await q.get_job_events(job.id)
        root = cascade_root(job, events)
        if root is not None:
            root_job = await q.get_job(root)
            what = (
                "failed with no attempts left"
                if root_job is not None and root_job.status is JobStatus.FAILED
                else "was cancelled"
                if root_job is not None
                else "failed or was cancelled"
            )
            return [
                {
                    "kind": "cascade",
                    "root_job_id": root,
                    "text": f"It was cancelled because job #{root} {what}, and this job "
                    "depends on it (directly or through other jobs): a dependency cascade.",
                }
            ]
        return [{"kind": "finished", "text": "It was cancelled."}]
    if st is JobStatus.FAILED:
        if job.next_attempt_at is not None and job.attempts < job.max_attempts:
            out.append(
                {
                    "kind": "retry_at",
                    "at": job.next_attempt_at.isoformat(),
                    "text": f"Attempt {job.attempts} of {job.max_attempts} failed; it retries "
                    f"at {_when(job.next_attempt_at, now)}.",
                }
            )
        else:
            out.append(
                {
                    "kind": "finished",
                    "text": f"It failed with no attempts left ({job.attempts} of "
                    f"{job.max_attempts}); retry it to run it again.",
                }
            )
        return out
    if st is JobStatus.WAITING:
        if job.wait_token_id:
            token = await q.get_token(job.wait_token_id)
            state = token.status.value if token else "missing"
            text = f"It is waiting on token {job.wait_token_id} ({state})"
            if token and token.status is TokenStatus.WAITING and token.timeout_at:
                text += f"; the token times out at {_when(token.timeout_at, now)}"
            out.append({"kind": "token", "token_id": job.wait_token_id, "text": text + "."})
        elif job.wait_until is not None:
            out.append(
                {
                    "kind": "wait_until",
                    "at": job.wait_until.isoformat(),
                    "text": f"It is waiting (a durable wait) until {_when(job.wait_until, now)}.",
                }
            )
        else:
            out.append({"kind": "waiting", "text": "It is waiting to be resumed."})
        return out
    # pending
    if job.depends_on_job_ids:
        found = {p.id: p for p in await backend.get_jobs_by_ids(job.depends_on_job_ids)}
        pres = [found.get(i) for i in job.depends_on_job_ids]
        unmet_all = [
            (i, p)
            for i, p in zip(job.depends_on_job_ids, pres, strict=True)
            if p is None or p.status is not JobStatus.COMPLETED
        ]
        # A cleaned-up prerequisite had completed (cleanup never blocks dependents).
        unmet = [(i, p) for i, p in unmet_all if p is not None]
        if unmet:
            desc = ", ".join(f"#{i} ({p.status.value})" for i, p in unmet)
            out.append(
                {
                    "kind": "prerequisites",
                    "job_ids": [i for i, _ in unmet],
                    "text": f"It waits for {len(unmet)} prerequisite(s) to complete: {desc}.",
                }
            )
    if job.depends_on_tags:
        holders = await backend.get_tag_holders(job.depends_on_tags, job.id, 21)
        if holders:
            shown = ", ".join(f"#{i}" for i in holders[:20])
            more = " and more" if len(holders) > 20 else ""
            out.append(
                {
                    "kind": "tag_drain",
                    "tags": list(job.depends_on_tags),
                    "holders": holders[:20],
                    "text": "It waits for the tag drain ["
                    + ", ".join(job.depends_on_tags)
                    + f"] to clear: active jobs carrying those tags: {shown}{more}.",
                }
            )
    if job.run_at > now:
        out.append(
            {
                "kind": "run_at",
                "at": job.run_at.isoformat(),
                "text": f"Its run_at is in the future: {_when(job.run_at, now)}.",
            }
        )
    if job.group_id:
        n = await backend.count_group_processing(job.group_id)
        if n:
            out.append(
                {
                    "kind": "group",
                    "group_id": job.group_id,
                    "processing": n,
                    "text": f"Its group {job.group_id!r} has {n} job(s) processing: it is held "
                    f"back while that is at the workers' group_concurrency cap.",
                }
            )
    if job.pending_reason and not job.pending_reason.startswith("{"):
        out.append({"kind": "pending_reason", "text": f"Worker note: {job.pending_reason}"})
    if not out:
        out.append(await _worker_coverage(q, job))
    return out


async def _worker_coverage(q: AsyncJobQueue, job: JobRecord) -> dict[str, Any]:
    """A claimable job: say what is known about workers for its type. Workers do not record
    which types they handle; live workers are those holding processing jobs."""
    processing = await q.get_jobs_by_status(JobStatus.PROCESSING, PROCESSING_SAMPLE)
    live = sorted({j.locked_by for j in processing if j.locked_by})
    same_type = sorted(
        {j.locked_by for j in processing if j.locked_by and j.job_type == job.job_type}
    )
    if same_type:
        text = (
            f"It is ready to run and waits for a free worker slot; worker(s) "
            f"{', '.join(same_type)} are running {job.job_type!r} jobs now."
        )
    elif live:
        text = (
            f"It is ready to run, but none of the {len(live)} live worker(s) "
            f"({', '.join(live[:5])}) is running a {job.job_type!r} job: they may be busy, "
            f"or none of them handles this type (a worker without a handler marks such jobs "
            f"with a note when it claims them)."
        )
    else:
        text = (
            "It is ready to run, but no worker is running any job right now: check that a "
            f"worker handling {job.job_type!r} is started."
        )
    return {"kind": "workers", "live_workers": live, "text": text}


def _when(at: datetime, now: datetime) -> str:
    delta = (at - now).total_seconds()
    rel = f"in {duration(delta)}" if delta >= 0 else f"{duration(-delta)} ago"
    return f"{at.strftime('%Y-%m-%d %H:%M:%S')} UTC ({rel})"


def duration(seconds: float) -> str:
    """A duration for people, in its two largest units: ``42s``, ``5m 3s``, ``2h 7m``,
    ``3d 4h``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


async def job_detail(q: AsyncJobQueue, job: JobRecord) -> dict[str, Any]:
    """Everything the job page shows: the record, events, token, edges and the why-answer."""
    events, why, dependents = await asyncio.gather(
        q.get_job_events(job.id),
        why_not_running(q, job),
        q._backend.get_dependents([job.id], 200),
    )
    token = await q.get_token(job.wait_token_id) if job.wait_token_id else None
    drain_waiters = (
        await q._backend.get_drain_waiters(job.tags, 200)
        if job.tags and job.status not in TERMINAL_STATUSES
        else []
    )
    return {
        "job": to_json(job),
        "events": to_json(events),
        "token": to_json(token) if token else None,
        "dependencies": {
            "upstream_job_ids": list(job.depends_on_job_ids or ()),
            "upstream_tags": list(job.depends_on_tags or ()),
            "downstream_job_ids": dependents.get(job.id, []),
            "drain_waiter_job_ids": [i for i in drain_waiters if i != job.id],
        },
        "cascade_root_job_id": cascade_root(job, events),
        "why_not_running": why,
    }
