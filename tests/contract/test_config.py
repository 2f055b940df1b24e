"""init_job_queue / init_async_job_queue: backend selection, validation, BYO pool/client,
escape hatches, close and context managers."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from _bridge import unwrap
from _storage import PG_URL, REDIS_URL
from dataqueue import (
    AsyncJobQueue,
    BackendNotSupportedError,
    ConfigurationError,
    JobQueue,
    init_async_job_queue,
    init_job_queue,
)

INITS = [init_job_queue, init_async_job_queue]


@pytest.fixture(autouse=True)
def _no_env_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAQUEUE_URL", raising=False)


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        ((), {}, "DATAQUEUE_URL"),
        (("mysql://localhost/db",), {}, "mysql"),
        (("not a url",), {}, "scheme"),
        (("",), {}, "url"),
        ((), {"backend": "sqlite"}, "sqlite"),
        ((), {"backend": "postgres"}, "database_config"),
        ((), {"backend": "redis"}, "redis_config"),
        (("postgresql://u:hunter2@h/db",), {"backend": "redis"}, "contradicts"),
        (("redis://localhost",), {"pool": object()}, "postgres"),
        (("postgresql://localhost/db",), {"key_prefix": "x:"}, "redis"),
        ((), {"database_config": {}, "client": object()}, "backend="),
        ((), {"backend": "postgres", "database_config": "host=x"}, "mapping"),
        (("redis://localhost",), {"key_prefix": ""}, "key_prefix"),
    ],
)
def test_bad_configuration_rejected(
    init: Any, args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        init(*args, **kwargs)
    assert "hunter2" not in str(info.value)  # passwords never end up in messages


@pytest.mark.parametrize("init", INITS)
def test_env_url_used_when_nothing_given(init: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAQUEUE_URL", "mysql://somewhere/db")
    with pytest.raises(ConfigurationError, match="mysql"):
        init()


def test_env_url_selects_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAQUEUE_URL", PG_URL)
    q = init_job_queue()
    try:
        assert isinstance(q, JobQueue) and q.backend_name == "postgres"
    finally:
        q.close()


@pytest.mark.parametrize(
    "kwargs,url,expected",
    [
        ({"key_prefix": "app:"}, REDIS_URL, "redis"),
        ({"backend": "redis"}, REDIS_URL, "redis"),
        ({"schema": "app"}, PG_URL, "postgres"),
        ({"backend": "postgres"}, PG_URL, "postgres"),
    ],
)
def test_env_url_combines_with_qualifying_options(
    kwargs: dict[str, Any], url: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataqueue.config import resolve_config

    monkeypatch.setenv("DATAQUEUE_URL", url)
    config = resolve_config(None, **kwargs)
    assert config.backend == expected and config.url == url


def test_env_url_contradicting_backend_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAQUEUE_URL", PG_URL)
    with pytest.raises(ConfigurationError, match="key_prefix only apply to the redis"):
        init_job_queue(key_prefix="app:")
    with pytest.raises(ConfigurationError, match="contradicts"):
        init_job_queue(backend="redis")


@pytest.mark.parametrize(
    "url,backend",
    [
        ("postgresql://u@h/db", "postgres"),
        ("postgres://u@h/db", "postgres"),
        ("redis://h:6379/0", "redis"),
        ("rediss://h:6380/0", "redis"),
    ],
)
def test_scheme_selects_backend(url: str, backend: str) -> None:
    from dataqueue.config import resolve_config

    config = resolve_config(url)
    assert config.backend == backend


@pytest.mark.parametrize("init", INITS)
def test_unknown_option_is_a_type_error_naming_it(init: Any) -> None:
    with pytest.raises(TypeError, match="key_prefx"):
        init(REDIS_URL, key_prefx="app:")


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name.startswith("dataqueue.backends.postgres"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(ConfigurationError, match=r"dataqueue\[postgres\]"):
        init_job_queue(PG_URL)


def test_verbose_logs_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    q = init_job_queue(PG_URL, verbose=True)
    try:
        assert logging.getLogger("dataqueue").isEnabledFor(logging.DEBUG)
    finally:
        q.close()
        logging.getLogger("dataqueue").setLevel(logging.NOTSET)


# -- against real servers (backend x twin) ------------------------------------------------


def test_twin_types(q: Any, twin: str, backend_name: str) -> None:
    expected = JobQueue if twin == "sync" else AsyncJobQueue
    assert isinstance(unwrap(q), expected)
    assert q.backend_name == backend_name


def test_escape_hatches(q: Any, backend_name: str) -> None:
    if backend_name == "postgres":
        pool = unwrap(q.get_pool())
        assert type(pool).__module__.startswith("psycopg_pool")
        with pytest.raises(BackendNotSupportedError):
            q.get_redis_client()
    else:
        client = unwrap(q.get_redis_client())
        assert type(client).__module__.startswith("redis")
        with pytest.raises(BackendNotSupportedError):
            q.get_pool()


def test_bring_your_own_pool_or_client_is_not_closed(
    q: Any, queue_factory: Any, native: Any, backend_name: str
) -> None:
    if backend_name == "postgres":
        own = native.pg_pool()
        mine = queue_factory(url=None, pool=own)
        assert unwrap(mine.get_pool()) is unwrap(own)
    else:
        own = native.redis_client()
        mine = queue_factory(url=None, client=own)
        assert unwrap(mine.get_redis_client()) is unwrap(own)
    job_id = mine.add_job("byo", {"v": 1})
    assert q.get_job(job_id).payload == {"v": 1}  # same storage as the fixture's queue
    mine.close()
    mine.close()  # idempotent
    if backend_name == "postgres":
        assert unwrap(own).closed is False
        assert queue_factory(url=None, pool=own).get_job(job_id) is not None
    else:
        assert own.ping()


def test_context_manager_closes_queue(queue_factory: Any) -> None:
    with queue_factory() as inner:
        job_id = inner.add_job("ctx")
    assert isinstance(job_id, int)


def test_migrate_is_idempotent(q: Any) -> None:
    applied = q.migrate()
    assert isinstance(applied, list)
    assert q.migrate() == []


def test_key_prefix_or_schema_isolates_queues(
    q: Any, queue_factory: Any, backend_name: str, storage: Any
) -> None:
    q.add_job("in-default")
    if backend_name == "redis":
        other = queue_factory(key_prefix=f"{storage.key_prefix}other:")
    else:
        other = queue_factory(schema="dq_other")
        other.migrate()
    assert other.get_all_jobs() == []
    other_id = other.add_job("in-other")
    assert [j.job_type for j in other.get_all_jobs()] == ["in-other"]
    assert [j.job_type for j in q.get_all_jobs()] == ["in-default"]
    assert other.get_job(other_id).job_type == "in-other"


@pytest.mark.parametrize("backend_name", ["postgres", "redis"])
def test_url_and_keyword_options_combine(backend_name: str) -> None:
    # A URL plus keyword options is a valid configuration (SPEC §2).
    from dataqueue.config import resolve_config

    extra = {"key_prefix": "app:"} if backend_name == "redis" else {"schema": "app"}
    url = REDIS_URL if backend_name == "redis" else PG_URL
    config = resolve_config(url, **extra)
    assert config.backend == backend_name and config.url == url


def test_env_key_prefix_and_schema_mean_the_same_queue_as_the_cli(
    storage: Any, backend_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATAQUEUE_KEY_PREFIX / DATAQUEUE_SCHEMA are read by init_job_queue() as by the CLI:
    a job added by the library is listed by ``dataqueue jobs list`` with the same variables."""
    from dataqueue.cli import app
    from typer.testing import CliRunner

    if backend_name == "redis":
        monkeypatch.setenv("DATAQUEUE_KEY_PREFIX", storage.key_prefix + "env:")
    else:
        monkeypatch.setenv("DATAQUEUE_SCHEMA", "envschema")
    monkeypatch.setenv("DATAQUEUE_URL", storage.url)
    q = init_job_queue()
    try:
        q.migrate()
        job_id = q.add_job("env-job", {})
        if backend_name == "redis":
            import redis

            client = redis.Redis.from_url(storage.url)
            try:
                assert list(client.scan_iter(match=storage.key_prefix + "env:*", count=1000))
            finally:
                client.close()
        else:
            import psycopg

            with psycopg.connect(storage.url) as conn:
                row = conn.execute("SELECT count(*) FROM envschema.job_queue").fetchone()
            assert row == (1,)
    finally:
        q.close()
    other = init_job_queue(
        storage.options()["url"],
        **({"key_prefix": storage.key_prefix} if backend_name == "redis" else {"schema": "public"}),
    )
    try:
        if backend_name == "postgres":
            other.migrate()
        assert other.get_job(job_id) is None  # the explicit option wins over the variable
    finally:
        other.close()
    result = CliRunner().invoke(app, ["jobs", "show", str(job_id), "--json"])
    assert result.exit_code == 0, result.output
    assert "env-job" in result.output


def test_unreachable_server_is_a_backend_error(queue_factory: Any, backend_name: str) -> None:
    from dataqueue import BackendError

    down = {
        "postgres": "postgresql://postgres:postgres@127.0.0.1:1/none?connect_timeout=1",
        "redis": "redis://127.0.0.1:1/0",
    }[backend_name]
    q = queue_factory(url=down)
    with pytest.raises(BackendError):
        q.get_job(1)
    with pytest.raises(BackendError):
        q.add_job("t")


def test_pool_or_client_of_the_other_twin_is_rejected(
    queue_factory: Any, native: Any, backend_name: str, twin: str
) -> None:
    """A blocking pool/client handed to the asyncio queue (or the reverse) fails at once,
    naming the kind it needs, instead of failing on first use."""
    other = "async" if twin == "sync" else "sync"
    native.twin = other  # build the driver object of the other twin
    if backend_name == "postgres":
        wrong, option = unwrap(native.pg_pool()), "pool"
        pool_class = "AsyncConnectionPool" if twin == "async" else "ConnectionPool"
        want = f"psycopg_pool.{pool_class}"
    else:
        wrong, option = unwrap(native.redis_client()), "client"
        want = "redis.asyncio.Redis" if twin == "async" else "redis.Redis"
    native.twin = twin
    with pytest.raises(ConfigurationError, match=f"needs a {re.escape(want)}"):
        queue_factory(url=None, **{option: wrong}).get_job(1)
