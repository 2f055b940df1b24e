"""add_job / add_jobs: stored fields, payloads, validation, idempotency, batches."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _worker_helpers import claim, claim_job, claimed_ids, complete
from dataqueue import (
    DependsOn,
    InvalidJobError,
    JobEventType,
    JobGroup,
    JobOptions,
    JobStatus,
)

UTC = timezone.utc


def test_add_and_get_job_defaults(q: Any) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    job_id = q.add_job("email", {"to": "a@example.com"})
    job = q.get_job(job_id)
    assert job is not None
    assert job.id == job_id
    assert job.job_type == "email"
    assert job.payload == {"to": "a@example.com"}
    assert job.status == JobStatus.PENDING
    assert job.attempts == 0
    assert job.max_attempts == 3
    assert job.priority == 0
    assert job.tags is None
    assert job.idempotency_key is None
    assert job.timeout_ms is None
    assert job.force_kill_on_timeout is False
    assert job.retry_delay is None and job.retry_backoff is None and job.retry_delay_max is None
    assert job.dead_letter_job_type is None
    assert job.group_id is None and job.group_tier is None
    assert job.depends_on_job_ids is None and job.depends_on_tags is None
    assert job.error_history == ()
    assert job.locked_by is None and job.started_at is None and job.completed_at is None
    for stamp in (job.created_at, job.updated_at, job.run_at):
        assert stamp.tzinfo is not None
        assert before <= stamp <= datetime.now(UTC) + timedelta(seconds=5)


def test_get_unknown_job_is_none(q: Any) -> None:
    assert q.get_job(987654) is None


def test_all_options_round_trip(q: Any) -> None:
    run_at = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)
    job_id = q.add_job(
        "report",
        [1, "two", {"three": 3.5}],
        max_attempts=7,
        priority=4,
        run_at=run_at,
        timeout_ms=1500,
        force_kill_on_timeout=True,
        tags=["a", "b", "a"],
        idempotency_key="report-1",
        retry_delay=5,
        retry_backoff=False,
        retry_delay_max=50,
        dead_letter_job_type="report_dlq",
        group=JobGroup("tenant-1", tier="gold"),
    )
    job = q.get_job(job_id)
    assert job.payload == [1, "two", {"three": 3.5}]
    assert job.max_attempts == 7
    assert job.priority == 4
    assert job.run_at == run_at
    assert job.timeout_ms == 1500
    assert job.force_kill_on_timeout is True
    assert job.tags == ("a", "b")  # de-duplicated, order kept
    assert job.idempotency_key == "report-1"
    assert (job.retry_delay, job.retry_backoff, job.retry_delay_max) == (5, False, 50)
    assert job.dead_letter_job_type == "report_dlq"
    assert (job.group_id, job.group_tier) == ("tenant-1", "gold")


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"k": [1, 2]},
        [1, 2, 3],
        "text",
        42,
        -1.5,
        True,
        False,
        {"nested": {"x": None}},
        "é ✓ 中文",
        {"': --;": "%_\\"},
    ],
)
def test_json_payloads_round_trip(q: Any, payload: Any) -> None:
    assert q.get_job(q.add_job("t", payload)).payload == payload


def test_run_at_is_stored_in_utc_unchanged(q: Any) -> None:
    tokyo = timezone(timedelta(hours=9))
    local = datetime(2030, 1, 1, 9, 0, tzinfo=tokyo)
    job = q.get_job(q.add_job("t", run_at=local))
    assert job.run_at == local
    assert job.run_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("payload", [set(), object(), float("nan"), float("inf"), {1j: 2}])
def test_non_json_payload_rejected_before_writing(q: Any, payload: Any) -> None:
    with pytest.raises(InvalidJobError, match="JSON"):
        q.add_job("t", payload)
    assert q.get_all_jobs() == []


@pytest.mark.parametrize("job_type", ["", "x" * 256, None, 5])
def test_bad_job_type_rejected(q: Any, job_type: Any) -> None:
    with pytest.raises(InvalidJobError):
        q.add_job(job_type)
    assert q.get_all_jobs() == []


@pytest.mark.parametrize(
    "options",
    [
        {"job_type": "a\x00b"},
        {"job_type": "t", "payload": {"text": "a\x00b"}},
        {"job_type": "t", "payload": {"k\x00": 1}},
        {"job_type": "t", "tags": ["a\x00"]},
        {"job_type": "t", "idempotency_key": "k\x00"},
        {"job_type": "t", "group": "g\x00"},
    ],
)
def test_nul_characters_rejected_alike_on_every_backend(q: Any, options: dict[str, Any]) -> None:
    """PostgreSQL cannot store NUL in text or jsonb; Redis could, so the rule is the library's."""
    with pytest.raises(InvalidJobError, match="NUL"):
        q.add_jobs([options])
    assert q.get_all_jobs() == []


def test_escaped_backslash_u0000_text_is_not_a_nul(q: Any) -> None:
    job = q.get_job(q.add_job("t", {"text": "\\u0000"}))
    assert job.payload == {"text": "\\u0000"}


def test_255_char_job_type_accepted(q: Any) -> None:
    assert q.get_job(q.add_job("x" * 255)).job_type == "x" * 255


@pytest.mark.parametrize(
    "options",
    [
        {"max_attempts": 0},
        {"max_attempts": "3"},
        {"priority": 1.5},
        {"priority": True},
        {"timeout_ms": 0},
        {"timeout_ms": -5},
        {"tags": "single-string"},
        {"tags": ["ok", ""]},
        {"tags": [1]},
        {"retry_delay": -1},
        {"retry_backoff": "yes"},
        {"idempotency_key": ""},
        {"idempotency_key": "k" * 256},
        {"group": {"id": ""}},
        {"group": {"name": "x"}},
        {"run_at": "2030-01-01"},
    ],
)
def test_bad_options_rejected_before_writing(q: Any, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidJobError):
        q.add_job("t", {}, **options)
    assert q.get_all_jobs() == []


def test_naive_datetime_rejected(q: Any) -> None:
    with pytest.raises(InvalidJobError, match="timezone-aware"):
        q.add_job("t", run_at=datetime(2030, 1, 1))
    with pytest.raises(InvalidJobError, match="timezone-aware"):
        q.add_jobs([{"job_type": "t", "run_at": datetime(2030, 1, 1)}])
    assert q.get_all_jobs() == []


def test_negative_priority_is_allowed_and_runs_after_zero(q: Any) -> None:
    low = q.add_job("t", priority=-5)
    normal = q.add_job("t")
    assert q.get_job(low).priority == -5
    assert claimed_ids(q) == [normal, low]


def test_group_as_string_or_mapping(q: Any) -> None:
    a = q.get_job(q.add_job("t", group="g1"))
    b = q.get_job(q.add_job("t", group={"id": "g2", "tier": "t2"}))
    assert (a.group_id, a.group_tier) == ("g1", None)
    assert (b.group_id, b.group_tier) == ("g2", "t2")


# -- idempotency --------------------------------------------------------------------------


def test_idempotency_key_returns_existing_job(q: Any) -> None:
    first = q.add_job("t", {"n": 1}, idempotency_key="once")
    again = q.add_job("t", {"n": 2}, idempotency_key="once")
    assert again == first
    assert len(q.get_all_jobs()) == 1
    assert q.get_job(first).payload == {"n": 1}
    added = [e for e in q.get_job_events(first) if e.event_type == JobEventType.ADDED]
    assert len(added) == 1


def test_idempotency_key_holds_for_any_status(q: Any) -> None:
    first = q.add_job("t", idempotency_key="k")
    assert q.cancel_job(first)
    assert q.add_job("t", idempotency_key="k") == first


def test_without_or_with_different_keys_jobs_are_separate(q: Any) -> None:
    assert q.add_job("t") != q.add_job("t")
    assert q.add_job("t", idempotency_key="a") != q.add_job("t", idempotency_key="b")
    assert len(q.get_all_jobs()) == 4


# -- add_jobs -----------------------------------------------------------------------------


def test_add_jobs_empty_returns_empty_list(q: Any) -> None:
    assert q.add_jobs([]) == []


def test_add_jobs_returns_ids_in_input_order(q: Any) -> None:
    ids = q.add_jobs(
        [
            {"job_type": "a", "payload": {"i": 0}},
            JobOptions("b", {"i": 1}, priority=9),
            {"job_type": "c", "payload": {"i": 2}, "tags": ["x"]},
        ]
    )
    assert len(ids) == 3 and len(set(ids)) == 3
    jobs = [q.get_job(i) for i in ids]
    assert [j.job_type for j in jobs] == ["a", "b", "c"]
    assert [j.payload for j in jobs] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert [j.priority for j in jobs] == [0, 9, 0]
    assert [j.tags for j in jobs] == [None, None, ("x",)]


def test_add_jobs_per_job_run_at(q: Any) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    now_id, later_id = q.add_jobs([{"job_type": "t"}, {"job_type": "t", "run_at": later}])
    assert q.get_job(later_id).run_at == later
    assert q.get_job(now_id).run_at <= datetime.now(UTC) + timedelta(seconds=5)


def test_add_jobs_idempotency_new_conflicting_and_in_batch_duplicates(q: Any) -> None:
    existing = q.add_job("t", {"v": "old"}, idempotency_key="k1")
    ids = q.add_jobs(
        [
            {"job_type": "t", "payload": {"v": "dup"}, "idempotency_key": "k1"},
            {"job_type": "t", "payload": {"v": "new"}, "idempotency_key": "k2"},
            {"job_type": "t", "payload": {"v": "plain"}},
            {"job_type": "t", "payload": {"v": "again"}, "idempotency_key": "k2"},
        ]
    )
    assert ids[0] == existing
    assert ids[1] == ids[3] != existing
    assert len(set(ids)) == 3
    assert q.get_job(existing).payload == {"v": "old"}
    assert q.get_job(ids[1]).payload == {"v": "new"}
    assert len(q.get_all_jobs()) == 3
    for job_id in set(ids):
        added = [e for e in q.get_job_events(job_id) if e.event_type == JobEventType.ADDED]
        assert len(added) == 1, job_id


def test_add_jobs_invalid_entry_rejects_whole_batch(q: Any) -> None:
    with pytest.raises(InvalidJobError, match=r"jobs\[1\]"):
        q.add_jobs([{"job_type": "ok"}, {"job_type": "bad", "payload": {1, 2}}])
    with pytest.raises(InvalidJobError, match="unknown job option"):
        q.add_jobs([{"job_type": "ok", "colour": "red"}])
    with pytest.raises(InvalidJobError):
        q.add_jobs("not a list")
    assert q.get_all_jobs() == []


def test_add_jobs_records_added_event_per_new_job(q: Any) -> None:
    ids = q.add_jobs([{"job_type": "a"}, {"job_type": "b"}])
    for job_id in ids:
        assert [e.event_type for e in q.get_job_events(job_id)] == [JobEventType.ADDED]


# -- exact matching of awkward strings -------------------------------------------------------

AWKWARD = [
    "it's",
    'say "hi"',
    "a;b",
    "100%",
    "under_score",
    "back\\slash",
    "--comment",
    "null",
    "NULL",
    "*",
    "[x]",
    "{dq}",
    "a:b",
    " spaced ",
]


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_strings_round_trip_and_match_exactly(q: Any, text: str) -> None:
    decoy = q.add_job("decoy", tags=["plain"], idempotency_key="plain")
    job_id = q.add_job(text, {"text": text}, tags=[text], idempotency_key=text)
    job = q.get_job(job_id)
    assert (job.job_type, job.tags, job.idempotency_key) == (text, (text,), text)
    assert q.add_job(text, idempotency_key=text) == job_id
    assert [j.id for j in q.get_jobs_by_tags([text])] == [job_id]
    assert [j.id for j in q.get_jobs_by_tags([text], mode="exact")] == [job_id]
    assert [j.id for j in q.get_jobs({"job_type": text})] == [job_id]
    assert [j.id for j in q.get_jobs_by_tags([text], mode="none")] == [decoy]


def test_dependson_object_and_mapping_forms(q: Any) -> None:
    a = q.add_job("a", tags=["x"])
    b = q.add_job("b", depends_on=DependsOn(job_ids=[a, a], tags=["x"]))
    c = q.add_job("c", depends_on={"job_ids": [a]})
    d = q.add_job("d", depends_on={"job_ids": [], "tags": []})
    jb, jc, jd = q.get_job(b), q.get_job(c), q.get_job(d)
    assert jb.depends_on_job_ids == (a,) and jb.depends_on_tags == ("x",)
    assert jc.depends_on_job_ids == (a,) and jc.depends_on_tags is None
    assert jd.depends_on_job_ids is None and jd.depends_on_tags is None


def test_idempotency_key_released_when_job_is_cleaned_up(q: Any) -> None:
    first = q.add_job("t", idempotency_key="reuse")
    complete(q, claim_job(q, first))
    time.sleep(0.02)
    assert q.cleanup_old_jobs(0) == 1
    second = q.add_job("t", idempotency_key="reuse")
    assert second != first
    assert q.get_job(second).idempotency_key == "reuse"


def test_extreme_priorities_keep_fifo_order(q: Any) -> None:
    top = 2**31 - 1
    bottom = -(2**31)
    high = [q.add_job("t", priority=top) for _ in range(3)]
    low = [q.add_job("t", priority=bottom) for _ in range(3)]
    mid = [q.add_job("t", priority=0) for _ in range(3)]
    assert claimed_ids(q) == high + mid + low


def test_priority_out_of_int32_range_rejected(q: Any) -> None:
    with pytest.raises(InvalidJobError):
        q.add_job("t", priority=2**31)
    assert q.get_all_jobs() == []


@pytest.mark.parametrize("name", ["null", "__NONE__", "None", "nil", "false", "0", " "])
def test_values_that_look_like_nothing_are_values(q: Any, name: str) -> None:
    first = q.add_job(
        name, tags=[name], idempotency_key=name, group=name, dead_letter_job_type=name
    )
    assert q.add_job(name, idempotency_key=name) == first  # the key is found again
    plain = q.add_job(name)  # no key: a new job, not a hit on a "null" key
    assert plain != first
    job = q.get_job(first)
    assert (job.job_type, job.tags, job.idempotency_key, job.group_id) == (
        name,
        (name,),
        name,
        name,
    )
    assert job.dead_letter_job_type == name
    assert q.get_job(plain).idempotency_key is None
    assert [j.id for j in q.get_jobs_by_tags([name], "exact")] == [first]
    assert [j.id for j in q.get_jobs({"job_type": name})] == [plain, first]
    assert set(claimed_ids(q, job_types=[name])) == {first, plain}
    assert [e.event_type for e in q.get_job_events(first)].count(JobEventType.ADDED) == 1


def test_empty_containers_round_trip_and_are_not_shared(q: Any) -> None:
    payloads: list[Any] = [{}, [], {"a": [1, {}]}, [{}], "{}", 0, None, {"k": "[]"}]
    ids = [q.add_job("t", p) for p in payloads]
    assert [q.get_job(i).payload for i in ids] == payloads
    first, second = claim(q, 2)
    assert first.step_data == {} and len(first.error_history) == 0
    first.step_data["x"] = 1  # every record gets its own empty containers
    assert second.step_data == {} and first.payload == {} and second.payload == []
