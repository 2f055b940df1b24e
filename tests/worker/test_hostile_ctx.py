"""Bad arguments to the handler context fail the attempt with a named InvalidJobError instead
of reaching the storage (issue 12): out-of-range wait times, lone surrogates in token ids and
tags, unstorable step results and outputs."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest


def _bad_calls() -> dict[str, Any]:
    return {
        "wait_until_max": lambda ctx: ctx.wait_until(datetime.max.replace(tzinfo=timezone.utc)),
        "wait_until_naive": lambda ctx: ctx.wait_until(datetime(2030, 1, 1)),
        "wait_for_huge": lambda ctx: ctx.wait_for(seconds=1e20),
        "wait_for_inf": lambda ctx: ctx.wait_for(days=float("inf")),
        "token_tag": lambda ctx: ctx.create_token(tags=["\ud800"]),
        "token_timeout": lambda ctx: ctx.create_token(timeout="²s"),
        "token_id": lambda ctx: ctx.wait_for_token("\ud800"),
        "step_result": lambda ctx: ctx.run("s", lambda: {"x": "\x00"}),
        "output": lambda ctx: {"big": 2**60},
    }


_EXPECTED = {
    "wait_until_max": "wait_until",
    "wait_until_naive": "wait_until",
    "wait_for_huge": "wait_for",
    "wait_for_inf": "wait_for",
    "token_tag": "token tag",
    "token_timeout": "timeout",
    "token_id": "token id",
    "step_result": "step",
    "output": "return value",
}


@pytest.mark.parametrize("case", sorted(_EXPECTED))
def test_bad_context_arguments_fail_the_attempt_with_a_named_error(
    q: Any, make_processor: Any, case: str
) -> None:
    call = _bad_calls()[case]
    job_id = q.add_job("h", {}, max_attempts=1)
    make_processor({"h": lambda payload, ctx: call(ctx)}).start()
    job = q.get_job(job_id)
    assert job.status.value == "failed", job
    message = job.error_history[-1]["message"]
    assert _EXPECTED[case] in message, message
    assert "UnicodeEncodeError" not in message and "OverflowError" not in message
