"""The Redis backend, in two twins: asyncio and blocking.

Every state change is one Lua script (``scripts/``), so it is atomic and runs on the server
clock; reads page through sorted-set indexes. The key layout is described in ``keys.py``.
The blocking twin is generated from the asyncio source by ``tools/gen_sync.py``: edit that
source, never the generated twin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import redis.asyncio
import redis.exceptions

from dataqueue._typing import Unpack
from dataqueue.backends import types as T
from dataqueue.backends.base_async import (
    AsyncBackend,
    AsyncFinishListener,
    current_waiter,
    waiter_finished,
)
from dataqueue.backends.redis import codec
from dataqueue.backends.redis.codec import dec, from_us, to_us
from dataqueue.backends.redis.config import RedisSettings
from dataqueue.backends.redis.handoff import HandOffs, entries
from dataqueue.backends.redis.keys import WAKE_READY, Keys
from dataqueue.backends.redis.loader import Scripts, function_name, library_source
from dataqueue.backends.redis.unread import may_hold_more
from dataqueue.backends.types import KEEP
from dataqueue.errors import (
    BackendError,
    BackendNotSupportedError,
    ConfigurationError,
    CronError,
    DependencyCycleError,
    InvalidJobError,
    UnknownPrerequisiteError,
)
from dataqueue.lifecycle import (
    MAINTENANCE_CHUNK,
    TERMINAL_STATUSES,
    FailurePlan,
    self_dependency_via_key,
    unknown_prerequisites_message,
)
from dataqueue.options import JobFilters, JobUpdates, NewJob, TagFilter, dump_json

__all__ = ["AsyncRedisBackend"]

_SCAN_CHUNK: Final = 500  # ids read per step while filtering an index
_FEW_JOBS: Final = 4  # up to this many jobs are read with plain HGETALLs, more by a script
_SEARCH_STEP: Final = 2500  # ids one dash_scan call walks at most (a short server-side pause)
_WRITE_CHUNK: Final = 500  # ids per script call in bulk edits/cancels
_US_PER_S: Final = 1_000_000
_HOLDER_BUDGET: Final = 5000  # jobs examined per get_tag_holders call
_FUNCTION_LOST: Final = "Function not found"  # FCALL's error when the library is not loaded
_CLUSTER_CLIENTS: Final = (redis.asyncio.RedisCluster,)
_WAKE_READY_BYTES: Final = WAKE_READY.encode()  # a client that does not decode replies


@contextlib.contextmanager
def _errors(where: str = "") -> Iterator[None]:
    """Driver failures become ``BackendError`` (credentials refused: ``ConfigurationError``),
    naming the server (``where``); script error codes are mapped by callers."""
    at = f" at {where}" if where else ""
    try:
        yield
    except redis.exceptions.ResponseError as exc:
        msg = str(exc)
        if "DQ_UNKNOWN_PREREQ" in msg:
            ids = msg.split("DQ_UNKNOWN_PREREQ", 1)[1].strip().split()[0]
            missing = [int(i) for i in ids.split(",")]
            raise UnknownPrerequisiteError(unknown_prerequisites_message(missing)) from None
        if "DQ_SELF_DEP" in msg:
            index = int(msg.split("DQ_SELF_DEP", 1)[1].strip().split()[0])
            raise DependencyCycleError(self_dependency_via_key(index)) from None
        if msg.startswith(("WRONGPASS", "NOAUTH", "NOPERM")):
            raise ConfigurationError(f"Redis{at} refused the credentials: {exc}") from None
        raise BackendError(f"redis error: {exc}") from exc
    except redis.exceptions.AuthenticationError as exc:
        raise ConfigurationError(f"Redis{at} refused the credentials: {exc}") from None
    except redis.exceptions.ConnectionError as exc:
        raise BackendError(f"cannot connect to Redis{at}: {exc}") from exc
    except redis.exceptions.RedisError as exc:
        raise BackendError(f"redis error: {exc}") from exc


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


async def _arrived(pubsub: Any) -> list[Any]:
    """The messages a subscription has already received after the one just read, without
    a zero-timeout read once nothing more has arrived (see ``unread``)."""
    out = []
    while may_hold_more(pubsub) and (message := await pubsub.get_message(timeout=0.0)):
        out.append(message)
    return out


class _RedisFinishListener(AsyncFinishListener):
    """A pub/sub subscription to the "jobs finished" channel."""

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def wait(self, timeout: float) -> bool:
        try:
            # get_message returns None early for a skipped subscribe confirmation: loop.
            deadline = time.monotonic() + max(0.0, timeout)
            got = None
            while got is None and (left := deadline - time.monotonic()) > 0:
                got = await self._pubsub.get_message(timeout=left)
            if got is not None:
                await _arrived(self._pubsub)  # one wake-up covers everything published so far
        except redis.exceptions.RedisError as exc:
            raise BackendError(f"redis error: {exc}") from exc
        return got is not None

    async def close(self) -> None:
        with contextlib.suppress(redis.exceptions.RedisError):
            await self._pubsub.aclose()


class AsyncRedisBackend(AsyncBackend):
    """Jobs, events, tokens and cron schedules in Redis (a redis-py client of the twin's kind)."""

    name = "redis"

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self._where = settings.describe_target()
        is_async = True  # sync: is_async = False
        settings.require_client_kind(is_async=is_async)
        build = settings.build_async_client  # sync: build = settings.build_sync_client
        self.client: Any = build()
        self._owns_client = settings.owns_client
        self.keys: Keys = Keys.for_prefix(settings.key_prefix)
        self._scripts = Scripts(self.client)
        # FCALL of the function library (True), EVALSHA of the scripts (False), not yet known
        # (None): decided on the first call, see _load_functions.
        self._functions: bool | None = None
        # Pub/sub subscriptions to the wake channel, one per waiter (the task — thread in the
        # blocking twin — calling wait_for_work), made on its first wait: two processors of
        # one queue must not read one connection at once.
        self._wakes: dict[Any, Any] = {}
        self._wake_supported = True
        # wait_for_work's reading of the nearest delayed job (see there)
        self._delayed_known = False
        self._delayed_due: float | None = None  # monotonic time; None: no delayed job
        self._delayed_gen = 0  # bumped by every wake-up that may have changed it
        self._hand = HandOffs()  # jobs handed to this process's workers (see claim_jobs)

    # -- plumbing ----------------------------------------------------------------------------

    async def _run(self, name: str, args: Sequence[Any]) -> Any:
        with _errors(self._where):
            if self._functions is None:
                self._functions = await self._load_functions()
            if self._functions:
                fn = function_name(name)
                try:
                    return dec(await self.client.fcall(fn, 1, self.keys.base, *args))
                except redis.exceptions.ResponseError as exc:
                    if _FUNCTION_LOST not in str(exc):
                        raise
                # The server lost the library (a restart without persistence, FUNCTION FLUSH).
                self._functions = await self._load_functions()
                if self._functions:
                    return dec(await self.client.fcall(fn, 1, self.keys.base, *args))
            return dec(await self._scripts[name](keys=[self.keys.base], args=list(args)))

    async def _load_functions(self) -> bool:
        """Load the scripts as one function library (see ``loader``); False where that is not
        possible: Redis before 7 (no FUNCTION command), a user without the right to it, or a
        Redis Cluster client (its FUNCTION LOAD would have to reach every primary), which then
        use EVALSHA."""
        if isinstance(self.client, _CLUSTER_CLIENTS):
            return False
        try:
            await self.client.function_load(library_source())
        except redis.exceptions.ResponseError as exc:
            # one of this library's versions is there already (another process loaded it)
            return "already exists" in str(exc)
        return True

    async def _hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]:
        if not keys:
            return []
        with _errors(self._where):
            async with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                rows = await pipe.execute()
        return [dec(r) for r in rows]

    async def _jobs(self, ids: Sequence[Any]) -> list[T.JobRecord]:
        if len(ids) <= _FEW_JOBS:
            rows = await self._hgetall_many([self.keys.job(i) for i in ids])
            times: dict[str, datetime] = {}
            return [codec.job_from_hash(r, times) for r in rows if r]
        # Many jobs: one script reply of one JSON object per job (job_hashes.lua), a chunk at
        # a time so that no call holds the server long.
        out: list[T.JobRecord] = []
        for chunk in codec.chunks(list(ids), _SCAN_CHUNK):
            for text in await self._run("job_hashes", chunk):
                if text:
                    out.append(codec.job_from_hash(json.loads(text)))
        return out

    async def _server_now_us(self) -> int:
        with _errors(self._where):
            secs, micros = await self.client.time()
        return int(secs) * _US_PER_S + int(micros)

    async def _scan(
        self, index: str, *, want: int, offset: int, cursor: int | None, match: Any = None
    ) -> list[str]:
        """Ids of ``index`` newest first (below ``cursor``), filtered by ``match(rows)`` (one
        flag per row of FILTER_FIELDS), skipping ``offset`` matches; reads the index a chunk at
        a time."""
        hi = f"({cursor}" if cursor else "+inf"
        if match is None:
            with _errors(self._where):
                return list(
                    dec(
                        await self.client.zrevrangebyscore(
                            index, hi, "-inf", start=offset, num=want
                        )
                    )
                )
        out: list[str] = []
        skipped = 0
        while len(out) < want:
            with _errors(self._where):
                ids = dec(
                    await self.client.zrevrangebyscore(index, hi, "-inf", start=0, num=_SCAN_CHUNK)
                )
                if not ids:
                    break
                async with self.client.pipeline(transaction=False) as pipe:
                    for i in ids:
                        pipe.hmget(self.keys.job(i), codec.FILTER_FIELDS)
                    rows = dec(await pipe.execute())
            for i, ok in zip(ids, match(rows), strict=True):
                if not ok:
                    continue
                if skipped < offset:
                    skipped += 1
                elif len(out) < want:
                    out.append(i)
            hi = f"({ids[-1]}"
        return out

    async def _matching_ids(self, filters: JobFilters, status: str | None) -> list[str]:
        index = codec.index_for(
            filters,
            self.keys.all,
            self.keys.job_type,
            self.keys.tag,
            None if status is None else self.keys.status(status),
        )
        return await self._scan(
            index,
            want=2**62,
            offset=0,
            cursor=None,
            match=lambda rows: codec.jobs_matching(rows, filters, status),
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def close(self) -> None:
        wakes, self._wakes = self._wakes, {}
        for wake in wakes.values():
            with contextlib.suppress(redis.exceptions.RedisError):
                await wake.aclose()
        if self._owns_client:
            with contextlib.suppress(redis.exceptions.RedisError):
                await self.client.aclose()  # sync: self.client.close()

    async def migrate(self) -> list[str]:
        """Redis needs no schema. The function library is loaded here (the scripts would load
        themselves on first use), so the first job does not wait for it to compile."""
        if self._functions is None:
            with _errors(self._where):
                self._functions = await self._load_functions()
        return []

    # -- enqueue -----------------------------------------------------------------------------

    async def add_jobs(
        self, jobs: Sequence[NewJob], **options: Unpack[T.AddOptions]
    ) -> list[T.AddedJob]:
        if options.get("db") is not None:
            raise BackendNotSupportedError(
                "the db= option (enqueue inside your transaction) is only supported by the "
                "postgres backend"
            )
        if not jobs:
            return []
        ids, flags = await self._run("add_jobs", list(codec.job_specs(jobs, options.get("unique"))))
        return [T.AddedJob(int(i), f == "1") for i, f in zip(ids.split(","), flags, strict=True)]

    # -- read --------------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> T.JobRecord | None:
        jobs = await self._jobs([job_id])
        return jobs[0] if jobs else None

    async def get_outputs(self, job_ids: Sequence[int]) -> dict[int, Any]:
        if not job_ids:
            return {}
        with _errors(self._where):
            async with self.client.pipeline(transaction=False) as pipe:
                for job_id in job_ids:
                    pipe.hmget(self.keys.job(job_id), "id", "output")
                rows = await pipe.execute()
        out: dict[int, Any] = {}
        for job_id, (exists, output) in zip(job_ids, rows, strict=True):
            if exists is not None:
                out[int(job_id)] = None if output is None else json.loads(dec(output))
        return out

    async def get_jobs(
        self, filters: JobFilters, limit: int, offset: int, cursor: int | None
    ) -> list[T.JobRecord]:
        index = codec.index_for(filters, self.keys.all, self.keys.job_type, self.keys.tag)
        match = None if filters.is_empty else (lambda rows: codec.jobs_matching(rows, filters))
        ids = await self._scan(
            index, want=limit, offset=0 if cursor else offset, cursor=cursor, match=match
        )
        return await self._jobs(ids)

    async def get_jobs_by_status(
        self, status: T.JobStatus, limit: int, offset: int
    ) -> list[T.JobRecord]:
        st = T.JobStatus(status).value
        ids = await self._scan(self.keys.status(st), want=limit, offset=offset, cursor=None)
        return await self._jobs(ids)

    async def get_all_jobs(self, limit: int, offset: int) -> list[T.JobRecord]:
        ids = await self._scan(self.keys.all, want=limit, offset=offset, cursor=None)
        return await self._jobs(ids)

    async def get_jobs_by_tags(
        self, tags: Sequence[str], mode: T.TagQueryMode, limit: int, offset: int
    ) -> list[T.JobRecord]:
        values = tuple(dict.fromkeys(tags))
        if not values:
            # An empty query: "all"/"none"/"exact" match by set logic, "any" matches nothing.
            mode = T.TagQueryMode(mode)
            if mode is T.TagQueryMode.ANY:
                return []
        filters = JobFilters(tags=TagFilter(values, T.TagQueryMode(mode)))
        index = (
            codec.index_for(filters, self.keys.all, self.keys.job_type, self.keys.tag)
            if values
            else self.keys.all
        )
        ids = await self._scan(
            index,
            want=limit,
            offset=offset,
            cursor=None,
            match=lambda rows: codec.jobs_matching(rows, filters),
        )
        return await self._jobs(ids)

    async def get_job_events(self, job_id: int) -> list[T.JobEvent]:
        with _errors(self._where):
            raw = dec(await self.client.lrange(self.keys.events(job_id), 0, -1))
        return [codec.event_from_json(e) for e in raw]

    # -- dashboard reads ---------------------------------------------------------------------
    async def count_jobs(
        self, cap: int, statuses: Sequence[T.JobStatus] | None = None
    ) -> list[T.JobCount]:
        # Exact counts (kept by the write scripts, see dash_counts.lua): ``cap`` is not needed.
        wanted = [T.JobStatus(st).value for st in (statuses or list(T.JobStatus))]
        flat = await self._run("dash_counts", wanted)
        out: list[T.JobCount] = []
        for i in range(0, len(flat), 6):
            t, st, n, capped, blocked, oldest = flat[i : i + 6]
            out.append(
                T.JobCount(
                    job_type=t,
                    status=T.JobStatus(st),
                    count=int(n),
                    capped=bool(int(capped)),
                    blocked=int(blocked),
                    oldest_created_at=from_us(oldest) if oldest else None,
                )
            )
        out.sort(key=lambda c: (c.job_type, c.status.value))
        return out

    async def recent_finished(self, since: datetime, limit: int) -> list[T.FinishedJob]:
        statuses = [st.value for st in sorted(TERMINAL_STATUSES)]
        reply = await self._run("dash_finished", [to_us(since), limit, *statuses])
        rows = [
            T.FinishedJob(int(i), jt, T.JobStatus(st), from_us(int(float(at))))
            for st, i, at, jt in json.loads(reply)
        ]
        rows.sort(key=lambda f: (f.finished_at, f.id), reverse=True)
        return rows[:limit]

    async def search_jobs(
        self, search: T.JobSearch, limit: int, cursor: str | None, scan_limit: int
    ) -> T.JobPage:
        filters = search.filters
        index = codec.index_for(filters, self.keys.all, self.keys.job_type, self.keys.tag)
        candidates = [index]
        if len(search.statuses) == 1:
            candidates.append(self.keys.status(search.statuses[0].value))
        tf = filters.tags
        if filters.job_type is not None and tf is not None:
            # a tag index may be narrower than the type's
            alt = codec.index_for(
                JobFilters(tags=tf), self.keys.all, self.keys.job_type, self.keys.tag
            )
            if alt != self.keys.all:
                candidates.append(alt)
        if len(candidates) > 1 and index == self.keys.all:
            index = candidates[1]
        elif len(candidates) > 1:  # drive the walk by the smallest index
            with _errors(self._where):
                async with self.client.pipeline(transaction=False) as pipe:
                    for key in candidates:
                        pipe.zcard(key)
                    sizes = await pipe.execute()
            smallest = min(range(len(candidates)), key=lambda k: int(sizes[k]))
            index = candidates[smallest]
        try:
            hi = f"({int(cursor)}" if cursor else "+inf"
        except ValueError:
            raise InvalidJobError(
                f"cursor {cursor!r} is not a cursor returned by search_jobs"
            ) from None
        wanted = [st.value for st in search.statuses]
        lo = to_us(search.created_gte) if search.created_gte else None
        hi_us = to_us(search.created_lt) if search.created_lt else None
        needle = search.error_contains.lower() if search.error_contains else None
        # The driving index answers a single-status query by itself.
        plain = (
            index in (self.keys.all, *(self.keys.status(st) for st in wanted))
            and filters.is_empty
            and lo is None
            and hi_us is None
            and needle is None
            and len(wanted) <= 1
        )
        hits: list[str] = []
        scanned = 0
        last: str | None = None
        exhausted = False
        if plain:
            with _errors(self._where):
                ids = dec(
                    await self.client.zrevrangebyscore(
                        index, hi, "-inf", start=0, num=min(limit, scan_limit)
                    )
                )
            hits, scanned = list(ids), len(ids)
            exhausted = len(ids) < min(limit, scan_limit)
            last = ids[-1] if ids else None
        # Otherwise the walk runs on the server (dash_scan.lua) a chunk at a time, newest
        # first, pre-filtered there by status, type, creation time and "has an error"; the
        # tag, priority, run_at and error-text tests run here. A page stops as soon as it is
        # full, and never reads more than scan_limit candidates.
        args = [
            index[len(self.keys.base) :],
            ",".join(wanted),
            f"T{filters.job_type}" if filters.job_type is not None else "",
            "" if lo is None else lo,
            "" if hi_us is None else hi_us,
            "1" if needle is not None else "0",
        ]
        while not plain and len(hits) < limit and scanned < scan_limit:
            take = min(_SEARCH_STEP, scan_limit - scanned)
            reply = await self._run("dash_scan", [args[0], hi, take, *args[1:], limit - len(hits)])
            walked, step_last, ended, rows = json.loads(reply)
            base = codec.jobs_matching([r[1:6] for r in rows], filters)
            for ok, r in zip(base, rows, strict=True):
                if ok and (needle is None or needle in str(r[7] or "").lower()):
                    hits.append(r[0])
            scanned += int(walked)
            if step_last:
                last = step_last
                hi = f"({step_last}"
            if ended:
                exhausted = True
                break
        if len(hits) == limit:
            nxt: str | None = hits[-1]
        elif not exhausted and last is not None:
            nxt = last
        else:
            nxt = None
        return T.JobPage(await self._jobs(hits), nxt, scanned)

    async def get_jobs_by_ids(self, job_ids: Sequence[int]) -> list[T.JobRecord]:
        return await self._jobs(list(dict.fromkeys(job_ids)))

    async def get_dependents(self, job_ids: Sequence[int], limit: int) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        if not job_ids:
            return out
        # The server orders each (possibly large) set and sends at most `limit` edges.
        flat = await self._run("dash_edges", [limit, *job_ids])
        for k in range(0, len(flat), 2):
            out[int(flat[k])] = [int(d) for d in flat[k + 1].split(",")]
        return out

    async def get_tag_holders(
        self, tags: Sequence[str], exclude_id: int | None, limit: int
    ) -> list[int]:
        if not tags:
            return []
        names = sorted(set(tags))
        exclude = "" if exclude_id is None else str(exclude_id)
        ids = await self._run("dash_holders", [exclude, limit, _HOLDER_BUDGET, *names])
        return [int(i) for i in ids]

    async def get_drain_waiters(self, tags: Sequence[str], limit: int) -> list[int]:
        have = set(tags)
        if not have:
            return []
        ids: set[int] = set()
        with _errors(self._where):
            for t in have:
                for d in dec(list(await self.client.smembers(f"{self.keys.base}dbt:{t}"))):
                    if set(json.loads(d)) <= have:
                        members = dec(list(await self.client.smembers(f"{self.keys.base}dj:{d}")))
                        ids.update(int(m) for m in members)
            ordered = sorted(ids)
            async with self.client.pipeline(transaction=False) as pipe:
                for i in ordered:
                    pipe.hget(self.keys.job(i), "status")
                sts = dec(await pipe.execute())
        live = [i for i, st in zip(ordered, sts, strict=True) if st in ("pending", "waiting")]
        return live[:limit]

    async def count_group_processing(self, group_id: str) -> int:
        with _errors(self._where):
            n = await self.client.hget(f"{self.keys.base}gact", group_id)
        return int(dec(n)) if n is not None else 0

    # -- manage ------------------------------------------------------------------------------

    async def retry_job(self, job_id: int) -> bool:
        return bool(await self._run("retry", [job_id]))

    async def cancel_job(self, job_id: int) -> bool:
        return bool(await self._run("cancel", ["1", job_id]))

    async def edit_job(self, job_id: int, updates: JobUpdates) -> bool:
        if not updates:
            return False
        return bool(await self._edit([str(job_id)], updates))

    async def _edit(self, ids: Sequence[str], updates: JobUpdates) -> int:
        to_set, clear = codec.edit_args(updates.values)
        meta = json.dumps(updates.event_metadata(), ensure_ascii=False)
        n = 0
        for chunk in codec.chunks(ids, _WRITE_CHUNK):
            n += len(await self._run("edit", [to_set, clear, meta, *chunk]))
        return n

    async def edit_all_pending_jobs(self, filters: JobFilters, updates: JobUpdates) -> int:
        if not updates:
            return 0
        ids = await self._matching_ids(filters, T.JobStatus.PENDING.value)
        return await self._edit(ids, updates)

    async def cancel_all_upcoming_jobs(self, filters: JobFilters) -> int:
        ids = await self._matching_ids(filters, T.JobStatus.PENDING.value)
        n = 0
        for chunk in codec.chunks(ids, _WRITE_CHUNK):
            n += len(await self._run("cancel", ["0", *chunk]))
        return n

    async def cleanup_old_jobs(
        self, days_to_keep: int, statuses: Sequence[T.JobStatus], batch_size: int
    ) -> int:
        keep = _us(timedelta(days=days_to_keep))
        names = [T.JobStatus(s).value for s in statuses]
        return int(await self._run("cleanup_jobs", [keep, max(1, batch_size), *names]))

    async def cleanup_old_job_events(self, days_to_keep: int, batch_size: int) -> int:
        keep = _us(timedelta(days=days_to_keep))
        return int(await self._run("cleanup_events", [keep, max(1, batch_size)]))

    async def held_jobs(self, worker_id: str) -> list[T.JobRecord]:
        # A read (no script needed): the processing set, filtered by lock holder.
        with _errors(self._where):
            ids = dec(await self.client.zrange(self.keys.status("processing"), 0, -1))
        jobs = await self._jobs(ids)
        held = sorted((j for j in jobs if j.locked_by == worker_id), key=lambda j: j.id)
        self._hand.given(worker_id, held)  # a recovered job kept as handed is not given again
        return held

    async def find_stuck_jobs(self, max_processing_time_minutes: float) -> list[T.JobRecord]:
        max_age = int(max_processing_time_minutes * 60 * _US_PER_S)
        ids = await self._run("reclaim", [max_age, MAINTENANCE_CHUNK])
        if not ids:
            return []
        return await self._jobs([int(i) for i in ids])

    async def requeue_jobs(self, jobs: Sequence[tuple[int, int]]) -> int:
        if not jobs:
            return 0
        args: list[Any] = []
        for job_id, version in jobs:
            args += [job_id, version]
        return int(await self._run("requeue", args))

    # -- worker side -------------------------------------------------------------------------

    async def claim_jobs(
        self, worker_id: str, limit: int, **options: Unpack[T.ClaimOptions]
    ) -> list[T.JobRecord]:
        if limit <= 0:
            return []
        job_types = options.get("job_types")
        types = "" if job_types is None else json.dumps(list(dict.fromkeys(job_types)))
        if job_types is not None and not job_types:
            return []
        lease, group_concurrency = options["lease"], options.get("group_concurrency")
        offer = options.get("offer")
        handed: list[T.JobRecord] = []
        if offer is not None:
            handed = self._hand.take(worker_id, limit)
            # without a plain wake-up since, what was handed is all there is to claim
            if handed and (not self._hand.woken(worker_id) or len(handed) == limit):
                return handed
        rows = await self._run(
            "claim",
            [
                worker_id,
                limit - len(handed),
                _us(lease),
                group_concurrency or 0,
                types,
                0 if offer is None else max(1, _us(offer)),
                "" if offer is None else entries(self._hand.started(worker_id)),
            ],
        )
        times: dict[str, datetime] = {}
        jobs = [codec.job_from_hash(h, times) for h in json.loads(rows)]
        if offer is None:
            return jobs
        # The claim of a worker that offers slots also returns the jobs handed to it that it
        # has not received: one received meanwhile is not given twice.
        return handed + self._hand.claimed(worker_id, jobs)

    async def end_claims(self, worker_id: str) -> None:
        # Withdraw the worker's offer; what was handed to it and not started goes back.
        kept, started = self._hand.drop(worker_id)
        await self._run("hand", [worker_id, entries(kept), entries(started)])

    async def complete_job(
        self, job_id: int, worker_id: str, lock_version: int, output: Any = KEEP
    ) -> bool:
        return (await self.complete_jobs([(job_id, worker_id, lock_version, output)]))[0]

    async def complete_jobs(self, items: Sequence[tuple[int, str, int, Any]]) -> list[bool]:
        if not items:
            return []
        # One JSON argument for the whole batch: redis-py encodes each argument in Python,
        # four per job were a tenth of a drain's worker CPU.
        arg = json.dumps(
            [
                (
                    str(job_id),
                    worker_id,
                    str(lock_version),
                    "K" if output is KEEP else "S" + dump_json(output, "output"),
                )
                for job_id, worker_id, lock_version, output in items
            ]
        )  # the default encoder: json.dumps with options builds a new one per call
        return [r == 1 for r in await self._run("complete", [arg])]

    async def fail_job(
        self, job_id: int, worker_id: str | None, lock_version: int, plan: FailurePlan
    ) -> T.FailOutcome:
        delay = plan.retry_delay_seconds
        res = await self._run(
            "fail",
            [
                job_id,
                "0" if worker_id is None else "1",
                worker_id or "",
                lock_version,
                plan.message,
                "" if plan.reason is None else plan.reason.value,
                "" if delay is None else repr(float(delay)),
                plan.dead_letter_job_type or "",
                plan.dead_letter_payload_json or "",
                plan.error_entry_json,
            ],
        )
        return T.FailOutcome(res[0] == 1, res[1] == 1, int(res[2]) or None)

    async def wait_job(
        self, job_id: int, worker_id: str, lock_version: int, **park: Unpack[T.ParkOptions]
    ) -> bool:
        wait_until, token_id = park["wait_until"], park["token_id"]
        meta = {
            "wait_until": None if wait_until is None else wait_until.isoformat(),
            "wait_token_id": token_id,
        }
        return bool(
            await self._run(
                "wait",
                [
                    job_id,
                    worker_id,
                    lock_version,
                    "" if wait_until is None else to_us(wait_until),
                    "N" if token_id is None else "T" + token_id,
                    json.dumps(park["step_data"], ensure_ascii=False),
                    json.dumps(meta),
                ],
            )
        )

    async def prolong_job(
        self, job_id: int, worker_id: str, lock_version: int, lease: timedelta
    ) -> bool:
        return bool(await self._run("prolong", [job_id, worker_id, lock_version, _us(lease)]))

    async def heartbeat(self, worker_id: str, job_ids: Sequence[int], lease: timedelta) -> int:
        if not job_ids:
            return 0
        return int(await self._run("heartbeat", [worker_id, _us(lease), *job_ids]))

    async def _set_field(
        self, job_id: int, worker_id: str, lock_version: int, field: str, value: Any
    ) -> bool:
        args = ["set", job_id, worker_id, lock_version, field, value]
        return int(await self._run("job_fields", args)) == 1

    async def set_progress(
        self, job_id: int, worker_id: str, lock_version: int, progress: int
    ) -> bool:
        return await self._set_field(job_id, worker_id, lock_version, "progress", int(progress))

    async def set_output(
        self, job_id: int, worker_id: str, lock_version: int, output_json: str
    ) -> bool:
        return await self._set_field(job_id, worker_id, lock_version, "output", output_json)

    async def set_step_data(
        self, job_id: int, worker_id: str, lock_version: int, step_data: dict[str, Any]
    ) -> bool:
        text = json.dumps(step_data, ensure_ascii=False)
        return await self._set_field(job_id, worker_id, lock_version, "step_data", text)

    async def set_pending_reason_for_type(self, job_type: str, reason: str) -> None:
        filters = JobFilters(job_type=job_type)
        ids = await self._matching_ids(filters, T.JobStatus.PENDING.value)
        for chunk in codec.chunks(ids, _WRITE_CHUNK):
            await self._run("job_fields", ["reason", reason, *chunk])

    async def wait_for_work(self, timeout: float, worker_id: str | None = None) -> bool:
        """Wait for a message on the queue's wake channel (published by every script that
        makes a job claimable or frees group capacity) for up to ``timeout`` seconds, or until
        the nearest delayed job comes due. The first call subscribes and returns True at once,
        so nothing published before the subscription is missed. With ``worker_id``, the
        waiter also receives the jobs handed to that worker (see ``claim_jobs``' offer): they
        are kept for its next claim.

        The nearest delayed job's time is read once and kept while the wake-ups say it
        stayed the same (``WAKE_READY``): a worker woken for every released dependent does
        not read the delayed set (and the server clock) again each time. A kept time can
        only be early (a promoted or removed job): the wait then ends early and reads again."""
        due_at = self._delayed_due
        if not self._delayed_known or (due_at is not None and due_at <= time.monotonic()):
            gen = self._delayed_gen
            with _errors(self._where):
                nearest = await self.client.zrange(self.keys.delayed, 0, 0, withscores=True)
            due_at = None
            if nearest:
                due_in = (float(nearest[0][1]) - await self._server_now_us()) / _US_PER_S
                if due_in <= 0:
                    # Promote it now (which publishes a wake-up): the next wait then blocks
                    # instead of finding the same due entry while this worker is busy.
                    self._forget_delayed()
                    await self._run("promote", [])
                    return True
                due_at = time.monotonic() + due_in
            if gen == self._delayed_gen:  # no wake-up since (other waiters): still true
                self._delayed_due, self._delayed_known = due_at, True
        block = max(0.0, timeout)
        due_first = False
        if due_at is not None and due_at - time.monotonic() < block:
            block, due_first = max(0.0, due_at - time.monotonic()), True
        waiter = current_waiter()
        await self._drop_finished_waiters()
        wake = self._wakes.get(waiter)
        if wake is None and self._wake_supported:
            try:
                wake = self.client.pubsub(ignore_subscribe_messages=True)
                channels = [self.keys.wake]
                if worker_id is not None:
                    channels.append(self.keys.hand(worker_id))
                await wake.subscribe(*channels)
                # wake-ups are published while some worker relies on them (scripts: wake())
                with _errors(self._where):
                    await self.client.set(self.keys.idle, "1")
            except (AttributeError, NotImplementedError):
                self._wake_supported = False  # a client without pub/sub: poll instead
            except redis.exceptions.RedisError as exc:
                raise BackendError(f"redis error: {exc}") from exc
            else:
                self._wakes[waiter] = wake
                self._forget_delayed()  # read before the subscription: read again
                return True
        if wake is None:
            self._forget_delayed()  # nothing tells this waiter of new delayed jobs
            await asyncio.sleep(block)  # sync: time.sleep(block)
            return due_first
        try:
            # get_message returns None early for a skipped subscribe confirmation: loop.
            deadline = time.monotonic() + block
            got = None
            while got is None and (left := deadline - time.monotonic()) > 0:
                got = await wake.get_message(timeout=left)
            if got is not None:
                self._note_wake(got, worker_id)
                # one wake-up is enough for everything published so far
                for more in await _arrived(wake):
                    self._note_wake(more, worker_id)
        except redis.exceptions.RedisError as exc:
            self._forget_delayed()
            self._wakes.pop(waiter, None)
            with contextlib.suppress(redis.exceptions.RedisError):
                await wake.aclose()
            raise BackendError(f"redis error: {exc}") from exc
        return got is not None or due_first

    def _note_wake(self, message: Any, worker_id: str | None) -> None:
        """Keep the jobs of a hand-off; a wake-up other than ``WAKE_READY`` may have changed
        the nearest delayed job."""
        data = message.get("data") if isinstance(message, dict) else None
        if worker_id is not None and data and dec(message["channel"]) == self.keys.hand(worker_id):
            text = dec(data)
            times: dict[str, datetime] = {}
            jobs = (codec.job_from_hash(h, times) for h in json.loads(text[1:]))
            self._hand.receive(worker_id, jobs)
            if text[0] == "F":  # more may be ready than was handed: the next claim asks
                self._hand.wake(worker_id)
            return
        if worker_id is not None:
            self._hand.wake(worker_id)
        if data != WAKE_READY and data != _WAKE_READY_BYTES:
            self._forget_delayed()

    def _forget_delayed(self) -> None:
        self._delayed_known = False
        self._delayed_gen += 1

    async def _drop_finished_waiters(self) -> None:
        """Close the subscriptions of waiters that have ended (a stopped processor)."""
        for waiter in [w for w in self._wakes if waiter_finished(w)]:
            wake = self._wakes.pop(waiter)
            with contextlib.suppress(redis.exceptions.RedisError):
                await wake.aclose()

    async def listen_finished(self) -> AsyncFinishListener | None:
        """A pub/sub subscription to the queue's "jobs finished" channel (every script that
        completes, cancels or terminally fails jobs publishes one message)."""
        try:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(self.keys.done)
        except (AttributeError, NotImplementedError):
            return None  # a client without pub/sub: wait_for_job re-reads on a timer
        except redis.exceptions.RedisError as exc:
            raise BackendError(f"redis error: {exc}") from exc
        return _RedisFinishListener(pubsub)

    # -- tokens ------------------------------------------------------------------------------

    async def create_token(
        self, job_id: int | None, timeout: timedelta | None, tags: T.Tags, holder: T.Holder = None
    ) -> T.WaitpointRecord | None:
        token_id = f"wp_{uuid.uuid4()}"
        flat = await self._run(
            "tokens",
            [
                "create",
                token_id,
                "" if job_id is None else job_id,
                "" if timeout is None else _us(timeout),
                json.dumps(list(tags), ensure_ascii=False) if tags else "",
                *(() if holder is None else holder),
            ],
        )
        return None if flat == 0 else codec.token_from_hash(codec.pairs(flat))

    async def complete_token(self, token_id: str, output_json: str | None) -> bool:
        out = "N" if output_json is None else "S" + output_json
        return bool(await self._run("tokens", ["complete", token_id, out]))

    async def get_token(self, token_id: str) -> T.WaitpointRecord | None:
        rows = await self._hgetall_many([self.keys.token(token_id)])
        return codec.token_from_hash(rows[0]) if rows and rows[0] else None

    async def expire_timed_out_tokens(self) -> int:
        total = 0
        while True:
            n = int(await self._run("tokens", ["expire"]))
            total += n
            if n < 1000:
                return total

    # -- cron --------------------------------------------------------------------------------

    async def add_cron_job(self, schedule: T.CronInput) -> int:
        values = codec.cron_input_values(schedule)
        try:
            return int(
                await self._run(
                    "cron", ["add", json.dumps(values, ensure_ascii=False), schedule.schedule_name]
                )
            )
        except BackendError as exc:
            if "DQ_CRON_EXISTS" in str(exc):
                raise CronError(
                    f'Cron schedule with name "{schedule.schedule_name}" already exists'
                ) from None
            raise

    async def get_cron_job(self, cron_id: int) -> T.CronScheduleRecord | None:
        rows = await self._hgetall_many([self.keys.cron(cron_id)])
        return codec.cron_from_hash(rows[0]) if rows and rows[0] else None

    async def get_cron_job_by_name(self, name: str) -> T.CronScheduleRecord | None:
        with _errors(self._where):
            cron_id = dec(await self.client.get(self.keys.cron_name(name)))
        return None if cron_id is None else await self.get_cron_job(int(cron_id))

    async def list_cron_jobs(self, status: T.CronStatus | None) -> list[T.CronScheduleRecord]:
        with _errors(self._where):
            ids = dec(await self.client.zrange(self.keys.crons, 0, -1))
        rows = await self._hgetall_many([self.keys.cron(i) for i in ids])
        out = [codec.cron_from_hash(r) for r in rows if r]
        if status is not None:
            out = [c for c in out if c.status == T.CronStatus(status)]
        return out

    async def edit_cron_job(self, cron_id: int, values: dict[str, Any]) -> bool:
        to_set, clear = codec.cron_values(values)
        return bool(
            await self._run(
                "cron", ["edit", cron_id, json.dumps(to_set, ensure_ascii=False), json.dumps(clear)]
            )
        )

    async def set_cron_status(self, cron_id: int, status: T.CronStatus) -> bool:
        return bool(await self._run("cron", ["status", cron_id, T.CronStatus(status).value]))

    async def remove_cron_job(self, cron_id: int) -> bool:
        return bool(await self._run("cron", ["remove", cron_id]))

    async def enqueue_due_cron_jobs(self, next_run: T.NextRunFn) -> int:
        """Claim each due schedule with a compare-and-set on its ``next_run_at`` inside the
        script, so an occurrence is enqueued once however many processors call this."""
        now_us = await self._server_now_us()
        with _errors(self._where):
            due = dec(await self.client.zrangebyscore(self.keys.cron_due, "-inf", now_us))
        count = 0
        for cron_id in due:
            rows = await self._hgetall_many([self.keys.cron(cron_id)])
            if not rows or not rows[0] or "next_run_at" not in rows[0]:
                continue
            record = codec.cron_from_hash(rows[0])
            if record.status is not T.CronStatus.ACTIVE:
                continue
            after = from_us(now_us)
            nxt = next_run(record, after)
            res = await self._run(
                "cron", ["fire", cron_id, rows[0]["next_run_at"], "" if nxt is None else to_us(nxt)]
            )
            if int(res) == 1:
                count += 1
        return count
