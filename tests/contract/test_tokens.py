"""Wait tokens outside handlers: create, get, complete, expire, and resuming a waiting job."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _worker_helpers import WORKER, claim_job, claimed_ids
from dataqueue import InvalidTokenError, JobStatus, TokenStatus, WaitpointRecord

UTC = timezone.utc


def test_create_and_get_token(q: Any) -> None:
    token = q.create_token()
    assert isinstance(token, WaitpointRecord)
    assert isinstance(token.id, str) and token.id
    assert token.status == TokenStatus.WAITING
    assert token.job_id is None and token.timeout_at is None and token.output is None
    fetched = q.get_token(token.id)
    assert fetched is not None
    assert (fetched.id, fetched.status) == (token.id, TokenStatus.WAITING)
    assert q.get_token("wp_does_not_exist") is None


def test_token_timeout_and_tags(q: Any) -> None:
    before = datetime.now(UTC)
    token = q.create_token(timeout="10m", tags=["approval", "approval", "team-a"])
    assert token.tags == ("approval", "team-a")
    assert token.timeout_at is not None
    expected = before + timedelta(minutes=10)
    assert abs((token.timeout_at - expected).total_seconds()) < 30
    assert q.get_token(token.id).tags == ("approval", "team-a")


@pytest.mark.parametrize("timeout", ["10x", "0s", "-1m", "400d", "", "m", float("nan"), -5])
def test_bad_token_timeout_rejected(q: Any, timeout: Any) -> None:
    with pytest.raises(InvalidTokenError):
        q.create_token(timeout=timeout)


def test_bad_token_tags_rejected(q: Any) -> None:
    with pytest.raises(InvalidTokenError):
        q.create_token(tags="one-string")
    with pytest.raises(InvalidTokenError):
        q.create_token(tags=[""])


def test_complete_token_stores_output_once(q: Any) -> None:
    token = q.create_token()
    assert q.complete_token(token.id, {"approved": True}) is True
    done = q.get_token(token.id)
    assert done.status == TokenStatus.COMPLETED
    assert done.output == {"approved": True}
    assert done.completed_at is not None
    assert q.complete_token(token.id, {"approved": False}) is False
    assert q.get_token(token.id).output == {"approved": True}
    assert q.complete_token("wp_unknown") is False


def test_complete_token_without_data(q: Any) -> None:
    token = q.create_token()
    assert q.complete_token(token.id)
    assert q.get_token(token.id).output is None


def test_complete_token_rejects_non_json_data(q: Any) -> None:
    token = q.create_token()
    with pytest.raises(InvalidTokenError):
        q.complete_token(token.id, {1, 2})
    assert q.get_token(token.id).status == TokenStatus.WAITING


def test_expire_timed_out_tokens(q: Any) -> None:
    short = q.create_token(timeout=0.05)
    long = q.create_token(timeout="1h")
    forever = q.create_token()
    time.sleep(0.2)
    assert q.expire_timed_out_tokens() == 1
    expired = q.get_token(short.id)
    assert expired.status == TokenStatus.TIMED_OUT and expired.completed_at is None
    assert q.get_token(long.id).status == TokenStatus.WAITING
    assert q.get_token(forever.id).status == TokenStatus.WAITING
    assert q.complete_token(short.id, 1) is False
    assert q.expire_timed_out_tokens() == 0


def _wait_on_token(q: Any, job_id: int, timeout: timedelta | None = None) -> Any:
    job = claim_job(q, job_id)
    token = q._backend.create_token(job_id, timeout, None)
    assert q._backend.wait_job(
        job_id,
        WORKER,
        job.lock_version,
        wait_until=None,
        token_id=token.id,
        step_data={"step": "sent"},
    )
    waiting = q.get_job(job_id)
    assert waiting.status == JobStatus.WAITING and waiting.wait_token_id == token.id
    assert claimed_ids(q) == []  # a token wait is not resumed by time
    return token


def test_completing_token_resumes_job_without_using_an_attempt(q: Any) -> None:
    job_id = q.add_job("t", max_attempts=1)
    token = _wait_on_token(q, job_id)
    assert q.complete_token(token.id, {"ok": 1})
    resumed = q.get_job(job_id)
    assert resumed.status == JobStatus.PENDING
    assert resumed.wait_token_id is None and resumed.wait_until is None
    again = claim_job(q, job_id)
    assert again.attempts == 1  # resuming from a wait never consumes an attempt
    assert again.step_data == {"step": "sent"}


def test_expired_token_resumes_job(q: Any) -> None:
    job_id = q.add_job("t")
    token = _wait_on_token(q, job_id, timedelta(milliseconds=50))
    time.sleep(0.2)
    assert q.expire_timed_out_tokens() == 1
    assert q.get_token(token.id).status == TokenStatus.TIMED_OUT
    assert q.get_job(job_id).status == JobStatus.PENDING
    assert claim_job(q, job_id).attempts == 1


def test_time_wait_resumes_without_using_an_attempt(q: Any) -> None:
    job_id = q.add_job("t", max_attempts=1)
    job = claim_job(q, job_id)
    soon = datetime.now(UTC) + timedelta(milliseconds=100)
    assert q._backend.wait_job(
        job_id, WORKER, job.lock_version, wait_until=soon, token_id=None, step_data={}
    )
    assert claimed_ids(q) == []
    time.sleep(0.25)
    resumed = claim_job(q, job_id)
    assert resumed.attempts == 1
