"""What the operator sees (issue 11): one log line per job start and end, retries told apart
from failures for good, the exception type and traceback in the error history, a quiet
library by default, and fast, named connection failures."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dataqueue import BackendError, ConfigurationError, init_job_queue

from ._helpers import FAST, wait_status


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> list[str]:
        return [f"{r.levelname} {r.getMessage()}" for r in self.records]


@pytest.fixture
def lines() -> Iterator[_Lines]:
    """Records of ``dataqueue.worker`` at INFO (attached directly: the CLI tests may have
    turned propagation off in this process)."""
    logger = logging.getLogger("dataqueue.worker")
    handler = _Lines()
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def _resize(payload: Any, ctx: Any) -> Any:
    return {"width": payload["width"] // 2}


def test_job_lines_and_error_history(q: Any, make_processor: Any, lines: _Lines) -> None:
    ok = q.add_job("resize", {"width": 640})
    retried = q.add_job("resize", {}, max_attempts=2, retry_delay=60, retry_backoff=False)
    doomed = q.add_job("resize", {}, max_attempts=1)
    proc = make_processor({"resize": _resize})
    assert proc.start() == 3
    wait_status(q, ok, "completed")
    text = lines.text()
    assert f"INFO job {ok} (resize) started, attempt 1/3" in text
    assert any(
        t.startswith(f"INFO job {ok} (resize) completed in ") and t.endswith("s, attempt 1/3")
        for t in text
    ), text
    retry_line = [t for t in text if t.startswith(f"WARNING job {retried} (resize) failed in ")]
    assert retry_line and "attempt 1/2: KeyError: 'width'; will retry at 20" in retry_line[0]
    entry = q.get_job(retried).error_history[-1]
    assert entry["message"] == "'width'"
    assert entry["error"] == "KeyError: 'width'"
    assert entry["exception_type"] == "KeyError"
    assert "in _resize" in entry["traceback"]
    assert entry["traceback"].rstrip().endswith("KeyError: 'width'")
    # the last attempt fails for good, with its reason
    final = [t for t in lines.text() if "failed for good" in t]
    assert final and final[0].startswith(f"ERROR job {doomed} (resize) failed for good in ")
    assert "attempt 1/1 (handler_error): KeyError: 'width'" in final[0]
    assert not [t for t in text if f"job {retried} " in t and "for good" in t]


def test_library_is_quiet_by_default() -> None:
    import dataqueue  # noqa: F401 - the import installs the NullHandler

    logger = logging.getLogger("dataqueue")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    assert not any(
        isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
        and getattr(h, "stream", None) is not None
        and type(h) is logging.StreamHandler
        for h in logging.getLogger().handlers
    )


def _down_url(backend_name: str) -> str:
    # Port 9 (discard) is closed on the test machine: the connection is refused at once.
    if backend_name == "postgres":
        return "postgresql://postgres:postgres@127.0.0.1:9/postgres"
    return "redis://127.0.0.1:9/0"


def test_unreachable_backend_fails_fast_naming_where(backend_name: str) -> None:
    q = init_job_queue(_down_url(backend_name))
    try:
        started = time.monotonic()
        with pytest.raises(BackendError) as info:
            q.add_job("x", {})
        assert time.monotonic() - started < 5
        assert "127.0.0.1" in str(info.value) and "9" in str(info.value)
        if backend_name == "postgres":
            assert "database 'postgres'" in str(info.value)
            assert "Connection refused" in str(info.value)
    finally:
        q.close()


def test_processor_gives_up_after_the_configured_time(
    backend_name: str, twin: str, lines: _Lines
) -> None:
    q = init_job_queue(_down_url(backend_name))
    try:
        proc = q.create_processor({"x": lambda p, c: None}, give_up_after=1.0, **FAST)
        started = time.monotonic()
        with pytest.raises(BackendError, match="gave up after"):
            proc.run(handle_signals=False)
        assert time.monotonic() - started < 15
        text = lines.text()
        assert any("backend unavailable, retrying with backoff" in t for t in text), text
        assert any(t.startswith("ERROR") and "giving up after" in t for t in text), text
        proc.close(1)
    finally:
        q.close()


def test_wrong_password_is_a_configuration_error_at_once(storage: Any) -> None:
    if storage.backend != "postgres":
        pytest.skip("the test Redis has no password to get wrong")
    from urllib.parse import urlsplit

    parts = urlsplit(storage.url)
    bad = storage.url.replace(f":{parts.password}@", ":not-the-password@", 1)
    q = init_job_queue(bad)
    try:
        started = time.monotonic()
        with pytest.raises(ConfigurationError, match="password authentication failed"):
            q.add_job("x", {})
        proc = q.create_processor({"x": lambda p, c: None}, **FAST)
        with pytest.raises(ConfigurationError, match=r"database '.*' user 'postgres'"):
            proc.run(handle_signals=False)
        assert time.monotonic() - started < 10
        proc.close(1)
    finally:
        q.close()
