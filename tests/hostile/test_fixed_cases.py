"""One fixed case per class of bad input (issue 12), on both backends and both twins where a
queue is involved: the right DataQueueError naming the value, nothing written."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from dataqueue import (
    BackendError,
    ConfigurationError,
    CronError,
    DataQueueError,
    InvalidFilterError,
    InvalidJobError,
    InvalidTokenError,
)
from dataqueue.backends.postgres.config import PostgresSettings
from dataqueue.backends.redis.config import RedisSettings
from dataqueue.backends.redis.keys import base_for_prefix

from ._snapshot import snapshot

UTC = timezone.utc
SURROGATE = "\ud800"


def _refused(storage: Any, error: type[Exception], named: str, call: Any, *args: Any) -> None:
    """``call(*args)`` raises ``error`` naming ``named`` and writes nothing."""
    before = snapshot(storage)
    with pytest.raises(error) as info:
        call(*args)
    assert named in str(info.value), str(info.value)
    assert snapshot(storage) == before


# -- lone surrogates and NUL, in every string field ---------------------------------------------

_BAD_TEXT = [SURROGATE, "a\x00b"]

# (the error, what it names, a call given the queue and the bad text), one per text field
_TEXT_FIELDS: list[tuple[type[Exception], str, Any]] = [
    (InvalidJobError, "job_type", lambda q, bad: q.add_job(bad)),
    (InvalidJobError, "payload", lambda q, bad: q.add_job("t", {"k": bad})),
    (InvalidJobError, "payload", lambda q, bad: q.add_job("t", {bad: 1})),
    (InvalidJobError, "tags", lambda q, bad: q.add_job("t", tags=["ok", bad])),
    (InvalidJobError, "idempotency_key", lambda q, bad: q.add_job("t", idempotency_key=bad)),
    (InvalidJobError, "group", lambda q, bad: q.add_job("t", group=bad)),
    (InvalidJobError, "group tier", lambda q, bad: q.add_job("t", group={"id": "g", "tier": bad})),
    (InvalidJobError, "dead_letter_job_type", lambda q, b: q.add_job("t", dead_letter_job_type=b)),
    (InvalidJobError, "depends_on.tags", lambda q, bad: q.add_job("t", depends_on={"tags": [bad]})),
    (InvalidJobError, "jobs[1]", lambda q, bad: q.add_jobs([{"job_type": "t"}, {"job_type": bad}])),
    (InvalidTokenError, "token tag", lambda q, bad: q.create_token(tags=[bad])),
    (InvalidTokenError, "token id", lambda q, bad: q.complete_token(bad)),
    (InvalidTokenError, "token id", lambda q, bad: q.get_token(bad)),
    (CronError, "schedule_name", lambda q, bad: q.add_cron_job(bad, "* * * * *", "t")),
    (CronError, "schedule_name", lambda q, bad: q.get_cron_job_by_name(bad)),
    (CronError, "cron_expression", lambda q, bad: q.add_cron_job("c", "* * * * *" + bad, "t")),
    (CronError, "timezone", lambda q, bad: q.add_cron_job("c", "* * * * *", "t", timezone=bad)),
    (InvalidJobError, "payload", lambda q, bad: q.add_cron_job("c", "* * * * *", "t", {"p": bad})),
    (InvalidFilterError, "job_type", lambda q, bad: q.get_jobs({"job_type": bad})),
    (InvalidFilterError, "tags", lambda q, bad: q.get_jobs_by_tags([bad])),
    (
        InvalidFilterError,
        "tags",
        lambda q, b: q.cancel_all_upcoming_jobs({"tags": {"values": [b]}}),
    ),
]


@pytest.mark.parametrize("bad", _BAD_TEXT, ids=["surrogate", "nul"])
def test_bad_text_in_every_field(q: Any, storage: Any, bad: str) -> None:
    for error, named, call in _TEXT_FIELDS:
        _refused(storage, error, named, call, q, bad)
    job = q.add_job("t")
    _refused(storage, InvalidJobError, "payload", lambda: q.edit_job(job, payload=[bad]))
    _refused(storage, InvalidJobError, "tags", lambda: q.edit_job(job, tags=[bad]))
    token = q.create_token()
    _refused(
        storage, InvalidTokenError, "token data", lambda: q.complete_token(token.id, {"d": bad})
    )


# -- JSON ----------------------------------------------------------------------------------------


def test_deep_json_is_an_invalid_job_error(q: Any, storage: Any) -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    _refused(storage, InvalidJobError, "nested too deeply", lambda: q.add_job("t", deep))
    token = q.create_token()
    _refused(storage, InvalidTokenError, "token data", lambda: q.complete_token(token.id, deep))


def test_floats_and_integers_read_back_exactly(q: Any, storage: Any) -> None:
    payload = {"big": 1e300, "tiny": 5e-324, "e16": 1e16, "max": 2**53 - 1, "min": -(2**53 - 1)}
    job = q.get_job(q.add_job("t", payload))
    assert job.payload == payload
    assert [type(job.payload[k]) for k in payload] == [float, float, float, int, int]
    _refused(storage, InvalidJobError, "9007199254740992", lambda: q.add_job("t", {"n": 2**53}))


# -- numbers, durations and types ------------------------------------------------------------


def test_token_timeouts(q: Any, storage: Any) -> None:
    for bad in ("²s", 1e20, -(10**30), float("nan"), "10", "1y", "0s", "366d", timedelta(days=400)):
        _refused(storage, InvalidTokenError, "timeout", lambda bad=bad: q.create_token(timeout=bad))
    assert q.create_token(timeout="365d").timeout_at is not None


# (the error, what it names, a call given the queue and an integer), one per integer argument
_INTEGER_ARGUMENTS: list[tuple[type[Exception], str, Any]] = [
    (InvalidJobError, "job id", lambda q, n: q.get_job(n)),
    (InvalidJobError, "job id", lambda q, n: q.cancel_job(n)),
    (InvalidJobError, "cron job id", lambda q, n: q.get_cron_job(n)),
    (InvalidFilterError, "limit", lambda q, n: q.get_all_jobs(limit=abs(n))),
    (InvalidFilterError, "offset", lambda q, n: q.get_all_jobs(offset=abs(n))),
    (InvalidFilterError, "cursor", lambda q, n: q.get_jobs(cursor=abs(n))),
    (InvalidJobError, "batch_size", lambda q, n: q.cleanup_old_jobs(30, batch_size=n)),
    (InvalidJobError, "priority", lambda q, n: q.add_job("t", priority=n)),
    (InvalidJobError, "max_attempts", lambda q, n: q.add_job("t", max_attempts=n)),
    (InvalidJobError, "timeout_ms", lambda q, n: q.add_job("t", timeout_ms=n)),
    (InvalidJobError, "depends_on", lambda q, n: q.add_job("t", depends_on={"job_ids": [n]})),
    (InvalidFilterError, "priority", lambda q, n: q.get_jobs({"priority": n})),
]


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64])
def test_integers_beyond_64_bits_are_refused_up_front(q: Any, storage: Any, value: int) -> None:
    for error, named, call in _INTEGER_ARGUMENTS:
        _refused(storage, error, named, call, q, value)
    # the largest id is a valid question with an answer
    assert q.get_job(2**63 - 1) is None
    assert q.get_all_jobs(limit=2**63 - 1, offset=2**63 - 1) == []
    # limit + offset beyond 64 bits (found by the property suite: PostgreSQL overflowed)
    assert q.get_jobs_by_status("pending", 1, 2**63 - 1) == []


def test_wrong_types_are_named(q: Any, storage: Any) -> None:
    _refused(storage, InvalidFilterError, "statuses", lambda: q.cleanup_old_jobs(30, statuses=5))
    _refused(storage, InvalidFilterError, "status", lambda: q.cleanup_old_jobs(30, statuses=[[1]]))
    _refused(storage, InvalidFilterError, "status", lambda: q.get_jobs_by_status(["pending"]))
    _refused(storage, InvalidFilterError, "tag mode", lambda: q.get_jobs_by_tags(["a"], mode=[]))
    _refused(
        storage, InvalidJobError, "max_processing_time_minutes", lambda: q.reclaim_stuck_jobs(1e300)
    )
    _refused(storage, InvalidFilterError, "unknown filter", lambda: q.get_jobs({1: 2, "a": 3}))


# -- falsy filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [
        {"job_type": 0},
        {"job_type": []},
        {"job_type": False},
        {"priority": False},
        {"priority": 0.0},
        {"tags": {"values": [], "mode": "bogus"}},
        {"tags": {"values": 0}},
        {"tags": []},
        {"tags": 0},
        {"run_at": 0},
        {"run_at": {"gt": 0}},
    ],
)
def test_wrong_typed_falsy_filters_are_errors(q: Any, storage: Any, filters: Any) -> None:
    ids = q.add_jobs([{"job_type": "a"}, {"job_type": "b"}])
    _refused(storage, InvalidFilterError, "", lambda: q.cancel_all_upcoming_jobs(filters))
    _refused(storage, InvalidFilterError, "", lambda: q.edit_all_pending_jobs(filters, priority=3))
    _refused(storage, InvalidFilterError, "", lambda: q.get_jobs(filters))
    assert [q.get_job(i).status.value for i in ids] == ["pending", "pending"]


def test_documented_empty_filters_match_everything(q: Any) -> None:
    q.add_jobs([{"job_type": "a"}, {"job_type": "b"}])
    for empty in (None, {}, {"job_type": None}, {"job_type": ""}, {"run_at": {}},
                  {"tags": {"values": []}}, {"tags": {"values": [], "mode": "any"}}):  # fmt: skip
        assert len(q.get_jobs(empty)) == 2


# -- datetimes --------------------------------------------------------------------------------


def test_datetimes_are_stored_exactly_or_refused(q: Any, storage: Any) -> None:
    latest = datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    earliest = datetime(1900, 1, 1, tzinfo=UTC)
    for when in (latest, earliest, datetime(2100, 6, 1, 12, 0, 0, 123457, tzinfo=UTC)):
        assert q.get_job(q.add_job("t", run_at=when)).run_at == when
    for bad in (
        datetime.max.replace(tzinfo=UTC),
        datetime(2200, 1, 1, tzinfo=UTC),
        datetime(1899, 12, 31, tzinfo=UTC),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),  # before year 1 in UTC
        datetime(2030, 1, 1),  # naive
    ):
        _refused(storage, InvalidJobError, "run_at", lambda bad=bad: q.add_job("t", run_at=bad))
        job = q.add_job("t")
        _refused(
            storage, InvalidJobError, "run_at", lambda bad=bad, job=job: q.edit_job(job, run_at=bad)
        )
    # the queue is not poisoned: every list call works
    assert len(q.get_all_jobs(limit=1000)) == 3 + 5
    assert q.get_jobs({"run_at": {"lte": datetime.max.replace(tzinfo=UTC)}}, limit=1000)
    assert q.get_jobs({"run_at": {"gt": datetime.min.replace(tzinfo=UTC)}}, limit=1000)


# -- lifecycle ------------------------------------------------------------------------------


def test_a_closed_queue_refuses(queue_factory: Any, storage: Any) -> None:
    q = queue_factory()
    q.add_job("t")
    q.close()
    _refused(storage, BackendError, "closed", lambda: q.add_job("t"))
    _refused(storage, BackendError, "closed", lambda: q.get_all_jobs())
    q.close()  # still a no-op


def test_an_async_queue_refuses_a_second_event_loop_before_writing(storage: Any, twin: str) -> None:
    if twin == "sync":
        pytest.skip("event loops concern the asyncio twin only")
    from dataqueue import init_async_job_queue

    async def make() -> Any:
        q = init_async_job_queue(storage.url, **storage.queue_options())
        await q.add_job("t")
        return q

    q = asyncio.run(make())
    before = snapshot(storage)

    async def again() -> None:
        with pytest.raises(ConfigurationError, match="event loop"):
            await q.add_job("t")
        await q.close()  # closing from another loop works

    asyncio.run(again())
    assert snapshot(storage) == before


def test_many_concurrent_calls_wait_for_a_connection(storage: Any, twin: str) -> None:
    if twin == "sync":
        pytest.skip("concurrency of one asyncio queue")
    from dataqueue import init_async_job_queue

    async def burst() -> list[int]:
        q = init_async_job_queue(storage.url, **storage.queue_options())
        try:
            return list(await asyncio.gather(*(q.add_job("t", {"i": i}) for i in range(250))))
        finally:
            await q.close()

    assert len(set(asyncio.run(burst()))) == 250


# -- settings: URLs, schema, search_path, key_prefix --------------------------------------------


_MALFORMED_URLS = [
    "redis://127.0.0.1/abc", "redis://127.0.0.1/1?db=x", "redis://[::1", "redis://h:99999/0",
    "redis://h/0\x00", "redis://h/" + SURROGATE,
    "postgresql://[::1/db", "postgresql://h:99999/db", "postgresql://h/db\n",
    "postgresql://h/db?search_path=a%09-c%09work_mem%3D1", "postgresql://h/" + SURROGATE,
]  # fmt: skip


_BAD_SETTING_TEXT = [SURROGATE, "a\x00b", "a\nb", "a\tb", "a\x1bb"]


@pytest.mark.parametrize("bad", _BAD_SETTING_TEXT, ids=["surrogate", "nul", "lf", "tab", "esc"])
@pytest.mark.parametrize("field", ["host", "username", "password"])
def test_bad_text_in_connection_settings_names_the_field(field: str, bad: str) -> None:
    """host / user / password of either backend, given as a config key: a ConfigurationError
    naming the field (a password's value is never repeated)."""
    secret = f"s3cret{bad}"
    with pytest.raises(ConfigurationError, match=f"redis_config.{field}") as info:
        RedisSettings.from_options(redis_config={"host": "h", field: secret})
    pg_field = {"username": "user"}.get(field, field)
    with pytest.raises(ConfigurationError, match=f"database_config.{pg_field}") as pg_info:
        PostgresSettings.from_options(database_config={"host": "h", pg_field: secret})
    if field == "password":
        assert "s3cret" not in str(info.value) and "s3cret" not in str(pg_info.value)


@pytest.mark.parametrize("escaped", ["%00", "%0A", "%09", "%1B"])
@pytest.mark.parametrize("field", ["host", "username", "password"])
def test_percent_escaped_bad_text_in_urls_names_the_part(field: str, escaped: str) -> None:
    """What a URL's %-escapes decode to obeys the same rule, on both backends."""
    parts = {"username": "u", "password": "p", "host": "h"}
    parts[field] = f"s3cret{escaped}"
    creds = f"{parts['username']}:{parts['password']}@{parts['host']}"
    pg_name = {"username": "user"}.get(field, field)
    for url, name in ((f"redis://{creds}:6379/0", f"redis url {field}"),
                      (f"postgresql://{creds}:5432/db", f"url {pg_name}")):  # fmt: skip
        settings = RedisSettings if url.startswith("redis") else PostgresSettings
        with pytest.raises(ConfigurationError, match=name) as info:
            settings.from_options(url)
        if field == "password":
            assert "s3cret" not in str(info.value), info.value


def test_bad_text_in_a_redis_url_query_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="redis url client_name"):
        RedisSettings.from_options("redis://h:6379/0?client_name=a%0Ab")


def test_good_connection_settings_still_pass() -> None:
    RedisSettings.from_options("redis://user:p%40ss%20word@h:6379/0?client_name=a%20b")
    RedisSettings.from_options(
        redis_config={"host": "h", "username": "ü ser", "password": "pä ss:@/"}
    )
    PostgresSettings.from_options("postgresql://user:p%40ss%20word@h:5432/db")
    PostgresSettings.from_options(
        database_config={"host": "h", "user": "ü ser", "password": "pä ss:@/"}
    )


@pytest.mark.parametrize("url", _MALFORMED_URLS)
def test_malformed_urls(url: str) -> None:
    settings = RedisSettings if url.startswith("redis") else PostgresSettings
    with pytest.raises(ConfigurationError):
        settings.from_options(url)


@pytest.mark.parametrize(
    "search_path", ["a\t-c work_mem=1", "a\n-c x=y", "a\r-c x=y", '"a"b"', "\x00", SURROGATE]
)
def test_search_path_cannot_inject_options(search_path: str) -> None:
    with pytest.raises(ConfigurationError, match="search_path"):
        PostgresSettings.from_options(database_config={"host": "h", "search_path": search_path})


def test_url_options_keep_their_percent_encoding() -> None:
    from psycopg.conninfo import conninfo_to_dict

    plain = PostgresSettings.from_options(
        "postgresql://u@h/db?options=-c%20x%3Dy&sslmode=no-verify"
    )
    assert "+" not in plain.conninfo
    assert conninfo_to_dict(plain.conninfo)["options"] == "-c x=y"
    both = PostgresSettings.from_options("postgresql://u@h/db?options=-c%20x%3Dy&search_path=a%20b")
    assert conninfo_to_dict(both.conninfo)["options"] == '-c x=y -c search_path="a\\ b"'


@pytest.mark.parametrize("schema", ["", "x" * 64, "a\nb", "a\x00", SURROGATE, 5])
def test_bad_schema_names(schema: Any) -> None:
    with pytest.raises(ConfigurationError, match="schema"):
        PostgresSettings.from_options("postgresql://h/db", schema=schema)


def test_schema_with_percent_and_quotes_works(backend_name: str, twin: str, storage: Any) -> None:
    if backend_name != "postgres" or twin != "sync":
        pytest.skip("a PostgreSQL schema name")
    from dataqueue import init_job_queue

    schema = "dq%s%(id)s'\"\\ é"
    q = init_job_queue(storage.url, schema=schema)
    try:
        q.migrate()
        first = q.add_job("t", {"a": 1})
        q.add_jobs([{"job_type": "t"}, {"job_type": "u"}])
        assert [j.id for j in q.get_jobs({"job_type": "t"})] == [first + 1, first]
        assert q.cancel_all_upcoming_jobs({"job_type": "u"}) == 1
    finally:
        q.close()


def test_search_path_from_the_url(backend_name: str, twin: str, storage: Any) -> None:
    if backend_name != "postgres" or twin != "sync":
        pytest.skip("a PostgreSQL URL")
    from dataqueue import init_job_queue

    q = init_job_queue(storage.url + "?options=-c%20statement_timeout%3D12345&search_path=public")
    try:
        q.add_job("t")
        with q.get_pool().connection() as conn:
            assert conn.execute("SHOW statement_timeout").fetchone()[0] == "12345ms"
            assert conn.execute("SHOW search_path").fetchone()[0] == '"public"'
    finally:
        q.close()


@pytest.mark.parametrize(
    "prefix", ["app}{", "a{b", "a}b", "{}:", "a{b}", "a{b}:c", "a{b}{c}:", "p:{p}:", "p:{p}:tag:",
               "x" * 201, "a\x00", SURROGATE, ""],
)  # fmt: skip
def test_refused_key_prefixes(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="key_prefix"):
        RedisSettings.from_options("redis://h", key_prefix=prefix)


def test_accepted_key_prefixes_never_share_keys() -> None:
    prefixes = ["p:", "p", "p::", "p:tag:", "p:{q}:", "p:{p:}:", "{p}:", "dq:", "::"]
    bases = []
    for prefix in prefixes:
        RedisSettings.from_options("redis://h", key_prefix=prefix)
        base = base_for_prefix(prefix)
        assert base.count("{") == 1 and base.count("}") == 1 and base.endswith("}:")
        bases.append(base)
    for a in bases:
        for b in bases:
            assert a == b or not b.startswith(a), (a, b)
    assert len(set(bases)) == len(bases)


def test_two_similar_prefixes_are_two_queues(queue_factory: Any, backend_name: str) -> None:
    if backend_name != "redis":
        pytest.skip("Redis key prefixes")
    base = f"dqtest_{uuid.uuid4().hex[:12]}"
    first = queue_factory(key_prefix=base + ":")
    second = queue_factory(key_prefix=base + ":{other}:")
    try:
        first.add_job("t", {"secret": 1})
        assert second.get_all_jobs() == []
    finally:
        import redis

        client = redis.Redis()
        for key in client.scan_iter(f"{base}*"):
            client.delete(key)
        client.close()


def test_every_error_is_a_dataqueue_error() -> None:
    for cls in (BackendError, ConfigurationError, CronError, InvalidFilterError, InvalidJobError,
                InvalidTokenError):  # fmt: skip
        assert issubclass(cls, DataQueueError)
