"""Rows → records (rows.py): the Rust builder gives what the dataclass constructor would."""

from __future__ import annotations

from typing import Any

import pytest
from dataqueue.backends.postgres import rows as R
from dataqueue.records import FailureReason, JobRecord, JobStatus


def _row(**values: Any) -> tuple[Any, ...]:
    base: dict[str, Any] = dict.fromkeys(R.JOB_COLUMNS)
    base.update(id=7, job_type="t", payload={"a": [1]}, status="pending", error_history=[])
    base.update(values)
    return tuple(base[c] for c in R.JOB_COLUMNS)


def test_a_row_becomes_the_record_the_constructor_makes() -> None:
    row = _row(
        status="failed",
        failure_reason="timeout",
        error_history=[{"message": "x"}],
        tags=["a", "b"],
        depends_on_job_ids=[1, 2],
        depends_on_tags=["t"],
        step_data={},
    )
    job = R.job_from_row(row)
    values = dict(zip(R.JOB_COLUMNS, row, strict=True))
    values.update(
        status=JobStatus.FAILED,
        failure_reason=FailureReason.TIMEOUT,
        error_history=({"message": "x"},),
        tags=("a", "b"),
        depends_on_job_ids=(1, 2),
        depends_on_tags=("t",),
    )
    assert job == JobRecord(**values)
    assert type(job) is JobRecord


def test_nulls_and_unknown_reasons() -> None:
    job = R.job_from_row(_row(error_history=None, failure_reason="from the future"))
    assert job.error_history == ()
    assert job.failure_reason is None
    assert job.tags is None and job.depends_on_job_ids is None and job.locked_by is None


def test_a_row_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="values for"):
        R.job_from_row(_row()[:-1])
    with pytest.raises(ValueError, match="no such status"):
        R.job_from_row(_row(status="no such status"))
