"""Deliberate mistakes a type checker must report (``test_typing.py`` expects each marked line
to be an error and the file to fail)."""

from __future__ import annotations

from dataqueue import JobContext, JobProgressEvent, init_job_queue

q = init_job_queue("postgresql://localhost/app")


@q.task(max_attempts=3)
def send_email(to: str, subject: str) -> dict[str, str]:
    return {"status": "sent"}


@q.task
def build(ctx: JobContext, day: str) -> int:
    return 1


def on_progress(event: JobProgressEvent) -> None:
    print(event["bogus"])  # E: not a key of the payload


send_email.defer(to="a@example.com")  # E: missing subject
send_email.defer(to=1, subject="x")  # E: wrong argument type
send_email.defer(to="a", subject="x", cc="b")  # E: unknown argument
build.defer(ctx=None, day="x")  # E: ctx is not part of the payload
count: int = send_email.defer(to="a", subject="b").result()  # E: the result is a dict
q.add_jobs([{"job_typ": "x"}])  # E: misspelt key
q.get_jobs_by_status("finished")  # E: not a status
q.create_processor(q.tasks, concurency=3)  # E: unknown processor option
q.create_supervisor(intervall=3)  # E: unknown supervisor option
q.on("job:failed", on_progress)  # E: a listener of another event's payload
q.wait_for_job("12")  # E: job ids are ints
q.task(retry="3")  # E: retry is a count or a RetryPolicy
send_email.configure(depends_on="12")  # E: depends_on takes ids or handles, not a str
