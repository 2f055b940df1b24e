"""Every SQL statement of the PostgreSQL backend, in one place (sans-IO).

``Statements(schema)`` renders the templates once for a schema (``{s}`` becomes the quoted
schema prefix). User values are never put into SQL text: they are always parameters, and the
few dynamic parts (edit columns, filter clauses) come from fixed whitelists in this module.

Conventions: ``ready_at`` is the claim key (see migrations/0001_jobs.sql); every transition
below keeps it right, and a statement that sets it also sets ``updated_at = now()`` (or
leaves the column default): ``ready_at <= updated_at`` tells due jobs from delayed ones
(migrations/0009_ready_sets.sql). Statements that must see rows committed while they waited
for a lock are separate statements in one transaction (READ COMMITTED takes a snapshot per
statement).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

from dataqueue.backends.postgres.config import quote_ident
from dataqueue.backends.postgres.rows import CRON_COLUMNS, EVENT_COLUMNS, JOB_COLUMNS, TOKEN_COLUMNS
from dataqueue.errors import CronError
from dataqueue.lifecycle import (
    ACTIVE_STATUSES,
    CLEANABLE_STATUSES,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    TERMINAL_STATUSES,
    TRANSITIONS,
    sql_status_list,
)
from dataqueue.options import JobFilters, JobUpdates
from dataqueue.records import TagQueryMode

__all__ = [
    "CLAIM_PLANNER_SETTINGS",
    "Statements",
    "done_channel",
    "filter_clause",
    "notify_channel",
    "pg_bool_array",
    "pg_int_array",
    "pg_nullable_text_array",
    "pg_text_array",
]

#: Status sets of dataqueue.lifecycle, as SQL lists: ``{active}``, ``{cleanable}`` and, per
#: operation, the statuses it accepts (``{cancel_from}``, ``{retry_from}``, ...).
_STATUS_SETS: Final = {
    "active": sql_status_list(ACTIVE_STATUSES),
    "cleanable": sql_status_list(CLEANABLE_STATUSES),
    "terminal": sql_status_list(TERMINAL_STATUSES),
    **{f"{op.value}_from": sql_status_list(t.accepts) for op, t in TRANSITIONS.items()},
}

_JCOLS: Final = ", ".join(f"j.{c}" for c in JOB_COLUMNS)
_COLS: Final = ", ".join(JOB_COLUMNS)

# Clears everything a worker holds on a job.
_UNLOCK: Final = "locked_at = NULL, locked_by = NULL, lease_expires_at = NULL, heartbeat_at = NULL"

# The fence of SPEC §10.2: only the current holder of this attempt may finish it.
_FENCE: Final = (
    "j.id = %(id)s AND j.locked_by = %(worker)s AND j.lock_version = %(version)s"
    " AND j.status = 'processing'"
)

_CLAIMABLE: Final = """
    j.ready_at IS NOT NULL AND j.ready_at <= now()
    AND (j.attempts < j.max_attempts OR j.status = 'waiting' OR j.resume_claim)
    AND (j.depends_on_tags IS NULL OR {s}dataqueue_tag_drain_clear(j.depends_on_tags, j.id))
"""

# Due jobs (migrations/0009_ready_sets.sql): written with a ready_at that had come; the two
# partial claim indexes of ungrouped and grouped jobs. Delayed jobs have ready_at > updated_at.
_READY_UNGROUPED: Final = "j.ready_at <= j.updated_at AND j.group_id IS NULL"
_READY_GROUPED: Final = "j.ready_at <= j.updated_at AND j.group_id IS NOT NULL"

#: How many delayed jobs whose time came one claim moves into the claim indexes.
PROMOTE_BATCH: Final = 100

# The claim's types ``t``: the wanted ones, or (no filter) every type with due jobs, found by
# a skip scan of each claim index (one probe per type), plus the types of the first delayed
# jobs whose time came (not promoted yet: one probe of job_queue_delayed_idx when none).
# The wanted types go through to_jsonb (STABLE, so not folded while planning): unnest of a
# known array is estimated at its length but of a parameter at 100 rows, so a custom plan of
# the prepared claim always looked cheaper than the generic one and every claim was planned
# anew; estimated alike, PostgreSQL can keep the generic plan (planning this statement costs
# about as much as running it).
_WANTED_TYPES: Final = (
    "t AS (SELECT job_type FROM jsonb_array_elements_text(to_jsonb(%(types)s::text[]))"
    " AS w(job_type))"
)


def _type_skip_scan(name: str, where: str) -> str:
    """CTE ``name(job_type)``: the distinct job types of the rows matching ``where``, one
    index probe each (a recursive skip scan of a claim index keyed by job type first).

    Types are walked from the last down: claims take each type's head (first in claim
    order), so until vacuum the entries of claimed jobs pile up there, and a probe from the
    front of the index re-checked all of them in the heap on every claim (measured: 260 heap
    fetches, 1.7 ms, per untyped claim after 25,000 claims). A type's tail is its newest,
    still pending jobs."""
    return f"""
{name}(job_type) AS (
    SELECT max(j.job_type) FROM {{s}}job_queue j WHERE {where}
    UNION ALL
    SELECT (SELECT max(j.job_type) FROM {{s}}job_queue j
            WHERE j.job_type < {name}.job_type AND {where})
    FROM {name} WHERE {name}.job_type IS NOT NULL
)"""


# Delayed jobs whose time came (not promoted yet), in job_queue_delayed_idx as ``d``.
_DELAYED_DUE: Final = "d.ready_at > d.updated_at AND d.ready_at <= now()"

_READY_TYPES: Final = (
    _type_skip_scan("tu", _READY_UNGROUPED)
    + ","
    + _type_skip_scan("tg", _READY_GROUPED)
    + f""",
t AS (SELECT job_type FROM tu WHERE job_type IS NOT NULL
      UNION SELECT job_type FROM tg WHERE job_type IS NOT NULL
      UNION SELECT job_type FROM (
          SELECT d.job_type FROM {{s}}job_queue d WHERE {_DELAYED_DUE}
          ORDER BY d.ready_at LIMIT {PROMOTE_BATCH}) dd)"""
)


# Promotion (the capped claim's; ``promote`` for the other): delayed jobs whose time came get
# updated_at = now(), which
# puts them in the claim indexes (the claim itself takes due delayed jobs of its types
# directly: ``cand`` holds them, so they are left alone here); one notification wakes the
# workers of other types. Nothing due: one probe of job_queue_delayed_idx. (``cand`` is then
# read twice, so it is materialised: the claim's update looks its ids up as an array, on the
# primary key, not by a join the planner might turn into a scan.)
def _promote(exclude: str) -> str:
    return f"""
UPDATE {{s}}job_queue p SET updated_at = now()
FROM (SELECT d.id FROM {{s}}job_queue d WHERE {_DELAYED_DUE}{exclude}
      ORDER BY d.ready_at LIMIT {PROMOTE_BATCH} FOR UPDATE SKIP LOCKED) due
WHERE p.id = due.id
RETURNING pg_notify(%(channel)s, '')"""


_PROMOTE: Final = "promo AS (" + _promote(" AND d.id NOT IN (SELECT id FROM cand)") + "\n)"

# The claim without a cap does not promote (an UPDATE node in every claim cost 5-8% of its
# throughput when, as almost always, nothing was due): it reports whether due delayed jobs
# are left beyond the ones it took, and the backend then runs ``promote`` (rarely).
# (A scalar subquery in ready_at order, not EXISTS: the planner drops an EXISTS' ORDER BY and
# may then scan the table for the first match.)
_PROMOTE_WANTED: Final = (
    f"(SELECT d.id FROM {{s}}job_queue d WHERE {_DELAYED_DUE}"
    " AND d.id <> ALL(ARRAY(SELECT id FROM cand)) ORDER BY d.ready_at LIMIT 1) IS NOT NULL"
)

# Per type ``t``: due jobs from the claim indexes in claim order, and delayed jobs whose time
# came (not promoted yet) earliest first (job_queue_delayed_idx: few, promotion keeps up).
_DUE_DELAYED: Final = "j.ready_at > j.updated_at"
_CLAIM_ORDER: Final = "j.priority DESC, j.created_at, j.id"


#: Run first in a claim's transaction. With sorting penalised the only cheap way to produce
#: claim order is the ordered claim index, so the planner cannot swap it for a scan + sort
#: when its estimates are off (a freshly bulk-loaded, never-analysed table, or a selective
#: ``job_types`` filter whose default selectivity makes a full sort look cheap). JIT is off
#: because the penalty inflates the estimated cost past its threshold (compiling would cost
#: far more than the few rows a claim touches).
CLAIM_PLANNER_SETTINGS: Final = (
    "SELECT set_config('enable_sort', 'off', true), set_config('jit', 'off', true)"
)


# Claiming: resuming a wait (status waiting, or a resumed token wait) consumes no attempt.
_CLAIM_SET: Final = """
    status = 'processing',
    attempts = j.attempts
        + CASE WHEN j.status = 'waiting' OR j.resume_claim THEN 0 ELSE 1 END,
    last_retried_at = CASE WHEN j.attempts > 0 AND j.status <> 'waiting' AND NOT j.resume_claim
                           THEN now() ELSE j.last_retried_at END,
    started_at = coalesce(j.started_at, now()),
    locked_at = now(), locked_by = %(worker)s, lock_version = j.lock_version + 1,
    lease_expires_at = now() + %(lease)s, heartbeat_at = NULL,
    updated_at = now(), pending_reason = NULL, wait_until = NULL, wait_token_id = NULL,
    ready_at = NULL, resume_claim = false
"""

_ADD_EVENT_META: Final = """
    jsonb_build_object('job_type', job_type, 'payload', payload, 'tags', tags,
                       'idempotency_key', idempotency_key)
    || CASE WHEN depends_on_job_ids IS NULL AND depends_on_tags IS NULL THEN '{}'::jsonb
            ELSE jsonb_build_object('depends_on', jsonb_build_object(
                     'job_ids', coalesce(depends_on_job_ids, '{}'),
                     'tags', coalesce(depends_on_tags, '{}'))) END
"""

_INPUT_COLUMNS: Final = (
    ("id", "bigint"), ("job_type", "text"), ("payload", "text"), ("max_attempts", "int"),
    ("priority", "int"), ("run_at", "timestamptz"), ("timeout_ms", "bigint"), ("fk", "bool"),
    ("tags", "text"), ("idem", "text"), ("retry_delay", "int"), ("retry_backoff", "bool"),
    ("retry_delay_max", "int"), ("dlq", "text"), ("group_id", "text"), ("group_tier", "text"),
    ("dep_ids", "text"), ("dep_tags", "text"), ("unmet_new", "int"),
)  # fmt: skip

#: Parameter names of ``add_jobs`` arrays, in statement order.
ADD_ARRAYS: Final = tuple(name for name, _ in _INPUT_COLUMNS)

# Binary parameters (%(…)b): dumping 10,000-element arrays as text costs several times more
# (every JSON payload would be quoted and escaped as an array element).
_UNNEST: Final = ", ".join(f"%({n})b::{t}[]" for n, t in _INPUT_COLUMNS)
_UNNEST_NAMES: Final = ", ".join(n for n, _ in _INPUT_COLUMNS)

# The insert of add_jobs, shared by both variants: ``rows`` holds the rows to insert with
# ``new_id``; ``blocked`` counts prerequisites that exist but have not completed.
_ADD_INSERT: Final = """
ins AS (
    INSERT INTO {s}job_queue (
        id, job_type, payload, max_attempts, priority, run_at, ready_at, timeout_ms,
        force_kill_on_timeout, tags, idempotency_key, retry_delay, retry_backoff,
        retry_delay_max, dead_letter_job_type, group_id, group_tier, depends_on_job_ids,
        depends_on_tags, unmet_dependencies)
    SELECT r.new_id, r.job_type, r.payload::jsonb, r.max_attempts, r.priority,
           coalesce(r.run_at, now()),
           CASE WHEN r.unmet_new + coalesce(b.n, 0) = 0 THEN coalesce(r.run_at, now()) END,
           r.timeout_ms, r.fk,
           r.tags::text[], r.idem, r.retry_delay, r.retry_backoff, r.retry_delay_max, r.dlq,
           r.group_id, r.group_tier, r.dep_ids::bigint[], r.dep_tags::text[],
           r.unmet_new + coalesce(b.n, 0)
    FROM rows r LEFT JOIN blocked b ON b.ord = r.ord
    {on_conflict}
    RETURNING id, job_type, payload, tags, idempotency_key, depends_on_job_ids,
              depends_on_tags, unmet_dependencies
),
ev AS (
    INSERT INTO {s}job_events (job_id, event_type, metadata)
    SELECT id, 'added', {meta} FROM ins
),
edges AS (
    -- depends_on_job_ids is de-duplicated (options, resolve_batch_refs) and the jobs are new,
    -- so no pair can exist yet: a plain insert, no ON CONFLICT (speculative insertion is slow).
    INSERT INTO {s}job_dependencies (prerequisite_id, job_id)
    SELECT d.pid, ins.id
    FROM ins CROSS JOIN LATERAL unnest(ins.depends_on_job_ids) AS d(pid)
    WHERE ins.depends_on_job_ids IS NOT NULL
)
"""

# Simple batches (no idempotency keys, no prerequisite ids): no lookups at all.
ADD_SIMPLE: Final = (
    """
WITH rows AS MATERIALIZED (
    SELECT i.*, coalesce(i.id, nextval({seq})) AS new_id
    FROM unnest({unnest}) WITH ORDINALITY AS i({names}, ord)
),
blocked AS (SELECT NULL::bigint AS ord, 0::bigint AS n WHERE false),
"""
    + _ADD_INSERT
    + """
SELECT array_agg(new_id ORDER BY ord), true, NULL::bigint[],
       (SELECT count(pg_notify(%(channel)s, '')) FROM (SELECT 1 FROM ins LIMIT 1) x)
FROM rows
"""
)

# Simple batches, narrow form: a column whose value is the same in every row of the batch
# (usually most of them: no tags, default attempts, …) is one scalar parameter instead of an
# array, so the server unnests only the columns that vary (``payload`` always does). With
# ids allocated beforehand (placeholder batches) the ids need not come back either.
ADD_NARROW: Final = """
WITH rows AS {materialized} (
    SELECT i.*, {new_id} AS new_id
    FROM unnest({unnest}) WITH ORDINALITY AS i({names}, ord)
),
ins AS (
    INSERT INTO {s}job_queue (
        id, job_type, payload, max_attempts, priority, run_at, ready_at, timeout_ms,
        force_kill_on_timeout, tags, idempotency_key, retry_delay, retry_backoff,
        retry_delay_max, dead_letter_job_type, group_id, group_tier, depends_on_job_ids,
        depends_on_tags, unmet_dependencies)
    SELECT r.new_id, {c:job_type}, r.payload::jsonb, {c:max_attempts}, {c:priority},
           coalesce({c:run_at}, now()),
           CASE WHEN {c:unmet_new} = 0 THEN coalesce({c:run_at}, now()) END,
           {c:timeout_ms}, {c:fk}, {c:tags}::text[], {c:idem}, {c:retry_delay},
           {c:retry_backoff}, {c:retry_delay_max}, {c:dlq}, {c:group_id}, {c:group_tier},
           {c:dep_ids}::bigint[], {c:dep_tags}::text[], {c:unmet_new}
    FROM rows r
    RETURNING id, job_type, payload, tags, idempotency_key, depends_on_job_ids,
              depends_on_tags, unmet_dependencies
),
ev AS (
    INSERT INTO {s}job_events (job_id, event_type, metadata)
    SELECT id, 'added', {meta} FROM ins
){edges}
SELECT {ids}, true, NULL::bigint[],
       (SELECT count(pg_notify(%(channel)s, '')) FROM (SELECT 1 FROM ins LIMIT 1) x)
"""

# The edges of ADD_NARROW, when some row has prerequisites (see _ADD_INSERT).
_NARROW_EDGES: Final = """,
edges AS (
    INSERT INTO {s}job_dependencies (prerequisite_id, job_id)
    SELECT d.pid, ins.id
    FROM ins CROSS JOIN LATERAL unnest(ins.depends_on_job_ids) AS d(pid)
    WHERE ins.depends_on_job_ids IS NOT NULL
)"""

_INPUT_TYPES: Final = dict(_INPUT_COLUMNS)

# Full batches: idempotency keys (existing → returned, duplicates in the batch → first one)
# and prerequisites that must exist (locked FOR SHARE so a concurrent completion cannot slip
# between reading their status and writing our edges; nothing is written if any is missing).
ADD_FULL: Final = (
    """
WITH input AS MATERIALIZED (
    SELECT * FROM unnest({unnest}) WITH ORDINALITY AS i({names}, ord)
),
pre AS MATERIALIZED (
    SELECT p.id, p.status, p.ready_at FROM {s}job_queue p
    WHERE p.id = ANY(%(prereqs)s::bigint[]) ORDER BY p.id FOR SHARE
),
ok AS MATERIALIZED (
    SELECT count(*) = cardinality(%(prereqs)s::bigint[]) AS ok FROM pre
),
hit AS MATERIALIZED (
    SELECT j.idempotency_key AS idem, j.id FROM {s}job_queue j
    WHERE j.idempotency_key = ANY(%(keys)s::text[])
),
firsts AS MATERIALIZED (
    SELECT DISTINCT ON (idem) idem, ord FROM input WHERE idem IS NOT NULL ORDER BY idem, ord
),
rows AS MATERIALIZED (
    SELECT i.*, coalesce(i.id, nextval({seq})) AS new_id
    FROM input i
    WHERE (SELECT ok FROM ok)
      AND (i.idem IS NULL
           OR (i.ord IN (SELECT ord FROM firsts) AND i.idem NOT IN (SELECT idem FROM hit)))
),
blocked AS (
    SELECT r.ord, count(*) AS n
    FROM rows r CROSS JOIN LATERAL unnest(r.dep_ids::bigint[]) AS d(pid)
    JOIN pre p ON p.id = d.pid
    WHERE p.status <> 'completed'
    GROUP BY r.ord
),
"""
    + _ADD_INSERT
    + """,
resolved AS (
    SELECT i.ord,
           coalesce(ins.id, h.id, fi.id) AS id,
           ins.id IS NOT NULL AS created
    FROM input i
    LEFT JOIN rows r ON r.ord = i.ord
    LEFT JOIN ins ON ins.id = r.new_id
    LEFT JOIN hit h ON h.idem = i.idem
    LEFT JOIN (SELECT f.idem, ins2.id FROM firsts f JOIN rows r2 ON r2.ord = f.ord
               JOIN ins ins2 ON ins2.id = r2.new_id) fi
           ON fi.idem = i.idem AND r.ord IS NULL
)
SELECT array_agg(id ORDER BY ord), (SELECT ok FROM ok),
       (SELECT array_agg(id) FROM pre),
       (SELECT count(pg_notify(%(channel)s, '')) FROM (SELECT 1 FROM ins LIMIT 1) x),
       array_agg(created ORDER BY ord),
       (SELECT array_agg(id) FROM pre
        WHERE status = 'cancelled' OR (status = 'failed' AND ready_at IS NULL))
FROM resolved
"""
)


# One job without prerequisite ids (the common ``add_job``): a VALUES insert. Executing the
# array statements above costs several times more for a single row. An idempotency key that
# exists returns the existing id (created = 0); a key inserted concurrently and not yet
# visible comes back as NULL and is looked up again by the caller.
ADD_ONE: Final = """
WITH ins AS (
    INSERT INTO {s}job_queue ({columns})
    VALUES ({values})
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, job_type, payload, tags, idempotency_key, depends_on_job_ids, depends_on_tags
),
ev AS (
    INSERT INTO {s}job_events (job_id, event_type, metadata)
    SELECT id, 'added', {meta} FROM ins
)
SELECT coalesce((SELECT id FROM ins),
                (SELECT id FROM {s}job_queue WHERE idempotency_key = %(idem)s)),
       (SELECT count(*) FROM ins),
       (SELECT count(pg_notify(%(channel)s, '')) FROM ins)
"""


# ADD_ONE specialised to the options a job actually sets (usually only job_type and payload):
# an option left at its default is a constant in the statement, not a parameter, and with no
# idempotency key there is no conflict to handle (ON CONFLICT would make the insert
# speculative). (column, parameter, expression, constant when the parameter is absent)
_ONE_VALUES: Final = (
    ("job_type", "job_type", "%(job_type)s", None),
    ("payload", "payload", "%(payload)s::jsonb", None),
    ("max_attempts", "max_attempts", "%(max_attempts)s", str(DEFAULT_MAX_ATTEMPTS)),
    ("priority", "priority", "%(priority)s", str(DEFAULT_PRIORITY)),
    ("run_at", "run_at", "coalesce(%(run_at)s::timestamptz, now())", "now()"),
    ("ready_at", "run_at", "coalesce(%(run_at)s::timestamptz, now())", "now()"),
    ("timeout_ms", "timeout_ms", "%(timeout_ms)s", "NULL"),
    ("force_kill_on_timeout", "fk", "%(fk)s", "false"),
    ("tags", "tags", "%(tags)s::text[]", "NULL"),
    ("idempotency_key", "idem", "%(idem)s", "NULL"),
    ("retry_delay", "retry_delay", "%(retry_delay)s", "NULL"),
    ("retry_backoff", "retry_backoff", "%(retry_backoff)s", "NULL"),
    ("retry_delay_max", "retry_delay_max", "%(retry_delay_max)s", "NULL"),
    ("dead_letter_job_type", "dlq", "%(dlq)s", "NULL"),
    ("group_id", "group_id", "%(group_id)s", "NULL"),
    ("group_tier", "group_tier", "%(group_tier)s", "NULL"),
    ("depends_on_tags", "dep_tags", "%(dep_tags)s::text[]", "NULL"),
)

#: Parameter names of the single-job statement that may be left out (at their defaults).
ONE_OPTIONAL: Final = frozenset(param for _, param, _, default in _ONE_VALUES if default)

ADD_ONE_PLAIN: Final = """
WITH ins AS (
    INSERT INTO {s}job_queue ({columns})
    VALUES ({values})
    RETURNING id, job_type, payload, tags, idempotency_key, depends_on_job_ids, depends_on_tags
),
ev AS (
    INSERT INTO {s}job_events (job_id, event_type, metadata)
    SELECT id, 'added', {meta} FROM ins
)
SELECT id, 1, pg_notify(%(channel)s, '') FROM ins
"""


def pg_text_array(values: Sequence[str] | None) -> str | None:
    """A PostgreSQL array literal for ``values`` (quotes and backslashes escaped)."""
    if values is None:
        return None
    return (
        "{"
        + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
        + "}"
    )


def pg_int_array(values: Iterable[int]) -> str:
    """A PostgreSQL array literal of integers. Hot statements pass their arrays as literals:
    psycopg dumps a list element by element in Python, which cost more than the statement."""
    return "{" + ",".join(map(str, values)) + "}"


def pg_bool_array(values: Iterable[bool]) -> str:
    return "{" + ",".join("t" if v else "f" for v in values) + "}"


def pg_nullable_text_array(values: Iterable[str | None]) -> str:
    """``pg_text_array`` with None elements as NULL."""
    return (
        "{"
        + ",".join(
            "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for v in values
        )
        + "}"
    )


def done_channel(schema: str | None) -> str:
    """The channel on which a queue announces that jobs finished (completed, failed for good,
    cancelled): ``wait_for_job`` listens on it, workers do not."""
    name = notify_channel(schema) + ".done"
    if len(name.encode()) <= 63:
        return name
    return "dataqueue.done." + hashlib.sha256((schema or "").encode()).hexdigest()[:40]


def notify_channel(schema: str | None) -> str:
    """The LISTEN/NOTIFY channel of a schema's queue (fits PostgreSQL's 63-byte names)."""
    if not schema:
        return "dataqueue"
    name = f"dataqueue.{schema}"
    if len(name.encode()) <= 63:
        return name
    return "dataqueue." + hashlib.sha256(schema.encode()).hexdigest()[:40]


# -- filters ------------------------------------------------------------------------------------

_RUN_AT_OPS: Final = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "="}
_TAG_SQL: Final = {
    TagQueryMode.ALL: "j.tags @> %({p})s::text[]",
    TagQueryMode.ANY: "j.tags && %({p})s::text[]",
    TagQueryMode.NONE: "(j.tags IS NULL OR NOT j.tags && %({p})s::text[])",
    TagQueryMode.EXACT: "(j.tags @> %({p})s::text[] AND j.tags <@ %({p})s::text[])",
}


def tag_clause(tags: Sequence[str], mode: TagQueryMode, param: str = "f_tags") -> str:
    """Set-semantics tag match (``exact`` = set equality, ``none`` includes untagged jobs)."""
    return _TAG_SQL[mode].format(p=param)


def filter_clause(filters: JobFilters) -> tuple[str, dict[str, Any]]:
    """``JobFilters`` → (``AND …`` SQL over alias ``j``, parameters)."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    if filters.job_type is not None:
        parts.append("j.job_type = %(f_job_type)s")
        params["f_job_type"] = filters.job_type
    if filters.priority is not None:
        parts.append("j.priority = %(f_priority)s")
        params["f_priority"] = filters.priority
    if filters.run_at is not None:
        for op, value in filters.run_at.items():
            parts.append(f"j.run_at {_RUN_AT_OPS[op]} %(f_run_at_{op})s")
            params[f"f_run_at_{op}"] = value
    if filters.tags is not None:
        parts.append(tag_clause(filters.tags.values, filters.tags.mode))
        params["f_tags"] = list(filters.tags.values)
    return "".join(f" AND {p}" for p in parts), params


# -- edits --------------------------------------------------------------------------------------

_EDIT_SQL: Final = {
    "payload_json": "payload = %(e_payload_json)s::jsonb",
    "max_attempts": "max_attempts = %(e_max_attempts)s",
    "priority": "priority = %(e_priority)s",
    "run_at": "run_at = coalesce(%(e_run_at)s::timestamptz, now()),"
    " ready_at = CASE WHEN j.unmet_dependencies = 0"
    " THEN coalesce(%(e_run_at)s::timestamptz, now()) END",
    "timeout_ms": "timeout_ms = %(e_timeout_ms)s",
    "tags": "tags = %(e_tags)s::text[]",
    "retry_delay": "retry_delay = %(e_retry_delay)s",
    "retry_backoff": "retry_backoff = %(e_retry_backoff)s",
    "retry_delay_max": "retry_delay_max = %(e_retry_delay_max)s",
    "dead_letter_job_type": "dead_letter_job_type = %(e_dead_letter_job_type)s",
}


def edit_assignments(updates: JobUpdates) -> tuple[str, dict[str, Any]]:
    """``JobUpdates`` → (``SET`` list, parameters)."""
    sets: list[str] = []
    params: dict[str, Any] = {}
    for key, value in updates.values.items():
        sets.append(_EDIT_SQL[key])
        params[f"e_{key}"] = list(value) if isinstance(value, tuple) else value
    return ", ".join(sets), params


_CRON_EDITABLE: Final = frozenset(
    {
        "cron_expression", "payload_json", "max_attempts", "priority", "timeout_ms",
        "force_kill_on_timeout", "tags", "timezone", "allow_overlap", "retry_delay",
        "retry_backoff", "retry_delay_max", "dead_letter_job_type", "next_run_at",
    }
)  # fmt: skip


def cron_assignments(values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Cron ``edit`` values (column names; ``payload_json`` for the payload) → SET list."""
    unknown = set(values) - _CRON_EDITABLE
    if unknown:
        raise CronError(f"cannot edit cron field(s) {sorted(unknown)}")
    sets: list[str] = []
    params: dict[str, Any] = {}
    for key, value in values.items():
        if key == "payload_json":
            sets.append("payload = %(c_payload_json)s::jsonb")
        elif key == "tags":
            sets.append("tags = %(c_tags)s::text[]")
        else:
            sets.append(f"{key} = %(c_{key})s")
        params[f"c_{key}"] = list(value) if isinstance(value, tuple) else value
    return ", ".join(sets), params


# -- the statements -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Statements:
    """All statements, rendered for one schema (None = the connection's search_path).

    Each statement is rendered once per instance (``cached_property``) and then reused, so the
    per-call paths (progress, output, the idle worker's due-time lookup, ...) do no string work.
    """

    schema: str | None

    def _r(self, template: str, **extra: str) -> str:
        prefix = sql_ident(self.schema) + "." if self.schema else ""
        text = template.replace("{s}", prefix).replace("{seq}", _seq(self.schema))
        text = text.replace("{jcols}", _JCOLS).replace("{cols}", _COLS)
        for key, value in _STATUS_SETS.items():
            text = text.replace("{" + key + "}", value)
        for key, value in extra.items():
            text = text.replace("{" + key + "}", value)
        return text

    # enqueue -----------------------------------------------------------------------------------
    def add_one_with(self, given: frozenset[str]) -> str:
        """The single-job statement for a job that sets the options ``given`` (parameter
        names of ``ONE_OPTIONAL``; the others keep their column defaults). With ``idem`` it is
        ``ADD_ONE`` itself; either way it returns (id, created, _)."""
        assert given <= ONE_OPTIONAL
        values = [
            expr if default is None or param in given else default
            for _, param, expr, default in _ONE_VALUES
        ]
        return self._r(
            (ADD_ONE if "idem" in given else ADD_ONE_PLAIN).replace("{meta}", _ADD_EVENT_META),
            columns=", ".join(column for column, _, _, _ in _ONE_VALUES),
            values=", ".join(values),
        )

    def add(self, *, full: bool) -> str:
        template = ADD_FULL if full else ADD_SIMPLE
        on_conflict = (
            "ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
            if full
            else ""
        )
        return self._r(
            template.replace("{on_conflict}", on_conflict).replace("{meta}", _ADD_EVENT_META),
            unnest=_UNNEST,
            names=_UNNEST_NAMES,
        )

    def add_narrow(self, varying: frozenset[str], *, edges: bool) -> str:
        """``ADD_NARROW`` for a batch whose columns in ``varying`` differ between rows (they
        are arrays; every other column is a scalar parameter of the same name). ``payload``
        must vary; ``id`` varies when the ids were allocated beforehand."""
        assert "payload" in varying and varying <= _INPUT_TYPES.keys()
        arrays = [(n, t) for n, t in _INPUT_COLUMNS if n in varying]
        given = "id" in varying
        text = ADD_NARROW.replace("{edges}", _NARROW_EDGES if edges else "")
        for name, typ in _INPUT_COLUMNS:
            expr = f"r.{name}" if name in varying else f"%({name})s::{typ}"
            text = text.replace("{c:" + name + "}", expr)
        text = text.replace("{new_id}", "i.id" if given else "nextval({seq})")
        return self._r(
            text.replace("{meta}", _ADD_EVENT_META),
            materialized="NOT MATERIALIZED" if given else "MATERIALIZED",
            unnest=", ".join(f"%({n})b::{t}[]" for n, t in arrays),
            names=", ".join(n for n, _ in arrays),
            ids="NULL::bigint[]" if given else "(SELECT array_agg(new_id ORDER BY ord) FROM rows)",
        )

    @cached_property
    def allocate_ids(self) -> str:
        return self._r("SELECT array_agg(nextval({seq})) FROM generate_series(1, %(n)s)")

    @cached_property
    def allocate_ids_now(self) -> str:
        """``allocate_ids`` and the transaction's ``now()`` (the default of run_at)."""
        return self._r("SELECT array_agg(nextval({seq})), now() FROM generate_series(1, %(n)s)")

    def copy_into(self, table: str, columns: Sequence[str]) -> str:
        """``COPY <table> (<columns>) FROM STDIN``; names come from this package only."""
        return self._r(f"COPY {{s}}{table} ({', '.join(columns)}) FROM STDIN")

    @cached_property
    def next_due(self) -> str:
        """Seconds until the earliest delayed job that comes due after ``%(since)s`` seconds
        ago (future run_at, retry or wait time) becomes claimable — zero or less for one that
        came due meanwhile; NULL when there is none. One probe of job_queue_delayed_idx
        (migration 0009; a claim takes or promotes delayed jobs once due)."""
        return self._r(
            "SELECT extract(epoch FROM min(ready_at) - now())"
            " FROM {s}job_queue WHERE ready_at > updated_at"
            " AND ready_at > now() - make_interval(secs => %(since)s)"
        )

    @cached_property
    def notify(self) -> str:
        return "SELECT pg_notify(%(channel)s, '')"

    @cached_property
    def ids_by_keys(self) -> str:
        return self._r(
            "SELECT idempotency_key, id FROM {s}job_queue"
            " WHERE idempotency_key = ANY(%(keys)s::text[])"
        )

    # unique jobs (migrations/0007_unique_jobs.sql) ---------------------------------------------
    @cached_property
    def unique_lock(self) -> str:
        """Serialise adds of the same unique keys until the transaction ends (keys sorted, so
        two batches cannot lock in opposite orders)."""
        return (
            "SELECT count(pg_advisory_xact_lock(%(ns)s::int, hashtext(k)))"
            " FROM (SELECT k FROM unnest(%(keys)s::text[]) k ORDER BY k) x"
        )

    @cached_property
    def unique_holders(self) -> str:
        """For each key, the newest job holding it that is still in its scope."""
        return self._r(
            """
SELECT DISTINCT ON (j.unique_key) j.unique_key, j.id FROM {s}job_queue j
WHERE j.unique_key = ANY(%(keys)s::text[])
  AND (j.unique_until IS NULL OR j.unique_until > now())
  AND (NOT j.unique_active OR j.status IN {active}
       OR (j.status = 'failed' AND j.next_attempt_at IS NOT NULL))
ORDER BY j.unique_key, j.id DESC
"""
        )

    @cached_property
    def set_unique(self) -> str:
        """Record the unique key and scope of jobs just added (same transaction)."""
        return self._r(
            """
UPDATE {s}job_queue j SET unique_key = u.k, unique_active = u.a,
    unique_until = CASE WHEN u.secs IS NULL THEN NULL
                        ELSE now() + u.secs * interval '1 second' END
FROM unnest(%(ids)s::bigint[], %(keys)s::text[], %(active)s::boolean[],
            %(secs)s::float8[]) AS u(id, k, a, secs)
WHERE j.id = u.id
"""
        )

    # reads -------------------------------------------------------------------------------------
    @cached_property
    def get_outputs(self) -> str:
        return self._r("SELECT id, output FROM {s}job_queue WHERE id = ANY(%(ids)s::bigint[])")

    @cached_property
    def get_job(self) -> str:
        return self._r("SELECT {jcols} FROM {s}job_queue j WHERE j.id = %(id)s")

    @cached_property
    def watch_job(self) -> str:
        """``get_job`` that marks the job as waited for (migrations/0011_waited_results.sql):
        the mark is an UPDATE, so it waits for a transition in flight and then reads its
        result, or the transition waits for it and sees the mark. Marked once; later reads
        are plain."""
        return self._r(
            """
WITH mark AS (
    UPDATE {s}job_queue j SET result_wanted = true
    WHERE j.id = %(id)s AND NOT j.result_wanted
    RETURNING {jcols}
)
SELECT * FROM mark
UNION ALL
SELECT {jcols} FROM {s}job_queue j WHERE j.id = %(id)s AND NOT EXISTS (SELECT 1 FROM mark)
"""
        )

    def get_jobs(self, where: str, *, cursor: bool) -> str:
        page = "AND j.id < %(cursor)s" if cursor else ""
        offset = "" if cursor else "OFFSET %(offset)s"
        return self._r(
            "SELECT {jcols} FROM {s}job_queue j WHERE true " + where + " " + page
            + " ORDER BY j.id DESC LIMIT %(limit)s " + offset
        )  # fmt: skip

    def list_jobs(self, where: str) -> str:
        return self._r(
            "SELECT {jcols} FROM {s}job_queue j WHERE true " + where
            + " ORDER BY j.created_at DESC, j.id DESC LIMIT %(limit)s OFFSET %(offset)s"
        )  # fmt: skip

    @cached_property
    def list_jobs_by_status(self) -> str:
        """One status, newest first: per job type the newest ``limit + offset`` of
        job_queue_type_status_idx (migration 0010), merged."""
        return self._r(
            _JOB_TYPES_CTE
            + _per_type_newest("{jcols}", "", "%(limit)s + %(offset)s")
            + " LIMIT %(limit)s OFFSET %(offset)s"
        )

    @cached_property
    def get_job_events(self) -> str:
        cols = ", ".join(EVENT_COLUMNS)
        return self._r(f"SELECT {cols} FROM {{s}}job_events WHERE job_id = %(id)s ORDER BY id")

    # claim -------------------------------------------------------------------------------------
    def claim(self, *, typed: bool) -> str:
        """Claim without group caps: one statement (lock, update, events). Rows are the
        claimed jobs' columns and ``promote`` (whether ``promote`` should run next); no job
        claimed: one row of NULL columns.

        Per job type (the wanted ones, or every type with due jobs), the first ``limit``
        claimable jobs of job_queue_ready_idx, of job_queue_ready_grouped_idx and of the due
        part of job_queue_delayed_idx (migration 0009), then the first ``limit`` of those in
        claim order: the work does not grow with jobs of other types, blocked jobs or jobs
        scheduled later (``types`` must not repeat a type). Up to ``limit`` x 3 x types rows
        are locked for the statement's short transaction; the ones not chosen are released
        at its end."""
        branches = " UNION ALL ".join(
            "SELECT * FROM (SELECT j.id, j.priority, j.created_at FROM {s}job_queue j"
            " WHERE j.job_type = t.job_type AND " + where + " AND " + _CLAIMABLE
            + " ORDER BY " + order + " LIMIT %(limit)s FOR UPDATE OF j SKIP LOCKED) " + alias
            for where, order, alias in (
                (_READY_UNGROUPED, _CLAIM_ORDER, "u"),
                (_READY_GROUPED, _CLAIM_ORDER, "g"),
                (_DUE_DELAYED, "j.ready_at", "d"),
            )
        )  # fmt: skip
        return self._r(
            ("WITH RECURSIVE " + _READY_TYPES if not typed else "WITH " + _WANTED_TYPES)
            + """,
cand AS (
    SELECT c.id FROM t CROSS JOIN LATERAL ("""
            + branches
            + """) c
    ORDER BY c.priority DESC, c.created_at, c.id
    LIMIT %(limit)s
),
upd AS (
    UPDATE {s}job_queue j SET """
            + _CLAIM_SET
            + """
    WHERE j.id = ANY(ARRAY(SELECT id FROM cand))
    RETURNING {jcols}
),
ev AS (INSERT INTO {s}job_events (job_id, event_type) SELECT id, 'processing' FROM upd)
SELECT {cols}, f.promote FROM (SELECT """
            + _PROMOTE_WANTED
            + """ AS promote) f
LEFT JOIN upd ON true
"""
        )

    @cached_property
    def promote(self) -> str:
        """Due delayed jobs into the claim indexes, a bounded batch, with one wake-up (run
        after a claim that reported some left)."""
        return self._r(_promote(""))

    def claim_candidates(self, *, typed: bool) -> str:
        """Grouped claim, step 1: lock candidates in claim order — per type, the ungrouped
        jobs from job_queue_ready_idx, due delayed jobs (as in ``claim``) and, for every
        group of the type under ``cap`` in this snapshot (and not in ``full``), up to ``cap``
        of its jobs from job_queue_ready_group_idx. A group at its cap costs one index probe
        however many jobs it holds. The caller re-counts each group under an advisory lock."""
        lateral = (
            """
        SELECT j.id, j.group_id, j.priority, j.created_at FROM {s}job_queue j
        WHERE {where} AND """
            + _CLAIMABLE
            + """
          AND j.id <> ALL(%(seen)s::bigint[])
        ORDER BY {order}
        LIMIT {limit}
        FOR UPDATE OF j SKIP LOCKED"""
        )
        ungrouped = lateral.format(
            where="j.job_type = t.job_type AND " + _READY_UNGROUPED,
            order=_CLAIM_ORDER,
            limit="%(limit)s",
            s="{s}",
        )
        delayed = lateral.format(
            where="j.job_type = t.job_type AND " + _DUE_DELAYED
            + " AND (j.group_id IS NULL OR j.group_id <> ALL(%(full)s::text[]))",
            order="j.ready_at",
            limit="%(limit)s",
            s="{s}",
        )  # fmt: skip
        grouped = lateral.format(
            where="j.job_type = o.job_type AND j.group_id = o.group_id AND " + _READY_GROUPED,
            order=_CLAIM_ORDER,
            limit="least(%(limit)s, %(cap)s)",
            s="{s}",
        )
        return self._r(
            ("WITH RECURSIVE " + _READY_TYPES if not typed else "WITH RECURSIVE " + _WANTED_TYPES)
            + """,
g(job_type, group_id) AS (
    SELECT t.job_type, (SELECT min(j.group_id) FROM {s}job_queue j
                        WHERE j.job_type = t.job_type AND """
            + _READY_GROUPED
            + """)
    FROM t
    UNION ALL
    SELECT g.job_type, (SELECT min(j.group_id) FROM {s}job_queue j
                        WHERE j.job_type = g.job_type AND j.group_id > g.group_id AND """
            + _READY_GROUPED
            + """)
    FROM g WHERE g.group_id IS NOT NULL
),
open AS (
    SELECT g.job_type, g.group_id FROM g
    WHERE g.group_id IS NOT NULL AND g.group_id <> ALL(%(full)s::text[])
      AND (SELECT count(*) FROM (SELECT 1 FROM {s}job_queue p
                                 WHERE p.status = 'processing' AND p.group_id = g.group_id
                                 LIMIT %(cap)s) x) < %(cap)s
),
cand AS (
    SELECT c.id, c.group_id, c.priority, c.created_at FROM (
        SELECT u.* FROM t CROSS JOIN LATERAL ("""
            + ungrouped
            + """) u
        UNION ALL
        SELECT d.* FROM t CROSS JOIN LATERAL ("""
            + delayed
            + """) d
        UNION ALL
        SELECT v.* FROM open o CROSS JOIN LATERAL ("""
            + grouped
            + """) v
    ) c
    ORDER BY c.priority DESC, c.created_at, c.id
    LIMIT %(limit)s
),
"""
            + _PROMOTE
            + """
SELECT id, group_id FROM cand ORDER BY priority DESC, created_at, id
"""
        )

    @cached_property
    def lock_groups(self) -> str:
        """Grouped claim, step 2: serialise claimers of the same groups (sorted: no deadlock)."""
        return (
            "SELECT count(pg_advisory_xact_lock(%(ns)s, h)) FROM"
            " (SELECT DISTINCT hashtext(g) AS h FROM unnest(%(groups)s::text[]) g ORDER BY 1) x"
        )

    @cached_property
    def count_active_groups(self) -> str:
        """Grouped claim, step 3 (a new snapshot, after the locks): processing per group."""
        return self._r(
            "SELECT group_id, count(*) FROM {s}job_queue"
            " WHERE status = 'processing' AND group_id = ANY(%(groups)s::text[])"
            " GROUP BY group_id"
        )

    @cached_property
    def claim_ids(self) -> str:
        """Grouped claim, step 4: claim the chosen (already locked) ids."""
        return self._r(
            """
WITH upd AS (
    UPDATE {s}job_queue j SET """
            + _CLAIM_SET
            + """
    WHERE j.id = ANY(%(ids)s::bigint[])
    RETURNING {jcols}
),
ev AS (INSERT INTO {s}job_events (job_id, event_type) SELECT id, 'processing' FROM upd)
SELECT {cols} FROM upd
"""
        )

    # finish ------------------------------------------------------------------------------------
    @cached_property
    def complete(self) -> str:
        """Fenced completion plus the release of dependents, in one call: see
        migrations/0004_complete_function.sql for why it is a function."""
        return self._r(
            "SELECT {s}dataqueue_complete(%(id)s, %(worker)s, %(version)s, %(keep)s,"
            " %(output)s::jsonb, %(channel)s, %(done)s)"
        )

    @cached_property
    def complete_many(self) -> str:
        """A batch of fenced completions in one call (migrations/0011_waited_results.sql):
        returns the 1-based positions of the items that completed; notifies ``done`` only
        if one of them is waited for (``result_wanted``)."""
        return self._r(
            "SELECT {s}dataqueue_complete_many(%(ids)s::bigint[], %(workers)s::text[],"
            " %(versions)s::bigint[], %(keep)s::boolean[], %(outputs)s::jsonb[], %(channel)s,"
            " %(done)s)"
        )

    def fail(self, *, fenced: bool) -> str:
        """Apply a failure plan (dataqueue.lifecycle.plan_failure): ``delay`` is NULL for a
        terminal failure, ``dlq`` the dead-letter type (terminal only), ``envelope`` its
        payload. No decision is taken here."""
        fence = (
            _FENCE
            if fenced
            else "j.id = %(id)s AND j.lock_version = %(version)s"
            " AND j.status IN {fail_unfenced_from}"
        )
        return self._r(
            """
WITH upd AS (
    UPDATE {s}job_queue j SET
        status = 'failed', updated_at = now(), last_failed_at = now(),
        failure_reason = %(reason)s,
        error_history = j.error_history || jsonb_build_array(
            %(entry)s::jsonb || jsonb_build_object('timestamp', now())),
        next_attempt_at = now() + %(delay)s::interval,
        ready_at = CASE WHEN j.unmet_dependencies = 0 THEN now() + %(delay)s::interval END,
        dead_letter_job_id = CASE WHEN %(dlq)s::text IS NOT NULL
                                  THEN nextval({seq}) ELSE j.dead_letter_job_id END,
        dead_lettered_at = CASE WHEN %(dlq)s::text IS NOT NULL
                                THEN now() ELSE j.dead_lettered_at END,
        wait_until = NULL, wait_token_id = NULL, resume_claim = false, """
            + _UNLOCK
            + """
    WHERE """
            + fence
            + """
    RETURNING j.id, j.job_type, %(delay)s::interval IS NOT NULL AS will_retry,
              CASE WHEN %(dlq)s::text IS NOT NULL THEN j.dead_letter_job_id END AS dl_id,
              j.result_wanted
),
dl AS (
    INSERT INTO {s}job_queue (id, job_type, payload, max_attempts, priority, run_at, ready_at)
    SELECT dl_id, %(dlq)s::text, %(envelope)s::jsonb, %(dl_attempts)s, %(dl_priority)s,
           now(), now()
    FROM upd WHERE dl_id IS NOT NULL
    RETURNING id, job_type
),
dl_ev AS (
    INSERT INTO {s}job_events (job_id, event_type, metadata)
    SELECT dl.id, 'added', jsonb_build_object('job_type', dl.job_type,
                                              'source_job_id', upd.id,
                                              'source_job_type', upd.job_type)
    FROM dl, upd
),
ev AS (
    INSERT INTO {s}job_events (job_id, event_type, metadata)
    SELECT id, 'failed', jsonb_build_object('message', %(message)s::text,
                                            'failure_reason', %(reason)s::text,
                                            'dead_letter_job_id', dl_id,
                                            'will_retry', will_retry)
    FROM upd
)
SELECT will_retry, dl_id,
       (SELECT count(pg_notify(%(channel)s, '')) FROM upd WHERE will_retry OR dl_id IS NOT NULL),
       (SELECT count(pg_notify(%(done)s, '')) FROM upd WHERE NOT will_retry AND result_wanted)
FROM upd
"""
        )

    def cascade(self, guard: str) -> str:
        """Cancel, transitively, pending/waiting jobs that depend on the roots — by id or by
        a tag drain the root's tags satisfy. ``guard`` restricts which roots count (it
        identifies the transition made by this transaction)."""
        return self._r(
            """
WITH RECURSIVE roots AS (
    SELECT j.id, j.tags FROM {s}job_queue j WHERE j.id = ANY(%(roots)s::bigint[]) AND """
            + guard
            + """
),
down(id, tags, root) AS (
    SELECT id, tags, id FROM roots
    UNION
    SELECT j.id, j.tags, down.root
    FROM down
    CROSS JOIN LATERAL (
        SELECT e.job_id AS id FROM {s}job_dependencies e WHERE e.prerequisite_id = down.id
        UNION ALL
        SELECT o.id FROM {s}job_queue o
        WHERE down.tags IS NOT NULL AND o.depends_on_tags IS NOT NULL
          AND o.depends_on_tags <@ down.tags
    ) n
    JOIN {s}job_queue j ON j.id = n.id
    WHERE j.status IN {cancel_from}
),
victims AS (
    SELECT DISTINCT ON (id) id, root FROM down WHERE id <> root ORDER BY id, root
),
upd AS (
    UPDATE {s}job_queue j SET status = 'cancelled', updated_at = now(),
        last_cancelled_at = now(), wait_until = NULL, wait_token_id = NULL,
        ready_at = NULL, resume_claim = false,
        pending_reason = jsonb_build_object('root_job_id', v.root,
                                            'dependency_cascade', true)::text
    FROM victims v
    WHERE j.id = v.id AND j.status IN {cancel_from}
    RETURNING j.id, v.root, j.result_wanted
),
ev AS (
    INSERT INTO {s}job_events (job_id, event_type, metadata)
    SELECT id, 'cancelled', jsonb_build_object('root_job_id', root, 'dependency_cascade', true)
    FROM upd
)
SELECT coalesce(array_agg(id ORDER BY id), '{}'),
       (SELECT count(pg_notify(%(done)s, '')) FROM upd WHERE result_wanted)
FROM upd
"""
        )

    @cached_property
    def cascade_after_fail(self) -> str:
        # No status test in guards: with one, a never-analysed table may get a plan that walks
        # a status index instead of the primary key.
        return self.cascade("j.last_failed_at = now() AND j.next_attempt_at IS NULL")

    @cached_property
    def cascade_from_dead(self) -> str:
        """For prerequisites that were already cancelled or terminally failed when dependents
        were added: cancel those dependents (they could never run)."""
        return self.cascade(
            "(j.status = 'cancelled' OR (j.status = 'failed' AND j.ready_at IS NULL))"
        )

    @cached_property
    def cascade_after_cancel(self) -> str:
        return self.cascade("j.last_cancelled_at = now()")

    @cached_property
    def wait(self) -> str:
        return self._r(
            """
WITH tok AS (
    SELECT w.status FROM {s}waitpoints w WHERE w.id = %(token)s::text FOR SHARE
),
flag AS (SELECT EXISTS (SELECT 1 FROM tok WHERE status <> 'waiting') AS done),
upd AS (
    UPDATE {s}job_queue j SET
        status = CASE WHEN f.done THEN 'pending' ELSE 'waiting' END,
        wait_until = CASE WHEN f.done THEN NULL ELSE %(until)s::timestamptz END,
        wait_token_id = CASE WHEN f.done THEN NULL ELSE %(token)s::text END,
        ready_at = CASE WHEN f.done THEN now()
                        WHEN %(token)s::text IS NULL THEN %(until)s::timestamptz END,
        resume_claim = f.done,
        step_data = %(step_data)s::jsonb, updated_at = now(), """
            + _UNLOCK
            + """
    FROM flag f
    WHERE """
            + _FENCE
            + """
    RETURNING j.id
),
ev AS (
    INSERT INTO {s}job_events (job_id, event_type, metadata)
    SELECT id, 'waiting', jsonb_build_object('wait_until', %(until)s::timestamptz,
                                             'wait_token_id', %(token)s::text)
    FROM upd
)
SELECT count(*), (SELECT count(pg_notify(%(channel)s, '')) FROM upd) FROM upd
"""
        )

    @cached_property
    def prolong(self) -> str:
        return self._r(
            """
WITH upd AS (
    UPDATE {s}job_queue j SET locked_at = now(), lease_expires_at = now() + %(lease)s,
        updated_at = now()
    WHERE """
            + _FENCE
            + """
    RETURNING j.id
),
ev AS (INSERT INTO {s}job_events (job_id, event_type) SELECT id, 'prolonged' FROM upd)
SELECT count(*) FROM upd
"""
        )

    @cached_property
    def heartbeat(self) -> str:
        return self._r(
            "UPDATE {s}job_queue SET lease_expires_at = now() + %(lease)s, heartbeat_at = now()"
            " WHERE id = ANY(%(ids)s::bigint[]) AND locked_by = %(worker)s"
            " AND status = 'processing'"
        )

    # A handler's own writes (progress, output, step data) are fenced like its outcome: a
    # worker that lost the job (lease lapsed, another worker took over) changes nothing.
    @cached_property
    def set_progress(self) -> str:
        return self._r(
            "UPDATE {s}job_queue j SET progress = %(progress)s, updated_at = now() WHERE " + _FENCE
        )

    @cached_property
    def set_output(self) -> str:
        return self._r(
            "UPDATE {s}job_queue j SET output = %(output)s::jsonb, updated_at = now() WHERE "
            + _FENCE
        )

    @cached_property
    def set_step_data(self) -> str:
        return self._r(
            "UPDATE {s}job_queue j SET step_data = %(step_data)s::jsonb, updated_at = now()"
            " WHERE " + _FENCE
        )

    @cached_property
    def set_pending_reason(self) -> str:
        return self._r(
            "UPDATE {s}job_queue SET pending_reason = %(reason)s, updated_at = now()"
            " WHERE job_type = %(job_type)s AND status = 'pending'"
        )

    # manage ------------------------------------------------------------------------------------
    @cached_property
    def retry(self) -> str:
        return self._r(
            """
WITH upd AS (
    UPDATE {s}job_queue SET status = 'pending', attempts = 0, updated_at = now(),
        last_retried_at = now(), lock_version = lock_version + 1, next_attempt_at = NULL,
        ready_at = CASE WHEN unmet_dependencies = 0 THEN now() END, resume_claim = false,
        wait_until = NULL, wait_token_id = NULL, pending_reason = NULL, """
            + _UNLOCK
            + """
    WHERE id = %(id)s AND status IN {retry_from}
    RETURNING id, unmet_dependencies
),
ev AS (INSERT INTO {s}job_events (job_id, event_type) SELECT id, 'retried' FROM upd)
SELECT count(*), (SELECT count(pg_notify(%(channel)s, '')) FROM upd
                  WHERE unmet_dependencies = 0) FROM upd
"""
        )

    @cached_property
    def cancel(self) -> str:
        return self._r(
            """
WITH upd AS (
    UPDATE {s}job_queue SET status = 'cancelled', updated_at = now(),
        last_cancelled_at = now(), wait_until = NULL, wait_token_id = NULL, ready_at = NULL,
        resume_claim = false
    WHERE id = %(id)s AND status IN {cancel_from}
    RETURNING id, result_wanted
),
ev AS (INSERT INTO {s}job_events (job_id, event_type) SELECT id, 'cancelled' FROM upd)
SELECT count(*), (SELECT count(pg_notify(%(done)s, '')) FROM upd WHERE result_wanted) FROM upd
"""
        )

    def cancel_upcoming(self, where: str) -> str:
        return self._r(
            """
WITH upd AS (
    UPDATE {s}job_queue j SET status = 'cancelled', updated_at = now(),
        last_cancelled_at = now(), ready_at = NULL, resume_claim = false
    WHERE j.status = 'pending' """
            + where
            + """
    RETURNING j.id, j.result_wanted
),
ev AS (INSERT INTO {s}job_events (job_id, event_type) SELECT id, 'cancelled' FROM upd)
SELECT coalesce(array_agg(id), '{}'),
       (SELECT count(pg_notify(%(done)s, '')) FROM upd WHERE result_wanted)
FROM upd
"""
        )

    def edit(self, assignments: str, where: str) -> str:
        return self._r(
            """
WITH upd AS (
    UPDATE {s}job_queue j SET """
            + assignments
            + """, updated_at = now()
    WHERE j.status = 'pending' """
            + where
            + """
    RETURNING j.id
),
ev AS (INSERT INTO {s}job_events (job_id, event_type, metadata)
       SELECT id, 'edited', %(meta)s::jsonb FROM upd)
SELECT count(*), (SELECT count(pg_notify(%(channel)s, '')) FROM (SELECT 1 FROM upd LIMIT 1) x)
FROM upd
"""
        )

    @cached_property
    def cleanup_jobs(self) -> str:
        return self._r(
            """
WITH victims AS MATERIALIZED (
    SELECT id, depends_on_job_ids FROM {s}job_queue
    WHERE status = ANY(%(statuses)s::text[]) AND ready_at IS NULL
      AND status IN {cleanable}
      AND updated_at < now() - make_interval(days => %(days)s)
    ORDER BY updated_at
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
),
down_edges AS (
    DELETE FROM {s}job_dependencies e USING victims v WHERE e.prerequisite_id = v.id
),
up_edges AS (
    DELETE FROM {s}job_dependencies e
    USING (SELECT id, unnest(depends_on_job_ids) AS pid FROM victims
           WHERE depends_on_job_ids IS NOT NULL) v
    WHERE e.prerequisite_id = v.pid AND e.job_id = v.id
),
events AS (DELETE FROM {s}job_events e USING victims v WHERE e.job_id = v.id),
del AS (DELETE FROM {s}job_queue j USING victims v WHERE j.id = v.id RETURNING j.id)
SELECT count(*) FROM del
"""
        )

    @cached_property
    def cleanup_tokens(self) -> str:
        """Finished standalone tokens (job-bound ones go with their job)."""
        return self._r(
            "DELETE FROM {s}waitpoints WHERE job_id IS NULL AND status <> 'waiting'"
            " AND created_at < now() - make_interval(days => %(days)s)"
        )

    @cached_property
    def cleanup_events(self) -> str:
        return self._r(
            """
WITH victims AS (
    SELECT job_id, id FROM {s}job_events
    WHERE created_at < now() - make_interval(days => %(days)s)
    LIMIT %(batch)s
),
del AS (
    DELETE FROM {s}job_events e USING victims v WHERE e.job_id = v.job_id AND e.id = v.id
    RETURNING 1
)
SELECT count(*) FROM del
"""
        )

    @cached_property
    def held(self) -> str:
        return self._r(
            "SELECT {cols} FROM {s}job_queue"
            " WHERE status = 'processing' AND locked_by = %(worker)s ORDER BY id"
        )

    @cached_property
    def find_stuck(self) -> str:
        """Processing jobs whose lease expired, or without a sign of life (claim, prolong or
        heartbeat) for longer than max(N minutes, timeout_ms)."""
        return self._r(
            """
SELECT {cols}
FROM {s}job_queue
WHERE status = 'processing'
  AND (lease_expires_at < now()
       OR greatest(locked_at, heartbeat_at) < now() - greatest(
              make_interval(secs => %(seconds)s),
              coalesce(timeout_ms, 0) * interval '1 millisecond'))
ORDER BY id
LIMIT %(limit)s
"""
        )

    @cached_property
    def requeue(self) -> str:
        """Reclaim: back to pending (the consumed attempt stays consumed)."""
        return self._r(
            """
WITH upd AS (
    UPDATE {s}job_queue j SET status = 'pending', updated_at = now(), ready_at = now(),
        lock_version = j.lock_version + 1, """
            + _UNLOCK
            + """
    FROM unnest(%(ids)s::bigint[], %(versions)s::bigint[]) AS s(id, version)
    WHERE j.id = s.id AND j.lock_version = s.version AND j.status = 'processing'
    RETURNING j.id
)
SELECT count(*), (SELECT count(pg_notify(%(channel)s, '')) FROM (SELECT 1 FROM upd LIMIT 1) x)
FROM upd
"""
        )

    # tokens ------------------------------------------------------------------------------------
    @cached_property
    def create_token(self) -> str:
        cols = ", ".join(TOKEN_COLUMNS)
        return self._r(
            "INSERT INTO {s}waitpoints (id, job_id, timeout_at, tags)"
            " VALUES (%(token_id)s, %(id)s, now() + %(timeout)s::interval, %(tags)s::text[])"
            f" RETURNING {cols}"
        )

    @cached_property
    def create_token_held(self) -> str:
        """``create_token`` from a handler: only while its worker holds the job (no row
        otherwise)."""
        cols = ", ".join(TOKEN_COLUMNS)
        return self._r(
            "INSERT INTO {s}waitpoints (id, job_id, timeout_at, tags)"
            " SELECT %(token_id)s, j.id, now() + %(timeout)s::interval, %(tags)s::text[]"
            " FROM {s}job_queue j WHERE " + _FENCE + f" RETURNING {cols}"
        )

    @cached_property
    def get_token(self) -> str:
        cols = ", ".join(TOKEN_COLUMNS)
        return self._r(f"SELECT {cols} FROM {{s}}waitpoints WHERE id = %(id)s")

    @cached_property
    def complete_token(self) -> str:
        return self._r(
            "UPDATE {s}waitpoints SET status = 'completed', output = %(output)s::jsonb,"
            " completed_at = now() WHERE id = %(id)s AND status = 'waiting' RETURNING id"
        )

    @cached_property
    def expire_tokens(self) -> str:
        return self._r(
            "UPDATE {s}waitpoints SET status = 'timed_out'"
            " WHERE status = 'waiting' AND timeout_at <= now() RETURNING id"
        )

    @cached_property
    def resume_token_waiters(self) -> str:
        """Jobs waiting on finished tokens resume; that claim consumes no attempt."""
        return self._r(
            """
WITH upd AS (
    UPDATE {s}job_queue j SET status = 'pending', resume_claim = true, ready_at = now(),
        wait_until = NULL, wait_token_id = NULL, updated_at = now()
    WHERE j.wait_token_id = ANY(%(tokens)s::text[]) AND j.status = 'waiting'
      AND EXISTS (SELECT 1 FROM {s}waitpoints w
                  WHERE w.id = j.wait_token_id AND w.status <> 'waiting')
    RETURNING j.id
)
SELECT count(*), (SELECT count(pg_notify(%(channel)s, '')) FROM (SELECT 1 FROM upd LIMIT 1) x)
FROM upd
"""
        )

    # cron --------------------------------------------------------------------------------------
    @cached_property
    def add_cron(self) -> str:
        return self._r(
            """
INSERT INTO {s}cron_schedules (schedule_name, cron_expression, job_type, payload, max_attempts,
    priority, timeout_ms, force_kill_on_timeout, tags, timezone, allow_overlap, retry_delay,
    retry_backoff, retry_delay_max, dead_letter_job_type, next_run_at)
VALUES (%(schedule_name)s, %(cron_expression)s, %(job_type)s, %(payload_json)s::jsonb,
    %(max_attempts)s, %(priority)s, %(timeout_ms)s, %(force_kill_on_timeout)s,
    %(tags)s::text[], %(timezone)s, %(allow_overlap)s, %(retry_delay)s, %(retry_backoff)s,
    %(retry_delay_max)s, %(dead_letter_job_type)s, %(next_run_at)s)
RETURNING id
"""
        )

    def cron_select(self, where: str, order: str = "") -> str:
        cols = ", ".join(CRON_COLUMNS)
        return self._r(f"SELECT {cols} FROM {{s}}cron_schedules WHERE {where} {order}")

    def edit_cron(self, assignments: str) -> str:
        return self._r(
            f"UPDATE {{s}}cron_schedules SET {assignments}, updated_at = now() WHERE id = %(id)s"
        )

    @cached_property
    def set_cron_status(self) -> str:
        return self._r(
            "UPDATE {s}cron_schedules SET status = %(status)s, updated_at = now() WHERE id = %(id)s"
        )

    @cached_property
    def remove_cron(self) -> str:
        return self._r("DELETE FROM {s}cron_schedules WHERE id = %(id)s")

    @cached_property
    def lock_due_cron(self) -> str:
        """One due active schedule, locked for this transaction (others skip it)."""
        cols = ", ".join(CRON_COLUMNS)
        return self._r(
            f"SELECT {cols}, now() FROM {{s}}cron_schedules"
            " WHERE status = 'active' AND next_run_at <= now()"
            " AND id <> ALL(%(seen)s::bigint[])"
            " ORDER BY next_run_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        )

    @cached_property
    def enqueue_cron(self) -> str:
        """Insert the locked schedule's job unless its last one is still active (no overlap),
        and advance the schedule — in the schedule's transaction."""
        return self._r(
            """
WITH c AS (SELECT * FROM {s}cron_schedules WHERE id = %(id)s),
busy AS (
    SELECT 1 FROM {s}job_queue j, c
    WHERE j.id = c.last_job_id AND j.status IN {active}
),
ins AS (
    INSERT INTO {s}job_queue (job_type, payload, max_attempts, priority, timeout_ms,
        force_kill_on_timeout, tags, retry_delay, retry_backoff, retry_delay_max,
        dead_letter_job_type, run_at, ready_at)
    SELECT job_type, payload, max_attempts, priority, timeout_ms, force_kill_on_timeout, tags,
        retry_delay, retry_backoff, retry_delay_max, dead_letter_job_type, now(), now()
    FROM c WHERE c.allow_overlap OR NOT EXISTS (SELECT 1 FROM busy)
    RETURNING id, job_type, payload, tags
),
ev AS (
    INSERT INTO {s}job_events (job_id, event_type, metadata)
    SELECT id, 'added', jsonb_build_object('job_type', job_type, 'payload', payload,
                                           'tags', tags, 'idempotency_key', NULL,
                                           'cron_schedule_id', %(id)s::bigint)
    FROM ins
),
upd AS (
    UPDATE {s}cron_schedules s SET last_enqueued_at = now(),
        last_job_id = coalesce((SELECT id FROM ins), s.last_job_id),
        next_run_at = %(next_run_at)s, updated_at = now()
    WHERE s.id = %(id)s
)
SELECT (SELECT id FROM ins), (SELECT count(pg_notify(%(channel)s, '')) FROM ins)
"""
        )


def sql_ident(name: str) -> str:
    """``quote_ident`` for statement text: psycopg reads ``%`` in it as a placeholder when
    the statement has parameters (and does not when it has none), so a ``%`` is written as
    a Unicode escape (``U&"a\\0025b"``), which reads the same either way."""
    if "%" not in name:
        return quote_ident(name)
    quoted = quote_ident(name).replace("\\", "\\\\").replace("%", "\\0025")
    return "U&" + quoted


def _seq(schema: str | None) -> str:
    # A regclass literal E'…': the quoted, schema-qualified sequence name (\x25 stands for
    # a %, for the reason given in sql_ident).
    name = (quote_ident(schema) + "." if schema else "") + "job_queue_id_seq"
    return "E'" + name.replace("\\", "\\\\").replace("'", "''").replace("%", "\\x25") + "'"


# -- dashboard reads (bounded; see migrations/0008_dashboard_counts.sql) -----------------------

#: Every distinct job type by a skip scan of job_queue_type_status_idx (one probe per type).
_JOB_TYPES_CTE: Final = """
WITH RECURSIVE t(job_type) AS (
    (SELECT job_type FROM {s}job_queue ORDER BY job_type LIMIT 1)
    UNION ALL
    SELECT (SELECT j.job_type FROM {s}job_queue j WHERE j.job_type > t.job_type
            ORDER BY j.job_type LIMIT 1)
    FROM t WHERE t.job_type IS NOT NULL
)"""


def _per_type_newest(columns: str, where: str, limit: str) -> str:
    """After ``_JOB_TYPES_CTE``: the jobs of status ``%(status)s`` matching ``where``, newest
    first (created_at, id), as the merge of each type's newest ``limit`` from
    job_queue_type_status_idx: there is no index of status alone (migration 0010), and this
    costs one probe per type plus the entries returned. ``columns`` of the rows ``j``; the
    caller adds the outer LIMIT."""
    return (
        f"\nSELECT {columns} FROM t CROSS JOIN LATERAL (SELECT j.* FROM {{s}}job_queue j"
        " WHERE j.job_type = t.job_type AND j.status = %(status)s "
        + where
        + f" ORDER BY j.created_at DESC, j.id DESC LIMIT {limit}) j"
        " WHERE t.job_type IS NOT NULL ORDER BY j.created_at DESC, j.id DESC"
    )


#: Per (type, status): the oldest cap+1 entries of the index, counted (with blocked = pending
#: and not claimable, i.e. waiting on prerequisites or a tag drain).
COUNT_JOBS: Final = (
    _JOB_TYPES_CTE
    + """
SELECT t.job_type, s.status, c.n, c.blocked, c.oldest
FROM t CROSS JOIN unnest(%(statuses)s::text[]) AS s(status)
CROSS JOIN LATERAL (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE x.ready_at IS NULL OR x.drain) AS blocked,
           min(x.created_at) AS oldest
    FROM (SELECT j.created_at, j.ready_at,
                 (s.status = 'pending' AND j.depends_on_tags IS NOT NULL
                  AND NOT {s}dataqueue_tag_drain_clear(j.depends_on_tags, j.id)) AS drain
          FROM {s}job_queue j
          WHERE j.job_type = t.job_type AND j.status = s.status
          ORDER BY j.created_at LIMIT %(cap)s + 1) x
) c
WHERE t.job_type IS NOT NULL AND c.n > 0
ORDER BY t.job_type, s.status"""
)

RECENT_FINISHED: Final = """
SELECT j.id, j.job_type, j.status, j.updated_at FROM {s}job_queue j
WHERE j.status IN {terminal} AND j.updated_at >= %(since)s
ORDER BY j.updated_at DESC LIMIT %(limit)s"""

GET_JOBS_BY_IDS: Final = "SELECT {jcols} FROM {s}job_queue j WHERE j.id = ANY(%(ids)s)"

GET_DEPENDENTS: Final = """
SELECT e.prerequisite_id, e.job_id FROM {s}job_dependencies e
WHERE e.prerequisite_id = ANY(%(ids)s) ORDER BY e.prerequisite_id, e.job_id LIMIT %(limit)s"""

GET_TAG_HOLDERS: Final = """
SELECT j.id FROM {s}job_queue j
WHERE j.tags @> %(tags)s::text[] AND j.id <> %(exclude)s
  AND j.status IN {active}
ORDER BY j.id LIMIT %(limit)s"""

GET_DRAIN_WAITERS: Final = """
SELECT j.id FROM {s}job_queue j
WHERE j.depends_on_tags <@ %(tags)s::text[] AND j.status IN {cancel_from}
ORDER BY j.id LIMIT %(limit)s"""

COUNT_GROUP_PROCESSING: Final = """
SELECT count(*) FROM {s}job_queue j WHERE j.status = 'processing' AND j.group_id = %(group)s"""


def search_jobs_sql(statements: Statements, where: str, *, by_status: bool) -> tuple[str, str]:
    """The jobs-table statements. First the window: the newest ``scan`` candidates below the
    cursor (``by_status``: one status, newest first with a (created_at, id) cursor, merged
    from each job type's part of job_queue_type_status_idx; otherwise ids on the primary
    key), an index-only walk that returns how many it saw and its last entry. Then the page:
    the same entries walked from the cursor down to that entry, filtered, stopping after
    ``limit`` matches. The bounds are parameters of the second statement, so the planner sees
    the narrow range and walks it rather than, say, collecting every tagged job from the tags
    index. A page touches at most ``scan`` rows (plus one index probe per job type)."""
    below = " AND (j.created_at, j.id) < (%(c_at)s, %(c_id)s)"
    if by_status:
        newest = _per_type_newest("j.created_at, j.id", below, "%(scan)s")
        window = (
            _JOB_TYPES_CTE + ", w AS (" + newest + " LIMIT %(scan)s)"
            " SELECT (SELECT count(*) FROM w), l.created_at, l.id FROM (SELECT 1) one"
            " LEFT JOIN (SELECT created_at, id FROM w ORDER BY created_at, id LIMIT 1) l ON true"
        )
        page = (
            _JOB_TYPES_CTE
            + _per_type_newest(
                "{jcols}",
                below + " AND (j.created_at, j.id) >= (%(l_at)s, %(l_id)s) " + where,
                "%(limit)s",
            )
            + " LIMIT %(limit)s"
        )
    else:
        window = (
            "SELECT count(*), NULL::timestamptz, min(id) FROM (SELECT j.id FROM {s}job_queue j"
            " WHERE j.id < %(c_id)s ORDER BY j.id DESC LIMIT %(scan)s) w"
        )
        page = (
            "SELECT {jcols} FROM {s}job_queue j WHERE j.id < %(c_id)s AND j.id >= %(l_id)s "
            + where
            + " ORDER BY j.id DESC LIMIT %(limit)s"
        )
    return statements._r(window), statements._r(page)  # fmt: skip
