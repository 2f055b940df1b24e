"""Planning ``add_jobs`` (sans-IO): validate the batch and lay it out as column arrays.

A batch becomes one ``INSERT … SELECT FROM unnest(<arrays>)`` statement (see ``sql.ADD_*``).
Batches with placeholders (``batch_dep_ref``) get their ids allocated first so that the
placeholders can be resolved here, with ``dataqueue._core``, before the single write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from dataqueue import _core
from dataqueue.backends.postgres.sql import ADD_ARRAYS, pg_text_array
from dataqueue.backends.types import AddedJob
from dataqueue.errors import DependencyCycleError
from dataqueue.lifecycle import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY, self_dependency_via_key
from dataqueue.options import NewJob, UniqueSpec

__all__ = [
    "COPY_MIN_JOBS",
    "AddPlan",
    "UniqueBatch",
    "copy_blocks",
    "plan_add",
    "single_params",
    "unique_batch",
]

#: Placeholder batches (``batch_dep_ref``; no idempotency keys, no existing prerequisites) of
#: at least this many jobs are written with COPY instead of one INSERT statement: their ids are
#: allocated first anyway, and COPY saves the server per-row work (about 8% of the whole
#: add_jobs of 5,000-10,000 jobs in benches/bench_pg_enqueue.py; no gain for batches without
#: placeholders, which need no id round trip and no edges, nor below this size).
COPY_MIN_JOBS: Final = 2000

# job_queue columns a COPY leaves out when every job of the batch has the column's default:
# (column, key of AddPlan.arrays, default).
_COPY_OPTIONAL: Final = (
    ("max_attempts", "max_attempts", DEFAULT_MAX_ATTEMPTS),
    ("priority", "priority", DEFAULT_PRIORITY),
    ("timeout_ms", "timeout_ms", None),
    ("force_kill_on_timeout", "fk", False),
    ("tags", "tags", None),
    ("retry_delay", "retry_delay", None),
    ("retry_backoff", "retry_backoff", None),
    ("retry_delay_max", "retry_delay_max", None),
    ("dead_letter_job_type", "dlq", None),
    ("group_id", "group_id", None),
    ("group_tier", "group_tier", None),
    ("depends_on_job_ids", "dep_ids", None),
    ("depends_on_tags", "dep_tags", None),
)

_json_string: Final = json.encoder.encode_basestring  # same text as json.dumps(str)


def _json_strings(values: Sequence[str]) -> str:
    return "[" + ",".join(map(_json_string, values)) + "]"


# -- COPY text format ---------------------------------------------------------------------------
# Rows are written as text blocks built a column at a time (far cheaper than a write_row call
# per row): fields separated by tabs, rows by newlines, NULL as \N, and backslash, tab,
# newline and carriage return escaped in values.
_COPY_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
COPY_ROWS_PER_BLOCK: Final = 2000  # the server works on a block while the next is built


def _copy_field(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.translate(_COPY_ESCAPES)
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _copy_column(values: list[Any]) -> list[str]:
    first = values[0]
    if values.count(first) == len(values):
        return [_copy_field(first)] * len(values)
    return [_copy_field(v) for v in values]


def copy_blocks(columns: list[list[str]]) -> Iterator[str]:
    """COPY text data for columns of equal length, in blocks of rows."""
    n = len(columns[0])
    for start in range(0, n, COPY_ROWS_PER_BLOCK):
        end = start + COPY_ROWS_PER_BLOCK
        rows = zip(*[column[start:end] for column in columns], strict=True)
        yield "\n".join(map("\t".join, rows)) + "\n"


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
    resolved: list[list[int]] | None = None

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
            resolved = self.resolved = _core.resolve_batch_refs(self.deps, allocated)
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
                        raise DependencyCycleError(self_dependency_via_key(i))
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

    # -- COPY (large placeholder batches, after resolve()) -----------------------------------
    @property
    def copyable(self) -> bool:
        return self.has_refs and not self.full and len(self.jobs) >= COPY_MIN_JOBS

    def copy_jobs(self, now: datetime) -> tuple[list[str], list[list[str]]]:
        """job_queue columns and their values in COPY text form; ``now`` is the transaction's
        (the default run_at). Columns every job leaves at their default are left out (COPY
        fills in the default)."""
        a = self.arrays
        n = len(self.jobs)
        run_at = a["run_at"]
        run_at = [now] * n if run_at.count(None) == n else [now if r is None else r for r in run_at]
        unmet = a["unmet_new"]
        ready_at = run_at if unmet.count(0) == n else [
            r if u == 0 else None for r, u in zip(run_at, unmet, strict=True)
        ]  # fmt: skip
        columns = ["id", "job_type", "payload", "run_at", "ready_at", "unmet_dependencies"]
        data = [a["id"], a["job_type"], a["payload"], run_at, ready_at, unmet]
        for column, key, default in _COPY_OPTIONAL:
            values = a[key]
            if values.count(default) != n:
                columns.append(column)
                data.append(values)
        return columns, [_copy_column(values) for values in data]

    def copy_events(self) -> list[list[str]]:
        """job_events (job_id, event_type, metadata) in COPY text form: the ``added`` event
        with the metadata the ADD_* statements build in SQL (``sql._ADD_EVENT_META``; simple
        batches have no idempotency keys)."""
        type_json: dict[str, str] = {}
        metas: list[str] = []
        for job, dep_ids in zip(self.jobs, self.arrays["dep_ids"], strict=True):
            jt = type_json.get(job.job_type)
            if jt is None:
                jt = type_json[job.job_type] = _json_string(job.job_type)
            tags = "null" if job.tags is None else _json_strings(job.tags)
            meta = f'{{"job_type":{jt},"payload":{job.payload_json},"tags":{tags}'
            meta += ',"idempotency_key":null'
            if dep_ids is not None or job.depends_on_tags is not None:
                ids = "[]" if dep_ids is None else "[" + dep_ids[1:-1] + "]"
                dep_tags = _json_strings(job.depends_on_tags or ())
                meta += f',"depends_on":{{"job_ids":{ids},"tags":{dep_tags}}}'
            metas.append(meta + "}")
        n = len(metas)
        return [_copy_column(self.arrays["id"]), ["added"] * n, _copy_column(metas)]

    def copy_edges(self) -> list[list[str]]:
        """job_dependencies (prerequisite_id, job_id) of placeholder batches, COPY text form."""
        prerequisites: list[str] = []
        dependents: list[str] = []
        for job_id, resolved in zip(self.arrays["id"], self.resolved or (), strict=False):
            for prerequisite in resolved:
                prerequisites.append(str(prerequisite))
                dependents.append(str(job_id))
        return [prerequisites, dependents]

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


class UniqueBatch:
    """A batch with unique keys, split into what to insert and what resolves to a holder.

    ``holders`` maps each key to the job holding it in scope. An entry whose key is held gets
    the holder's id; a later entry repeating a key of this batch gets the first one's; the
    rest (``jobs``) are inserted, with batch placeholders renumbered (a placeholder naming a
    resolved entry becomes that job's id)."""

    def __init__(
        self,
        jobs: Sequence[NewJob],
        unique: Sequence[UniqueSpec | None],
        holders: dict[str, int],
    ) -> None:
        self.unique = unique
        # Per original entry: ("hit", job id) | ("new", index in self.jobs).
        self.slots: list[tuple[str, int]] = []
        first: dict[str, int] = {}
        kept: list[int] = []
        for i, spec in enumerate(unique):
            if spec is not None and spec.key in holders:
                self.slots.append(("hit", holders[spec.key]))
            elif spec is not None and spec.key in first:
                self.slots.append(("dup", first[spec.key]))
            else:
                if spec is not None:
                    first[spec.key] = len(kept)
                self.slots.append(("new", len(kept)))
                kept.append(i)
        self.kept = kept
        self.jobs: list[NewJob] = [self._renumber(jobs[i]) for i in kept]

    def _renumber(self, job: NewJob) -> NewJob:
        ids = job.depends_on_job_ids
        if not ids or all(i > 0 for i in ids):
            return job
        out: list[int] = []
        for ref in ids:
            if ref > 0:
                out.append(ref)
                continue
            index = -ref - 1
            if not 0 <= index < len(self.slots):
                out.append(ref)  # out of range (or forward): checked below by plan_add
                continue
            kind, value = self.slots[index]
            out.append(value if kind == "hit" else -(value + 1))
        return replace(job, depends_on_job_ids=tuple(dict.fromkeys(out)))

    def unique_params(self, added: Sequence[AddedJob]) -> dict[str, Any]:
        ids: list[int] = []
        keys: list[str] = []
        active: list[bool] = []
        secs: list[float | None] = []
        for new_index, original in enumerate(self.kept):
            spec = self.unique[original]
            result = added[new_index]
            if spec is None or not result.created:
                continue
            ids.append(result.id)
            keys.append(spec.key)
            active.append(spec.while_active)
            secs.append(spec.for_seconds)
        return {"ids": ids, "keys": keys, "active": active, "secs": secs}

    def results(self, added: Sequence[AddedJob]) -> list[AddedJob]:
        out: list[AddedJob] = []
        for kind, value in self.slots:
            if kind == "hit":
                out.append(AddedJob(value, False))
            elif kind == "dup":
                out.append(AddedJob(added[value].id, False))
            else:
                out.append(added[value])
        return out


def unique_batch(
    jobs: Sequence[NewJob], unique: Sequence[UniqueSpec | None], holders: dict[str, int]
) -> UniqueBatch:
    return UniqueBatch(jobs, unique, holders)
