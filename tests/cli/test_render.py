"""Tables stay readable on an 80-column terminal (rich would squeeze the id column to nothing)."""

from __future__ import annotations

import dataclasses
import io
from datetime import datetime, timezone
from typing import TypeVar

import pytest
from dataqueue.cli.render import cron_table, jobs_table
from dataqueue.records import CronScheduleRecord, CronStatus, JobRecord, JobStatus
from rich.console import Console

T = TypeVar("T")


def _record(cls: type[T], **values: object) -> T:
    """A ``cls`` record of ``values``, every other field None."""
    fields: dict[str, object] = {f.name: None for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    fields.update(values)
    return cls(**fields)


def _job() -> JobRecord:
    now = datetime.now(timezone.utc)
    return _record(
        JobRecord, id=12345, job_type="download_everything", payload={},
        status=JobStatus.COMPLETED, created_at=now, updated_at=now, run_at=now, priority=0,
        attempts=1, max_attempts=3, lock_version=0, error_history=(),
        force_kill_on_timeout=False, tags=("import",), depends_on_job_ids=(7,), progress=50,
    )  # fmt: skip


@pytest.mark.parametrize("width", [60, 80, 200])
def test_jobs_table_keeps_id_status_tags_and_dependencies(width: int) -> None:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    console.print(jobs_table([_job()], fit=console))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= width
    # Narrower than 80, long cells fold over lines; what a person acts on stays whole.
    cells = ("12345", "completed", "1/3", "50%") + (("import", "#7") if width >= 80 else ())
    for cell in cells:
        assert cell in text, (cell, text)
    assert ("2026" in text or str(datetime.now(timezone.utc).year) in text) == (width == 200)


def _schedule(now: datetime, **values: object) -> CronScheduleRecord:
    """A cron schedule record: ``values`` over sample settings."""
    return _record(
        CronScheduleRecord, job_type="build_the_daily_report", payload={}, max_attempts=3,
        priority=0, force_kill_on_timeout=False, allow_overlap=False, next_run_at=now,
        created_at=now, updated_at=now, **values,
    )  # fmt: skip


def test_cron_table_keeps_the_schedule_name_whole_at_80_columns() -> None:
    schedule = _schedule(
        datetime.now(timezone.utc), id=1, schedule_name="nightly-report-long-name",
        cron_expression="0 3 * * *", timezone="Europe/Berlin", status=CronStatus.ACTIVE,
    )  # fmt: skip
    out = io.StringIO()
    Console(file=out, width=80, color_system=None).print(cron_table([schedule]))
    assert "nightly-report-long-name" in out.getvalue() and "active" in out.getvalue()


def test_cron_list_at_80_columns_breaks_no_cell_mid_word() -> None:
    now = datetime.now(timezone.utc)
    schedule = _schedule(
        now, id=12, schedule_name="nightly-report-export", cron_expression="*/15 3-5 * * mon-fri",
        timezone="America/Argentina/Buenos_Aires", status=CronStatus.PAUSED, last_job_id=123456,
    )  # fmt: skip
    for width in (80, 60):
        out = io.StringIO()
        Console(file=out, width=width, color_system=None).print(cron_table([schedule], width))
        lines = out.getvalue().splitlines()
        assert max(len(line) for line in lines) <= width
        for whole in (
            "nightly-report-export",
            "*/15 3-5 * * mon-fri",
            "America/Argentina/Buenos_Aires",
            "build_the_daily_report",
            "paused",
            "123456",
            now.strftime("%Y-%m-%d %H:%M:%S"),
        ):
            assert any(whole in line for line in lines), (whole, out.getvalue())
    wide = io.StringIO()
    Console(file=wide, width=200, color_system=None).print(cron_table([schedule], 200))
    assert "┃ id" in wide.getvalue()  # wide consoles keep the table
