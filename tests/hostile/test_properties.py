"""Every public call with random and hostile arguments either succeeds and reads back what it
stored, or raises a ``DataQueueError`` whose message names the argument, with the whole stored
state unchanged. On both backends and both twins (the ``q`` / ``storage`` fixtures)."""

from __future__ import annotations

import os
from datetime import timezone
from typing import Any

import pytest
from dataqueue import DataQueueError
from dataqueue.records import JobStatus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ._snapshot import snapshot
from ._strategies import anything, canonical, datetimes, ints, json_values, texts, wrong

# Modest counts: the suite runs every property on 4 backend x twin variants
# (DQ_HYPOTHESIS_EXAMPLES raises them for a longer hunt).
_SETTINGS = settings(
    max_examples=int(os.environ.get("DQ_HYPOTHESIS_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


def _names_one_of(exc: BaseException, names: list[str]) -> bool:
    text = str(exc)
    return any(n in text or n.replace("_", " ") in text for n in names)


def _rejected(exc: BaseException, storage: Any, before: Any, names: list[str]) -> None:
    """The contract of a refusal: a DataQueueError naming an argument, nothing written."""
    assert isinstance(exc, DataQueueError), f"{type(exc).__name__}: {exc}"
    assert _names_one_of(exc, names), f"{exc!r} names none of {names}"
    assert snapshot(storage) == before, f"state changed by a rejected call: {exc!r}"


_UNSET: Any = object()


@_SETTINGS
@given(
    job_type=anything(texts),
    payload=json_values,
    priority=anything(ints),
    max_attempts=anything(ints),
    run_at=anything(datetimes),
    tags=anything(st.lists(texts, max_size=3)),
    idempotency_key=anything(texts),
    timeout_ms=anything(ints),
    group=anything(texts),
)
def test_add_job(
    q: Any,
    storage: Any,
    job_type: Any,
    payload: Any,
    priority: Any,
    max_attempts: Any,
    run_at: Any,
    tags: Any,
    idempotency_key: Any,
    timeout_ms: Any,
    group: Any,
) -> None:
    opts: dict[str, Any] = {
        "priority": priority,
        "max_attempts": max_attempts,
        "run_at": run_at,
        "tags": tags,
        "idempotency_key": idempotency_key,
        "timeout_ms": timeout_ms,
        "group": group,
    }
    opts = {k: v for k, v in opts.items() if v is not None}
    before = snapshot(storage)
    newest = q.get_jobs(limit=1)
    try:
        job_id = q.add_job(job_type, payload, **opts)
    except Exception as exc:
        _rejected(exc, storage, before, ["job_type", "payload", "group", *opts])
        return
    job = q.get_job(job_id)
    assert job is not None
    if idempotency_key is not None and newest and job_id <= newest[0].id:
        return  # an earlier example used the same key: its job was returned
    assert job.job_type == job_type
    expected = payload
    if isinstance(payload, float) and payload == 0.0:
        expected = 0.0  # -0.0 is stored as 0.0 on both backends
    if canonical(job.payload) != canonical(expected):
        # -0.0 anywhere inside a structure is stored as 0.0
        assert canonical(job.payload) == canonical(expected).replace("-0.0", "0.0")
    assert job.priority == opts.get("priority", 0)
    assert job.max_attempts == opts.get("max_attempts", 3)
    if run_at is not None:
        assert job.run_at == run_at.astimezone(timezone.utc)
    assert job.tags == (tuple(dict.fromkeys(tags)) or None if tags is not None else None)
    assert job.timeout_ms == opts.get("timeout_ms")
    assert job.group_id == opts.get("group")
    assert q.get_jobs(limit=1)[0].id >= job_id  # the queue still lists (nothing poisoned)


_FILTER_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "job_type": anything(texts),
        "priority": anything(ints),
        "run_at": st.one_of(
            datetimes,
            st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte", "eq", "bogus"]), datetimes),
            wrong,
        ),
        "tags": st.one_of(
            st.fixed_dictionaries(
                {"values": anything(st.lists(texts, max_size=2))},
                optional={
                    "mode": st.one_of(
                        st.sampled_from(["all", "any", "none", "exact"]), texts, wrong
                    )
                },
            ),
            wrong,
        ),
        "bogus": st.just(1),
    },
)
filters_st = st.one_of(_FILTER_VALUES, wrong, st.none())


def _seed(q: Any) -> None:
    if len(q.get_jobs_by_status("pending", limit=10)) < 3:
        q.add_jobs(
            [
                {"job_type": "a", "tags": ["x"]},
                {"job_type": "b", "tags": ["x", "y"], "priority": 2},
                {"job_type": "a"},
            ]
        )


_FILTER_NAMES = ["filter", "job_type", "priority", "run_at", "tags", "tag", "limit", "offset"]


@_SETTINGS
@given(filters=filters_st, limit=anything(ints), offset=anything(ints), bulk=st.booleans())
def test_filters(q: Any, storage: Any, filters: Any, limit: Any, offset: Any, bulk: bool) -> None:
    _seed(q)
    before = snapshot(storage)
    try:
        listed = q.get_jobs(filters, limit=3 if limit is None else limit, offset=offset or 0)
    except Exception as exc:
        _rejected(exc, storage, before, _FILTER_NAMES)
        listed = None
    else:
        assert snapshot(storage) == before  # a read writes nothing
        assert len(listed) <= (3 if limit is None else limit)
    if not bulk:
        return
    try:
        matching = [
            j.id for j in q.get_jobs(filters, limit=10_000) if j.status == JobStatus.PENDING
        ]
    except DataQueueError:
        matching = None
    try:
        count = q.cancel_all_upcoming_jobs(filters)
    except Exception as exc:
        assert matching is None, "get_jobs accepted filters that cancel_all_upcoming_jobs refused"
        _rejected(exc, storage, before, _FILTER_NAMES)
        return
    assert matching is not None
    assert count == len(matching)
    for job_id in matching:
        assert q.get_job(job_id).status == JobStatus.CANCELLED


_EDITS = st.fixed_dictionaries(
    {},
    optional={
        "payload": json_values,
        "priority": anything(ints),
        "max_attempts": anything(ints),
        "run_at": anything(datetimes),
        "tags": anything(st.lists(texts, max_size=2)),
        "timeout_ms": anything(ints),
        "retry_delay": anything(ints),
        "dead_letter_job_type": anything(texts),
        "status": st.just("completed"),
    },
)


@_SETTINGS
@given(job_id=st.one_of(st.just(None), ints, wrong), updates=_EDITS)
def test_edit_job(q: Any, storage: Any, job_id: Any, updates: dict[str, Any]) -> None:
    own = q.add_job("edited", {"v": 1})
    target = own if job_id is None else job_id
    before = snapshot(storage)
    try:
        changed = q.edit_job(target, **updates)
    except Exception as exc:
        _rejected(exc, storage, before, ["job id", "cannot edit", *updates])
        return
    if target != own:
        return
    assert changed == bool(updates)
    job = q.get_job(own)
    for key, value in updates.items():
        got = getattr(job, key)
        if key == "payload":
            assert canonical(got).replace("-0.0", "0.0") == canonical(value).replace("-0.0", "0.0")
        elif key == "run_at":
            if value is not None:
                assert got == value.astimezone(timezone.utc)
        elif key == "tags":
            assert got == (tuple(dict.fromkeys(value)) or None if value else None)
        else:
            assert got == value


@_SETTINGS
@given(
    timeout=st.one_of(
        texts,
        ints,
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(["30s", "10m", "2h", "1d", "²s", "366d", "0s", 1e20]),
        wrong,
        st.none(),
    ),
    tags=anything(st.lists(texts, max_size=2)),
    data=json_values,
    token_id=st.one_of(st.none(), texts, wrong),
)
def test_tokens(q: Any, storage: Any, timeout: Any, tags: Any, data: Any, token_id: Any) -> None:
    before = snapshot(storage)
    try:
        token = q.create_token(timeout=timeout, tags=tags)
    except Exception as exc:
        _rejected(exc, storage, before, ["timeout", "tag"])
        token = None
    if token is not None:
        assert token.tags == (tuple(dict.fromkeys(tags)) or None if tags else None)
    target = token.id if (token is not None and token_id is None) else token_id
    before = snapshot(storage)
    try:
        done = q.complete_token(target, data)
    except Exception as exc:
        _rejected(exc, storage, before, ["token id", "token data"])
        return
    if token is not None and target == token.id:
        assert done
        got = q.get_token(token.id).output
        assert canonical(got).replace("-0.0", "0.0") == canonical(data).replace("-0.0", "0.0")


@_SETTINGS
@given(
    name=anything(texts),
    expression=st.one_of(st.sampled_from(["* * * * *", "0 3 * * *", "bogus"]), texts, wrong),
    job_type=anything(texts),
    zone=st.one_of(st.sampled_from(["UTC", "Europe/Paris", "../etc/passwd"]), texts, wrong),
    payload=json_values,
)
def test_cron(
    q: Any, storage: Any, name: Any, expression: Any, job_type: Any, zone: Any, payload: Any
) -> None:
    before = snapshot(storage)
    try:
        cron_id = q.add_cron_job(name, expression, job_type, payload, timezone=zone)
    except Exception as exc:
        names = ["schedule_name", "cron", "job_type", "payload", "time zone", "timezone"]
        _rejected(exc, storage, before, names)
        return
    record = q.get_cron_job_by_name(name)
    assert record is not None and record.id == cron_id
    assert (record.job_type, record.timezone) == (job_type, zone)
    assert canonical(record.payload).replace("-0.0", "0.0") == canonical(payload).replace(
        "-0.0", "0.0"
    )
    q.remove_cron_job(cron_id)


_CALLS = st.one_of(
    st.tuples(st.just("get_job"), st.tuples(anything(ints))),
    st.tuples(st.just("get_job_events"), st.tuples(anything(ints))),
    st.tuples(st.just("cancel_job"), st.tuples(anything(ints))),
    st.tuples(st.just("retry_job"), st.tuples(anything(ints))),
    st.tuples(st.just("get_cron_job"), st.tuples(anything(ints))),
    st.tuples(st.just("get_cron_job_by_name"), st.tuples(anything(texts))),
    st.tuples(st.just("get_token"), st.tuples(anything(texts))),
    st.tuples(
        st.just("get_jobs_by_status"),
        st.tuples(anything(st.sampled_from(["pending", "failed", "bogus"])), ints, ints),
    ),
    st.tuples(
        st.just("get_jobs_by_tags"),
        st.tuples(anything(st.lists(texts, max_size=2)), anything(texts)),
    ),
    st.tuples(st.just("get_all_jobs"), st.tuples(anything(ints), anything(ints))),
    st.tuples(
        st.just("cleanup_old_jobs"),
        st.tuples(anything(ints)),
        st.fixed_dictionaries(
            {},
            optional={
                "statuses": anything(
                    st.lists(st.sampled_from(["completed", "failed", "pending", 5]))
                ),
                "batch_size": anything(ints),
            },
        ),
    ),
    st.tuples(st.just("cleanup_old_job_events"), st.tuples(anything(ints))),
    st.tuples(
        st.just("reclaim_stuck_jobs"),
        st.tuples(st.one_of(ints, st.floats(allow_nan=True, allow_infinity=True), wrong)),
    ),
    st.tuples(st.just("list_cron_jobs"), st.tuples(anything(texts))),
)

_CALL_NAMES = [
    "job id",
    "cron job id",
    "schedule_name",
    "token id",
    "status",
    "tag",
    "limit",
    "offset",
    "days_to_keep",
    "statuses",
    "batch_size",
    "max_processing_time_minutes",
]


@_SETTINGS
@given(call=_CALLS)
def test_other_calls(q: Any, storage: Any, call: Any) -> None:
    name, args, *rest = call
    kwargs = rest[0] if rest else {}
    before = snapshot(storage)
    try:
        getattr(q, name)(*args, **kwargs)
    except Exception as exc:
        _rejected(exc, storage, before, _CALL_NAMES)


@pytest.fixture(autouse=True)
def _isolated_prefix_check(storage: Any) -> None:
    """The snapshot of a fresh queue is empty on Redis (the prefix is this test's alone)."""
    if storage.backend == "redis":
        assert snapshot(storage) == {}
