"""Planning ``add_jobs`` (sans-IO): validate the batch and lay it out as column arrays.

A batch becomes one ``INSERT … SELECT FROM unnest(<arrays>)`` statement (see ``sql.ADD_*``).
Batches with placeholders (``batch_dep_ref``) get their ids allocated first so that the
placeholders can be resolved here, with ``dataqueue._core``, before the single write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dataqueue import _core
from dataqueue.backends.postgres.sql import ADD_ARRAYS, pg_text_array
from dataqueue.backends.types import AddedJob
from dataqueue.errors import DependencyCycleError
from dataqueue.options import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY, NewJob

__all__ = ["AddPlan", "plan_add", "single_params"]


def _id_array(ids: Sequence[int] | None) -> str | None:
    if not ids:
        return None
    if len(ids) == 1:  # the usual case, and a third of the cost
        return f"{{{ids[0]}}}"
    return "{" + ",".join(map(str, ids)) + "}"


# AddedJob is frozen: building it through its slots skips object.__setattr__ per field
# (one per job of a batch).
_new_object = object.__new__
_set_added_id = AddedJob.__dict__["id"].__set__
_set_added_created = AddedJob.__dict__["created"].__set__


def _added(job_id: int, created: bool) -> AddedJob:
    added: AddedJob = _new_object(AddedJob)
    _set_added_id(added, job_id)
    _set_added_created(added, created)
    return added


@dataclass(slots=True)
class AddPlan:
    """One batch, ready to be written."""

    jobs: Sequence[NewJob]
    deps: list[Sequence[int]]
    has_refs: bool
    keys: list[str]
    prereqs: list[int]
    arrays: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        """Whether the statement must look up keys or prerequisites (else the simple one)."""
        return bool(self.keys) or bool(self.prereqs)

    def params(self, channel: str) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.arrays)
        out["channel"] = channel
        if self.full:
            out["keys"] = self.keys
            out["prereqs"] = self.prereqs
        return out

    def narrow_params(self, channel: str) -> tuple[frozenset[str], bool, dict[str, Any]]:
        """For ``Statements.add_narrow`` (simple batches): the columns that vary between rows,
        whether any row has prerequisite ids, and the parameters (a column with one value
        throughout is passed as that value)."""
        out: dict[str, Any] = {"channel": channel}
        varying: list[str] = []
        for name, col in self.arrays.items():
            first = col[0]
            if name != "payload" and col.count(first) == len(col):
                out[name] = first
            else:
                out[name] = col
                varying.append(name)
        edges = "dep_ids" in varying or out["dep_ids"] is not None
        return frozenset(varying), edges, out

    def resolve(self, allocated: Sequence[int], existing: dict[str, int]) -> set[int]:
        """Placeholder batches: pick each entry's id (an idempotency hit keeps the existing
        job's id; a key repeated in the batch maps to its first entry), resolve placeholders
        and count unmet prerequisites. Returns the batch indexes that will be inserted."""
        if not self.keys:
            # Every entry is new: each placeholder is one unmet prerequisite.
            resolved = _core.resolve_batch_refs(self.deps, allocated)
            self.arrays["id"] = list(allocated)
            if self.prereqs:
                self.arrays["unmet_new"] = [sum(1 for d in ds if d < 0) for ds in self.deps]
            else:  # every entry is a placeholder (lists are de-duplicated by options)
                self.arrays["unmet_new"] = [len(ds) for ds in self.deps]
            self.arrays["dep_ids"] = [_id_array(ids) for ids in resolved]
            return set(range(len(self.jobs)))
        final: list[int] = []
        new: set[int] = set()
        first_by_key: dict[str, int] = {}
        for i, job in enumerate(self.jobs):
            key = job.idempotency_key
            if key is not None and key in existing:
                final.append(existing[key])
            elif key is not None and key in first_by_key:
                final.append(final[first_by_key[key]])
            else:
                if key is not None:
                    first_by_key[key] = i
                final.append(allocated[i])
                new.add(i)
        resolved = _core.resolve_batch_refs(self.deps, final)
        prereqs = set(self.prereqs)
        unmet_new: list[int] = []
        dep_ids: list[str | None] = []
        for i, (raw, ids) in enumerate(zip(self.deps, resolved, strict=True)):
            count = 0
            for ref in raw:
                if ref < 0:
                    target = -ref - 1
                    if final[target] == final[i]:
                        # An idempotency hit made the entry depend on itself.
                        raise DependencyCycleError(
                            f"job {i} of the batch depends on itself through its idempotency key"
                        )
                    if target in new:
                        count += 1
                    else:
                        prereqs.add(final[target])
            unmet_new.append(count)
            dep_ids.append(_id_array(ids))
        self.arrays["id"] = list(allocated)
        self.arrays["unmet_new"] = unmet_new
        self.arrays["dep_ids"] = dep_ids
        self.prereqs = sorted(prereqs)
        return new

    def results(self, ids: Sequence[int | None], created: Sequence[bool] | None) -> list[AddedJob]:
        if created is None:
            return [_added(int(i), True) for i in ids]  # type: ignore[arg-type]
        return [_added(int(i), bool(c)) for i, c in zip(ids, created, strict=True)]  # type: ignore[arg-type]


def single_params(job: NewJob, channel: str) -> dict[str, Any] | None:
    """Parameters of the single-job statement (``Statements.add_one_with``) for one job, only
    for the options it sets, or None if it needs the batch statements (prerequisite ids must
    be checked and locked)."""
    if job.depends_on_job_ids:
        return None
    out: dict[str, Any] = {"job_type": job.job_type, "payload": job.payload_json}
    if job.max_attempts != DEFAULT_MAX_ATTEMPTS:
        out["max_attempts"] = job.max_attempts
    if job.priority != DEFAULT_PRIORITY:
        out["priority"] = job.priority
    if job.run_at is not None:
        out["run_at"] = job.run_at
    if job.timeout_ms is not None:
        out["timeout_ms"] = job.timeout_ms
    if job.force_kill_on_timeout:
        out["fk"] = True
    if job.tags:
        out["tags"] = pg_text_array(job.tags)
    if job.idempotency_key is not None:
        out["idem"] = job.idempotency_key
    if job.retry_delay is not None:
        out["retry_delay"] = job.retry_delay
    if job.retry_backoff is not None:
        out["retry_backoff"] = job.retry_backoff
    if job.retry_delay_max is not None:
        out["retry_delay_max"] = job.retry_delay_max
    if job.dead_letter_job_type is not None:
        out["dlq"] = job.dead_letter_job_type
    if job.group_id is not None:
        out["group_id"] = job.group_id
    if job.group_tier is not None:
        out["group_tier"] = job.group_tier
    if job.depends_on_tags:
        out["dep_tags"] = pg_text_array(job.depends_on_tags)
    out["channel"] = channel
    return out


def plan_add(jobs: Sequence[NewJob]) -> AddPlan:
    """Validate the batch's dependency graph and build the column arrays."""
    n = len(jobs)
    deps: list[Sequence[int]] = [j.depends_on_job_ids or () for j in jobs]
    flat = [d for ds in deps if ds for d in ds]
    has_refs = bool(flat) and min(flat) < 0
    if has_refs:
        _core.plan_batch(deps)  # placeholders in range, no self references, no cycles
    prereqs = sorted({d for d in flat if d > 0}) if flat and max(flat) > 0 else []
    keys = sorted({j.idempotency_key for j in jobs if j.idempotency_key is not None})
    # One comprehension per column: much cheaper than filling rows field by field.
    cols: dict[str, list[Any]] = {
        "id": [None] * n,
        "job_type": [j.job_type for j in jobs],
        "payload": [j.payload_json for j in jobs],
        "max_attempts": [j.max_attempts for j in jobs],
        "priority": [j.priority for j in jobs],
        "run_at": [j.run_at for j in jobs],
        "timeout_ms": [j.timeout_ms for j in jobs],
        "fk": [j.force_kill_on_timeout for j in jobs],
        "tags": [pg_text_array(j.tags) if j.tags else None for j in jobs],
        "idem": [j.idempotency_key for j in jobs],
        "retry_delay": [j.retry_delay for j in jobs],
        "retry_backoff": [j.retry_backoff for j in jobs],
        "retry_delay_max": [j.retry_delay_max for j in jobs],
        "dlq": [j.dead_letter_job_type for j in jobs],
        "group_id": [j.group_id for j in jobs],
        "group_tier": [j.group_tier for j in jobs],
        # With placeholders, resolve() fills in the real ids.
        "dep_ids": [None] * n if has_refs else [_id_array(j.depends_on_job_ids) for j in jobs],
        "dep_tags": [pg_text_array(j.depends_on_tags) if j.depends_on_tags else None for j in jobs],
        "unmet_new": [0] * n,
    }
    assert tuple(cols) == ADD_ARRAYS
    return AddPlan(jobs=jobs, deps=deps, has_refs=has_refs, keys=keys, prereqs=prereqs,
                   arrays=cols)  # fmt: skip
