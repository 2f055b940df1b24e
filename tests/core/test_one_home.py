"""One fact, one home: defaults, status sets and fixed messages live in dataqueue/lifecycle.py.

The Redis scripts get them from the generated constants chunk, the SQL from rendering; this
test fails when a copy creeps back into the package.
"""

from __future__ import annotations

import re
from pathlib import Path

from dataqueue import lifecycle
from dataqueue.backends.redis.loader import SCRIPT_NAMES, script_source

PKG = Path(lifecycle.__file__).resolve().parent
SOURCES = [
    p
    for p in PKG.rglob("*")
    if p.suffix in {".py", ".lua"} and not p.name.endswith("_sync.py") and p.name != "lifecycle.py"
]
#: Not job-lifecycle settings: the embedded server's own start/stop waits.
NOT_LIFECYCLE = {"embedded.py"}
MESSAGES = [lifecycle.MSG_WORKER_LOST, lifecycle.MSG_TOKEN_TIMED_OUT, "depends on itself through"]
DEFAULT_PARAMS = re.compile(
    r"\b(max_attempts|priority|batch_size|concurrency|days_to_keep|lease_seconds|poll_interval"
    r"|stuck_jobs_timeout_minutes|interval|timeout|shutdown_grace)\s*:\s*(int|float)\s*=\s*\d"
)


def test_fixed_messages_are_written_once() -> None:
    for path in SOURCES:
        text = path.read_text()
        for message in MESSAGES:
            assert message not in text, f"{path.relative_to(PKG)} repeats {message!r}"


def test_public_defaults_name_the_constants() -> None:
    for path in SOURCES:
        if path.suffix != ".py" or path.name in NOT_LIFECYCLE:
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            assert not DEFAULT_PARAMS.search(line), f"{path.relative_to(PKG)}:{lineno}: {line}"


def test_lua_gets_the_constants_from_lifecycle() -> None:
    chunk = lifecycle.lua_constants()
    for name in SCRIPT_NAMES:
        assert script_source(name).startswith(chunk)
    for status in lifecycle.ACTIVE_STATUSES:
        assert f"{status.value} = true" in chunk.split("local ACTIVE = ", 1)[1].split("\n")[0]
    for op, transition in lifecycle.TRANSITIONS.items():
        line = next(x for x in chunk.splitlines() if x.startswith(f"local ACCEPTS_{op.name} ="))
        assert sorted(re.findall(r"(\w+) = true", line)) == sorted(
            s.value for s in transition.accepts
        )
    for lua in (PKG / "backends" / "redis" / "scripts").glob("*.lua"):
        text = lua.read_text()
        assert not re.search(r"local (ACTIVE|TERMINAL|ACCEPTS_\w+|DEFAULT_\w+) =", text), lua.name
        assert "pending = true" not in text, f"{lua.name} spells out a status set"


def test_sql_status_sets_are_rendered() -> None:
    from dataqueue.backends.postgres.sql import Statements

    sql = (PKG / "backends" / "postgres" / "sql.py").read_text()
    assert not re.search(r"IN \('(pending|processing|waiting|completed|failed|cancelled)'", sql)
    rendered = Statements(None).cancel  # type: ignore[call-arg]
    assert lifecycle.sql_status_list(lifecycle.TRANSITIONS[lifecycle.Operation.CANCEL].accepts) in (
        rendered
    )
