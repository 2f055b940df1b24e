"""The PostgreSQL backend, in two twins: asyncio and blocking. The blocking twin is generated
from the asyncio source by ``tools/gen_sync.py``: edit that source, never the generated twin.

All SQL lives in ``sql.py``; this module only decides which statements run, in which
transaction, and turns rows into records (``rows.py``). Single-statement operations run in
autocommit; operations that must see rows committed while they waited for a lock use two
statements in one transaction.
"""

from __future__ import annotations

import asyncio  # sync: import threading
import contextlib
import hashlib
import json
import re
import select
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg import errors as pg_errors
from psycopg.abc import Buffer
from psycopg.pq import Format
from psycopg.rows import tuple_row
from psycopg.types.json import JsonbBinaryLoader, JsonbLoader
from psycopg_pool import AsyncConnectionPool

from dataqueue._typing import Unpack
from dataqueue.backends import types as T
from dataqueue.backends.base_async import (
    AsyncBackend,
    AsyncFinishListener,
    current_waiter,
    waiter_finished,
)
from dataqueue.backends.postgres import migrate as M
from dataqueue.backends.postgres import rows as R
from dataqueue.backends.postgres import sql as Q
from dataqueue.backends.postgres.config import (
    PostgresSettings,
    connect_failure,
    first_connect_kwargs,
)
from dataqueue.backends.postgres.enqueue import (
    copy_blocks,
    plan_add,
    single_params,
    unique_batch,
)
from dataqueue.backends.postgres.sql import (
    CLAIM_PLANNER_SETTINGS,
    ONE_OPTIONAL,
    Statements,
    cron_assignments,
    done_channel,
    edit_assignments,
    filter_clause,
    notify_channel,
    pg_bool_array,
    pg_int_array,
    pg_nullable_text_array,
    pg_text_array,
    tag_clause,
)
from dataqueue.backends.types import KEEP
from dataqueue.errors import (
    BackendError,
    ConfigurationError,
    CronError,
    DataQueueError,
    InvalidJobError,
    UnknownPrerequisiteError,
)
from dataqueue.lifecycle import (
    DEAD_LETTER_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    MAINTENANCE_CHUNK,
    FailurePlan,
    unknown_prerequisites_message,
)
from dataqueue.options import (
    JobFilters,
    JobUpdates,
    NewJob,
    UniqueSpec,
    dump_json,
    json_int_or_float,
)

__all__ = ["AsyncPostgresBackend"]

_JSONB_OID = 3802
_ACTIVE_GROUP_LOCK_TRIES = 4
_CLAIM_LITERAL_LIMIT_MAX = 100
_CRON_MAX_PER_CALL = MAINTENANCE_CHUNK


_CURSOR_START: Final = datetime.max.replace(tzinfo=timezone.utc)


def _encode_cursor(created_at: datetime, job_id: int) -> str:
    """A search cursor: the (created_at, id) of the last job seen, as ``<µs>.<id>``."""
    return f"{(created_at - _EPOCH) // timedelta(microseconds=1)}.{job_id}"


def _decode_cursor(cursor: str | None) -> tuple[datetime, int]:
    if not cursor:
        return _CURSOR_START, 2**63 - 1
    try:
        us, _, job_id = cursor.partition(".")
        return _EPOCH + timedelta(microseconds=int(us)), int(job_id)
    except (ValueError, OverflowError):
        raise InvalidJobError(
            f"cursor {cursor!r} is not a cursor returned by search_jobs"
        ) from None


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)


@contextmanager
def translate_errors() -> Iterator[None]:
    """psycopg errors → dataqueue errors: bad values → InvalidJobError, the rest BackendError."""
    try:
        yield
    except DataQueueError:
        raise
    except psycopg.Error as exc:
        raise _translated(exc) from exc


def _translated(exc: psycopg.Error) -> DataQueueError:
    """The dataqueue error for a psycopg error (see ``translate_errors``)."""
    if isinstance(exc, (psycopg.DataError, psycopg.IntegrityError)):
        return InvalidJobError(f"rejected by PostgreSQL: {exc}")
    if isinstance(exc, pg_errors.UndefinedTable):
        return BackendError(f"dataqueue tables are missing (run migrate()): {exc}")
    return BackendError(f"PostgreSQL error: {exc}")


class _JsonbLoader(JsonbLoader):
    """jsonb → Python like psycopg's loader, but the empty object and array (the step_data
    and error_history of most claimed jobs) skip the JSON parser, and a float jsonb prints as
    bare digits (1e300 → "1000…0") is read back as a float (see ``json_int_or_float``)."""

    def load(self, data: Buffer) -> Any:
        return _load_json(self, data)


class _JsonbBinaryLoader(JsonbBinaryLoader):
    """``_JsonbLoader`` for binary results (the claim's): jsonb's binary form is a version
    byte, then the text."""

    def load(self, data: Buffer) -> Any:
        if data[:1] != b"\x01":
            return super().load(data)  # raises psycopg's error for an unknown version
        return _load_json(self, data[1:])


def _load_json(loader: Any, data: Buffer) -> Any:
    if data == b"{}":
        return {}
    if data == b"[]":
        return []
    if not isinstance(data, bytes):
        data = bytes(data)
    if _LONG_DIGITS.search(data) is not None:
        return json.loads(data, parse_int=json_int_or_float)
    return loader.loads(data)


# 16 digits in a row: a number that may lie beyond ±MAX_SAFE_INT (else only plain loading).
_LONG_DIGITS = re.compile(rb"[0-9]{16}")


def _with_loader(conn: Any, cur: Any) -> None:
    """A caller's pool or ``db=`` connection has psycopg's own jsonb loaders: use ours on the
    cursor, so payloads read back the same through any connection."""
    if conn.adapters.get_loader(_JSONB_OID, Format.TEXT) is not _JsonbLoader:
        cur.adapters.register_loader("jsonb", _JsonbLoader)
    if conn.adapters.get_loader(_JSONB_OID, Format.BINARY) is not _JsonbBinaryLoader:
        cur.adapters.register_loader("jsonb", _JsonbBinaryLoader)


async def _configure(conn: AsyncConnection[Any]) -> None:
    """Session settings of the connections in our own pool: the claim's planner settings
    (see ``sql.CLAIM_PLANNER_SETTINGS``) for the whole session, so a claim is one statement;
    a cheaper jsonb loader. A caller's pool is left alone: claims on it set the planner
    settings per transaction instead."""
    conn.adapters.register_loader("jsonb", _JsonbLoader)
    conn.adapters.register_loader("jsonb", _JsonbBinaryLoader)
    await conn.execute(CLAIM_PLANNER_SETTINGS.replace("true)", "false)"))
    if not conn.autocommit:
        await conn.commit()


async def _execute(
    conn: AsyncConnection[Any],
    query: Any,
    params: Any = None,
    *,
    hot: bool = False,
    binary: bool | None = None,
) -> AsyncCursor[tuple[Any, ...]]:
    """Execute on a cursor with tuple rows, whatever row factory the connection has (a
    caller's pool or ``db=`` connection may use dict rows). ``hot`` statements (claim,
    completion) are prepared on their first execution on a connection rather than the fifth
    (psycopg still prepares nothing where ``prepare_threshold=None``, e.g. behind a
    transaction-pooling PgBouncer). ``binary`` results: the claim's rows (times, arrays and
    numbers in binary cost the server and the client far less than their text)."""
    cur = conn.cursor(row_factory=tuple_row)
    _with_loader(conn, cur)
    await cur.execute(query, params, prepare=True if hot else None, binary=binary)
    return cur


def _dropped(conn: Any) -> bool:
    """Whether an idle pooled connection is closed, or the server has sent it something
    (nothing is expected on an idle connection but the notice of its termination)."""
    if conn.closed or getattr(conn, "broken", False):
        return True
    try:
        return _readable(conn.fileno())
    except psycopg.Error:
        return True


def _readable(fd: int) -> bool:
    """Whether the server has sent a connection's socket something not read yet (a closed
    socket counts: reading it reports that), without waiting."""
    try:
        readable, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _in_claim_order(rows: list[tuple[Any, ...]]) -> list[T.JobRecord]:
    """Claimed rows come back unordered (sorting them in SQL would need the sort the claim
    disables): order them priority DESC, created_at, id here."""
    jobs = [R.job_from_row(r) for r in rows]
    jobs.sort(key=lambda j: (-j.priority, j.created_at, j.id))
    return jobs


#: Most socket reads one wake-up spends taking the notifications that came with it.
_TAKE_READS: Final = 16


async def _notified(conn: AsyncConnection[Any], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for a notification on a LISTEN connection. One
    covers every notification already received: those are taken with it, so a burst of
    them is one wake-up, not one per notification."""
    got = False
    # Run to its end: a generator left early would hold the connection's lock until it is
    # finalized.
    async for _ in conn.notifies(timeout=timeout, stop_after=1):
        got = True
    if got:
        _take_received(conn.pgconn)
    return got


def _take_received(pgconn: Any) -> None:
    """Discard the notifications a LISTEN connection has received: those libpq holds and
    those waiting in its socket. A burst arrives in several reads (psycopg's notifies()
    makes one per wait), so this reads until the socket has nothing more, without a task
    switch or a timer (the connection is its waiter's alone: no other call uses it). At
    most ``_TAKE_READS`` reads: a steady stream is left for the next wait."""
    for _ in range(_TAKE_READS):
        while pgconn.notifies() is not None:
            pass
        if not _readable(pgconn.socket):
            return
        pgconn.consume_input()
    while pgconn.notifies() is not None:
        pass


class _PgFinishListener(AsyncFinishListener):
    """LISTEN on the "jobs finished" channel over its own connection."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn = conn

    async def wait(self, timeout: float) -> bool:
        try:
            return await _notified(self._conn, max(0.0, timeout))
        except psycopg.Error as exc:
            raise BackendError(f"LISTEN connection failed: {exc}") from exc

    async def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            await self._conn.close()


class AsyncPostgresBackend(AsyncBackend):
    """Jobs, events, tokens and cron schedules in PostgreSQL tables (see ``migrations/``)."""

    name = "postgres"

    def __init__(self, settings: PostgresSettings) -> None:
        self.settings = settings
        self.schema: str | None = settings.schema
        self.channel: str = notify_channel(settings.schema)
        self.done_channel: str = done_channel(settings.schema)
        self._sql = Statements(settings.schema)
        if settings.pool is not None and not isinstance(settings.pool, AsyncConnectionPool):
            # A pool of the other twin would fail on first use, in a confusing way.
            kind = type(settings.pool)
            raise ConfigurationError(
                "this queue needs a psycopg_pool.AsyncConnectionPool, "
                f"got {kind.__module__}.{kind.__name__}"
            )
        self._owns_pool = settings.pool is None
        self._pool: AsyncConnectionPool[Any] = settings.pool or AsyncConnectionPool(
            settings.conninfo,
            kwargs=settings.connection_kwargs(),
            min_size=settings.min_size,
            max_size=settings.max_size,
            open=False,
            configure=_configure,
        )
        self._opened = not self._owns_pool
        self._open_lock = asyncio.Lock()  # sync: self._open_lock = threading.Lock()
        # LISTEN connections of wait_for_work, one per waiter (see current_waiter)
        self._listeners: dict[Any, AsyncConnection[Any]] = {}
        self._closed = False
        key = hashlib.sha256(b"dataqueue-groups:" + (settings.schema or "").encode()).digest()
        self._group_lock_ns = int.from_bytes(key[:4], "big", signed=True)
        key = hashlib.sha256(b"dataqueue-unique:" + (settings.schema or "").encode()).digest()
        self._unique_lock_ns = int.from_bytes(key[:4], "big", signed=True)
        # Statements that take no arguments, rendered once.
        self._q_claim = {typed: self._sql.claim(typed=typed) for typed in (False, True)}
        self._q_claim_limit: dict[tuple[bool, int], str] = {}  # see _claim_query
        self._q_types: dict[tuple[str, ...], str] = {}  # see _types_literal
        self._q_candidates = {t: self._sql.claim_candidates(typed=t) for t in (False, True)}
        self._q_add = {full: self._sql.add(full=full) for full in (False, True)}
        # Single-job statements by the options set (a handful of shapes in practice).
        self._q_add_one: dict[tuple[str, ...], str] = {}
        # One reusable cursor per pooled connection for _add_one_pooled, by id(connection) (a
        # connection is used by one caller at a time, and so is its cursor). A cursor keeps its
        # connection alive, so an id cannot be reused while cached; the cache is cleared when
        # it holds more entries than the pool has connections (discarded ones pile up).
        self._cursors: dict[int, AsyncCursor[tuple[Any, ...]]] = {}
        # add_narrow statements by (varying columns, edges): few shapes occur in practice.
        self._q_narrow: dict[tuple[frozenset[str], bool], str] = {}
        self._q_fail = {f: self._sql.fail(fenced=f) for f in (False, True)}
        self._q_complete_many = self._sql.complete_many

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        """The connection pool (the caller's own, or ours: opened on first use)."""
        return self._pool

    def get_pool(self) -> AsyncConnectionPool[Any]:
        """The connection pool (see ``pool``)."""
        return self._pool

    async def _open(self) -> None:
        async with self._open_lock:  # sync: with self._open_lock:
            if not self._opened:
                if self._closed:
                    raise BackendError("the PostgreSQL backend is closed")
                await self._first_connect()
                with translate_errors():
                    # wait=True: the first request must not find the pool empty, which would
                    # make it grow a second connection at once.
                    await self._pool.open(wait=True, timeout=self._pool.timeout)
                self._opened = True

    async def _first_connect(self) -> None:
        """Connect once, directly, so a wrong password, a missing database or a stopped
        server fails at once with the server's own reason (the pool would retry for its
        whole timeout and then report only "pool initialization incomplete")."""
        settings = self.settings
        try:
            conn = await AsyncConnection.connect(
                settings.conninfo, **first_connect_kwargs(settings)
            )
        except psycopg.Error as exc:
            raise connect_failure(exc, settings.conninfo) from None
        await conn.close()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[AsyncConnection[Any]]:
        if not self._opened:
            await self._open()
        with translate_errors():
            conn = await self._checked_out()
            try:
                async with conn:  # commit/rollback on exit, as the pool's connection() does
                    yield conn
            finally:
                await self._pool.putconn(conn)

    async def _checked_out(self) -> AsyncConnection[Any]:
        """A pooled connection the server has not dropped. One it terminated (a restart,
        pg_terminate_backend, a failover) would fail the caller's first statement; it is
        told apart without a round trip (an idle connection with input waiting holds the
        server's goodbye) and discarded. (psycopg_pool's ``check=`` costs a round trip per
        checkout and, measured with connections killed every second, made checkouts wait
        out the pool timeout.)"""
        for _ in range(self._pool.max_size + 1):
            conn: AsyncConnection[Any] = await self._pool.getconn()
            if not _dropped(conn):
                return conn
            with contextlib.suppress(psycopg.Error):
                await conn.close()
            await self._pool.putconn(conn)  # a closed connection is discarded and replaced
        last: AsyncConnection[Any] = await self._pool.getconn()
        return last

    async def _all(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        async with self._conn() as conn:
            cur = await _execute(conn, query, params)
            return await cur.fetchall()

    async def _one(self, query: str, params: dict[str, Any]) -> tuple[Any, ...]:
        rows = await self._all(query, params)
        return rows[0]

    async def _run(self, query: str, params: dict[str, Any]) -> int:
        async with self._conn() as conn:
            cur = await _execute(conn, query, params)
            return cur.rowcount

    async def _pair(
        self, first: str, second: str, params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """Run two statements in one transaction: the second sees what the first waited for
        (a new snapshot) and guards itself in SQL, so it runs whatever the first did.
        Returns the first statement's row. (Sequential: psycopg's pipeline mode measured
        slower here than the extra round trips.)"""
        async with self._conn() as conn, conn.transaction():
            cur = await _execute(conn, first, params)
            row = await cur.fetchone()
            await _execute(conn, second, params)
            return row

    async def close(self) -> None:
        self._closed = True
        listeners, self._listeners = self._listeners, {}
        for listener in listeners.values():
            with contextlib.suppress(psycopg.Error):
                await listener.close()
        if self._owns_pool and self._opened:
            await self._pool.close()
            self._opened = False

    async def migrate(self) -> list[str]:
        async with self._conn() as conn:
            if not conn.autocommit and conn.info.transaction_status != 0:
                await conn.commit()
            schema = self.schema
            return await M.migrate_async(conn, schema)  # sync: return M.migrate_sync(conn, schema)

    # -- enqueue ---------------------------------------------------------------------------------
    async def add_jobs(
        self, jobs: Sequence[NewJob], **options: Unpack[T.AddOptions]
    ) -> list[T.AddedJob]:
        if not jobs:
            return []
        db, unique = options.get("db"), options.get("unique")
        if unique is not None and any(u is not None for u in unique):
            return await self._add_unique(jobs, unique, db)
        # One job without prerequisite ids (the usual add_job): the short VALUES statement.
        one = single_params(jobs[0], self.channel) if len(jobs) == 1 else None
        if one is not None and db is None:
            return await self._add_one_pooled(one)
        plan = None if one is not None else plan_add(jobs)
        if db is None:
            async with self._conn() as conn:
                if one is not None:
                    return await self._add_one(conn, one)
                return await self._add(conn, plan, copy=True)
        conn = db.connection if isinstance(db, AsyncCursor) else db
        if not isinstance(conn, AsyncConnection):
            raise InvalidJobError(
                f"db must be a psycopg AsyncConnection or AsyncCursor, got {type(db).__name__}"
            )
        with translate_errors():
            if one is not None:
                return await self._add_one(conn, one)
            return await self._add(conn, plan)

    async def _add_unique(
        self, jobs: Sequence[NewJob], unique: Sequence[UniqueSpec | None], db: Any
    ) -> list[T.AddedJob]:
        """add_jobs with unique keys: lock the keys, look their holders up, insert the rest
        through the usual statements and record their keys — in one transaction (a savepoint
        inside a caller's), so two adds of one key cannot both insert."""
        if db is None:
            async with self._conn() as conn, conn.transaction():
                return await self._add_unique_on(conn, jobs, unique)
        conn = db.connection if isinstance(db, AsyncCursor) else db
        if not isinstance(conn, AsyncConnection):
            raise InvalidJobError(
                f"db must be a psycopg AsyncConnection or AsyncCursor, got {type(db).__name__}"
            )
        with translate_errors():
            async with conn.transaction():
                return await self._add_unique_on(conn, jobs, unique)

    async def _add_unique_on(
        self,
        conn: AsyncConnection[Any],
        jobs: Sequence[NewJob],
        unique: Sequence[UniqueSpec | None],
    ) -> list[T.AddedJob]:
        keys = sorted({u.key for u in unique if u is not None})
        await _execute(conn, self._sql.unique_lock, {"ns": self._unique_lock_ns, "keys": keys})
        cur = await _execute(conn, self._sql.unique_holders, {"keys": keys})
        holders: dict[str, int] = {k: int(i) for k, i in await cur.fetchall()}
        batch = unique_batch(jobs, unique, holders)
        if batch.jobs:
            one = single_params(batch.jobs[0], self.channel) if len(batch.jobs) == 1 else None
            if one is not None:
                added = await self._add_one(conn, one)
            else:
                added = await self._add(conn, plan_add(batch.jobs))
        else:
            added = []
        params = batch.unique_params(added)
        if params["ids"]:
            await _execute(conn, self._sql.set_unique, params)
        return batch.results(added)

    def _add_one_query(self, params: dict[str, Any]) -> str:
        # Keyed by the parameter names in order (single_params adds them in a fixed order).
        key = tuple(params)
        query = self._q_add_one.get(key)
        if query is None:
            if len(self._q_add_one) >= 64:  # unusual variety: keep the cache bounded
                self._q_add_one.clear()
            given = ONE_OPTIONAL.intersection(params)
            query = self._q_add_one[key] = self._sql.add_one_with(given)
        return query

    async def _add_one_pooled(self, params: dict[str, Any]) -> list[T.AddedJob]:
        """The usual ``add_job``: one statement on a pooled connection, taken and returned
        directly (the layers of ``_conn`` and a new cursor cost a tenth of the whole call)."""
        if not self._opened:
            await self._open()
        pool = self._pool
        try:  # translate_errors inline: this is the hottest path
            conn = await pool.getconn()
            try:
                cur = self._cursor_for(conn)
                result = await self._add_one(conn, params, cur)
                if not conn.autocommit:  # a caller's pool may hand out transactional ones
                    await conn.commit()
                return result
            except BaseException:
                if not conn.autocommit and not conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        await conn.rollback()
                raise
            finally:
                await pool.putconn(conn)
        except psycopg.Error as exc:
            raise _translated(exc) from exc

    def _cursor_for(self, conn: AsyncConnection[Any]) -> AsyncCursor[tuple[Any, ...]]:
        """The reusable cursor of a pooled connection, for the hot statements (a new cursor
        per call copies the connection's adapters: a visible share of a claim's client CPU)."""
        cur = self._cursors.get(id(conn))
        if cur is None or cur.connection is not conn:
            if len(self._cursors) > self._pool.max_size:
                self._cursors.clear()
            cur = self._cursors[id(conn)] = conn.cursor(row_factory=tuple_row)
            _with_loader(conn, cur)
        return cur

    async def _add_one(
        self,
        conn: AsyncConnection[Any],
        params: dict[str, Any],
        cur: AsyncCursor[tuple[Any, ...]] | None = None,
    ) -> list[T.AddedJob]:
        if cur is None:
            cur = await _execute(conn, self._add_one_query(params), params)
        else:
            await cur.execute(self._add_one_query(params), params)
        row = await cur.fetchone()
        assert row is not None
        job_id = row[0]
        if job_id is None:  # lost a race for the idempotency key: it is committed now
            cur = await _execute(conn, self._sql.ids_by_keys, {"keys": [params["idem"]]})
            job_id = dict(await cur.fetchall())[params["idem"]]
        return [T.AddedJob(int(job_id), bool(row[1]))]

    async def _add(
        self, conn: AsyncConnection[Any], plan: Any, *, copy: bool = False
    ) -> list[T.AddedJob]:
        if copy and plan.copyable:
            return await self._add_copy(conn, plan)
        if not plan.has_refs:
            return await self._add_write(conn, plan)
        # Placeholders: allocate ids, resolve, write — atomically (a savepoint inside a
        # caller's transaction).
        async with conn.transaction():
            cur = await _execute(conn, self._sql.allocate_ids, {"n": len(plan.jobs)})
            row = await cur.fetchone()
            allocated: list[int] = list(row[0]) if row else []
            existing: dict[str, int] = {}
            if plan.keys:
                cur = await _execute(conn, self._sql.ids_by_keys, {"keys": plan.keys})
                existing = {k: i for k, i in await cur.fetchall()}
            new = plan.resolve(allocated, existing)
            results = await self._add_write(conn, plan)
            for i in new:
                if not results[i].created:
                    # A concurrent insert took this idempotency key after we looked:
                    # placeholders pointing at it would be wrong, so undo and report.
                    raise BackendError(
                        "a concurrent add_jobs inserted the same idempotency key; retry"
                    )
            return results

    async def _add_copy(self, conn: AsyncConnection[Any], plan: Any) -> list[T.AddedJob]:
        """A large placeholder batch on a pooled connection (not a caller's ``db=``): ids
        first, then COPY of the jobs, their ``added`` events and their edges, and the
        NOTIFY, in one transaction."""
        async with conn.transaction():
            cur = await _execute(conn, self._sql.allocate_ids_now, {"n": len(plan.jobs)})
            row = await cur.fetchone()
            assert row is not None
            ids: list[int] = list(row[0])
            plan.resolve(ids, {})
            # Each table's data is built while the server still works on the previous COPY.
            columns, data = plan.copy_jobs(row[1])
            async with cur.copy(self._sql.copy_into("job_queue", columns)) as copy:
                for block in copy_blocks(data):
                    await copy.write(block)
                events = plan.copy_events()
            event_columns = ("job_id", "event_type", "metadata")
            async with cur.copy(self._sql.copy_into("job_events", event_columns)) as copy:
                for block in copy_blocks(events):
                    await copy.write(block)
                edges = plan.copy_edges()
            if edges[0]:
                edge_columns = ("prerequisite_id", "job_id")
                async with cur.copy(self._sql.copy_into("job_dependencies", edge_columns)) as copy:
                    for block in copy_blocks(edges):
                        await copy.write(block)
            await cur.execute(self._sql.notify, {"channel": self.channel})
        return plan.results(ids, None)  # type: ignore[no-any-return]

    def _narrow_query(self, varying: frozenset[str], edges: bool) -> str:
        query = self._q_narrow.get((varying, edges))
        if query is None:
            if len(self._q_narrow) >= 64:  # unusual variety: keep the cache bounded
                self._q_narrow.clear()
            query = self._q_narrow[varying, edges] = self._sql.add_narrow(varying, edges=edges)
        return query

    async def _add_write(self, conn: AsyncConnection[Any], plan: Any) -> list[T.AddedJob]:
        if plan.full:
            query, params = self._q_add[True], plan.params(self.channel)
        else:
            varying, edges, params = plan.narrow_params(self.channel)
            query = self._narrow_query(varying, edges)
        cur = await _execute(conn, query, params)
        row = await cur.fetchone()
        assert row is not None
        ids, ok, found = row[0], row[1], row[2]
        if ids is None:  # allocated beforehand
            ids = plan.arrays["id"]
        if not ok:
            missing = sorted(set(plan.prereqs) - set(found or ()))
            raise UnknownPrerequisiteError(unknown_prerequisites_message(missing))
        created = row[4] if plan.full else None
        dead = row[5] if plan.full else None
        if dead:
            # Prerequisites that can never complete: their new dependents are cancelled now
            # (same connection; inside the caller's or our transaction when there is one).
            await _execute(
                conn,
                self._sql.cascade_from_dead,
                {"roots": list(dead), "done": self.done_channel},
            )
        if any(i is None for i in ids):
            # Lost a race for an idempotency key: the winner has committed by now.
            cur = await _execute(conn, self._sql.ids_by_keys, {"keys": plan.keys})
            by_key = {k: i for k, i in await cur.fetchall()}
            ids = [
                i if i is not None else by_key[j.idempotency_key]
                for i, j in zip(ids, plan.jobs, strict=True)
            ]
        return plan.results(ids, created)  # type: ignore[no-any-return]

    # -- read ------------------------------------------------------------------------------------
    async def get_job(self, job_id: int) -> T.JobRecord | None:
        rows = await self._all(self._sql.get_job, {"id": job_id})
        return R.job_from_row(rows[0]) if rows else None

    async def watch_job(self, job_id: int) -> T.JobRecord | None:
        rows = await self._all(self._sql.watch_job, {"id": job_id})
        return R.job_from_row(rows[0]) if rows else None

    async def get_outputs(self, job_ids: Sequence[int]) -> dict[int, Any]:
        if not job_ids:
            return {}
        rows = await self._all(self._sql.get_outputs, {"ids": list(job_ids)})
        return {int(job_id): output for job_id, output in rows}

    async def get_jobs(
        self, filters: JobFilters, limit: int, offset: int, cursor: int | None
    ) -> list[T.JobRecord]:
        where, params = filter_clause(filters)
        use_cursor = bool(cursor)
        params.update(limit=limit, offset=offset, cursor=cursor)
        rows = await self._all(self._sql.get_jobs(where, cursor=use_cursor), params)
        return [R.job_from_row(r) for r in rows]

    async def get_jobs_by_status(
        self, status: T.JobStatus, limit: int, offset: int
    ) -> list[T.JobRecord]:
        rows = await self._all(
            self._sql.list_jobs_by_status,
            {"status": T.JobStatus(status).value, "limit": limit, "offset": offset},
        )
        return [R.job_from_row(r) for r in rows]

    async def get_all_jobs(self, limit: int, offset: int) -> list[T.JobRecord]:
        rows = await self._all(self._sql.list_jobs(""), {"limit": limit, "offset": offset})
        return [R.job_from_row(r) for r in rows]

    async def get_jobs_by_tags(
        self, tags: Sequence[str], mode: T.TagQueryMode, limit: int, offset: int
    ) -> list[T.JobRecord]:
        query = self._sql.list_jobs("AND " + tag_clause(tags, T.TagQueryMode(mode)))
        params = {"f_tags": list(tags), "limit": limit, "offset": offset}
        rows = await self._all(query, params)
        return [R.job_from_row(r) for r in rows]

    async def get_job_events(self, job_id: int) -> list[T.JobEvent]:
        rows = await self._all(self._sql.get_job_events, {"id": job_id})
        return [R.event_from_row(r) for r in rows]

    # -- dashboard reads ---------------------------------------------------------------------
    async def count_jobs(
        self, cap: int, statuses: Sequence[T.JobStatus] | None = None
    ) -> list[T.JobCount]:
        wanted = [T.JobStatus(st).value for st in (statuses or list(T.JobStatus))]
        params = {"statuses": wanted, "cap": cap}
        async with self._conn() as conn, conn.transaction():
            # The plan's cost estimate (many capped index walks) would trigger JIT
            # compilation, which costs far more than the walks themselves.
            await conn.execute("SET LOCAL jit = off")
            cur = await _execute(conn, self._sql._r(Q.COUNT_JOBS), params)
            rows = await cur.fetchall()
        return [
            T.JobCount(
                job_type=t,
                status=T.JobStatus(st),
                count=min(int(n), cap),
                capped=int(n) > cap,
                blocked=int(blocked) if st == T.JobStatus.PENDING.value else 0,
                oldest_created_at=oldest,
            )
            for t, st, n, blocked, oldest in rows
        ]

    async def recent_finished(self, since: datetime, limit: int) -> list[T.FinishedJob]:
        rows = await self._all(self._sql._r(Q.RECENT_FINISHED), {"since": since, "limit": limit})
        return [T.FinishedJob(int(i), t, T.JobStatus(st), at) for i, t, st, at in rows]

    async def search_jobs(
        self, search: T.JobSearch, limit: int, cursor: str | None, scan_limit: int
    ) -> T.JobPage:
        where, params = filter_clause(search.filters)
        by_status = len(search.statuses) == 1
        if search.statuses and not by_status:
            where += " AND j.status = ANY(%(f_statuses)s)"
            params["f_statuses"] = [st.value for st in search.statuses]
        if search.created_gte is not None:
            where += " AND j.created_at >= %(f_created_gte)s"
            params["f_created_gte"] = search.created_gte
        if search.created_lt is not None:
            where += " AND j.created_at < %(f_created_lt)s"
            params["f_created_lt"] = search.created_lt
        if search.error_contains:
            where += " AND strpos(lower(j.error_history -> -1 ->> 'message'), %(f_err)s) > 0"
            params["f_err"] = search.error_contains.lower()
        c_at, c_id = _decode_cursor(cursor)
        params.update(limit=limit, scan=scan_limit, c_id=c_id, c_at=c_at)
        if by_status:
            params["status"] = search.statuses[0].value
        window, page = Q.search_jobs_sql(self._sql, where, by_status=by_status)
        async with self._conn() as conn:
            cur = await _execute(conn, window, params)
            win = await cur.fetchone()
            assert win is not None
            scanned, l_at, l_id = int(win[0]), win[1], win[2]
            jobs: list[T.JobRecord] = []
            if l_id is not None:
                params.update(l_at=l_at, l_id=int(l_id))
                cur = await _execute(conn, page, params)
                jobs = [R.job_from_row(r) for r in await cur.fetchall()]
        if len(jobs) == limit:
            last = jobs[-1]
            nxt: str | None = _encode_cursor(last.created_at, last.id)
        elif int(scanned) >= scan_limit and l_id is not None:
            nxt = _encode_cursor(l_at or _EPOCH, int(l_id))
        else:
            nxt = None
        return T.JobPage(jobs, nxt, int(scanned))

    async def get_jobs_by_ids(self, job_ids: Sequence[int]) -> list[T.JobRecord]:
        if not job_ids:
            return []
        rows = await self._all(self._sql._r(Q.GET_JOBS_BY_IDS), {"ids": list(job_ids)})
        by_id = {r.id: r for r in (R.job_from_row(row) for row in rows)}
        return [by_id[i] for i in dict.fromkeys(job_ids) if i in by_id]

    async def get_dependents(self, job_ids: Sequence[int], limit: int) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        if not job_ids:
            return out
        rows = await self._all(
            self._sql._r(Q.GET_DEPENDENTS), {"ids": list(job_ids), "limit": limit}
        )
        for pre, dep in rows:
            out.setdefault(int(pre), []).append(int(dep))
        return out

    async def get_tag_holders(
        self, tags: Sequence[str], exclude_id: int | None, limit: int
    ) -> list[int]:
        if not tags:
            return []
        params = {"tags": list(tags), "exclude": exclude_id or 0, "limit": limit}
        rows = await self._all(self._sql._r(Q.GET_TAG_HOLDERS), params)
        return [int(r[0]) for r in rows]

    async def get_drain_waiters(self, tags: Sequence[str], limit: int) -> list[int]:
        if not tags:
            return []
        rows = await self._all(
            self._sql._r(Q.GET_DRAIN_WAITERS), {"tags": list(tags), "limit": limit}
        )
        return [int(r[0]) for r in rows]

    async def count_group_processing(self, group_id: str) -> int:
        row = await self._one(self._sql._r(Q.COUNT_GROUP_PROCESSING), {"group": group_id})
        return int(row[0])

    # -- manage ----------------------------------------------------------------------------------
    async def retry_job(self, job_id: int) -> bool:
        row = await self._one(self._sql.retry, {"id": job_id, "channel": self.channel})
        return bool(row[0])

    async def cancel_job(self, job_id: int) -> bool:
        params = {"id": job_id, "roots": [job_id], "done": self.done_channel}
        row = await self._pair(self._sql.cancel, self._sql.cascade_after_cancel, params)
        return bool(row and row[0])

    async def edit_job(self, job_id: int, updates: JobUpdates) -> bool:
        if not updates:
            return False
        return await self._edit("AND j.id = %(id)s", {"id": job_id}, updates) > 0

    async def edit_all_pending_jobs(self, filters: JobFilters, updates: JobUpdates) -> int:
        if not updates:
            return 0
        where, params = filter_clause(filters)
        return await self._edit(where, params, updates)

    async def _edit(self, where: str, params: dict[str, Any], updates: JobUpdates) -> int:
        assignments, values = edit_assignments(updates)
        params.update(values)
        params["meta"] = dump_json(updates.event_metadata(), "edit")
        params["channel"] = self.channel
        row = await self._one(self._sql.edit(assignments, where), params)
        return int(row[0])

    async def cancel_all_upcoming_jobs(self, filters: JobFilters) -> int:
        where, params = filter_clause(filters)
        params["done"] = self.done_channel
        async with self._conn() as conn, conn.transaction():
            cur = await _execute(conn, self._sql.cancel_upcoming(where), params)
            row = await cur.fetchone()
            ids: list[int] = list(row[0]) if row else []
            if ids:
                cascade = {"roots": ids, "done": self.done_channel}
                await _execute(conn, self._sql.cascade_after_cancel, cascade)
            return len(ids)

    async def cleanup_old_jobs(
        self, days_to_keep: int, statuses: Sequence[T.JobStatus], batch_size: int
    ) -> int:
        wanted = [T.JobStatus(s).value for s in statuses]
        params = {"days": days_to_keep, "statuses": wanted, "batch": batch_size}
        row = await self._one(self._sql.cleanup_jobs, params)
        await self._run(self._sql.cleanup_tokens, {"days": days_to_keep})
        return int(row[0])

    async def cleanup_old_job_events(self, days_to_keep: int, batch_size: int) -> int:
        row = await self._one(self._sql.cleanup_events, {"days": days_to_keep, "batch": batch_size})
        return int(row[0])

    async def held_jobs(self, worker_id: str) -> list[T.JobRecord]:
        rows = await self._all(self._sql.held, {"worker": worker_id})
        return [R.job_from_row(r) for r in rows]

    async def find_stuck_jobs(self, max_processing_time_minutes: float) -> list[T.JobRecord]:
        rows = await self._all(
            self._sql.find_stuck,
            {"seconds": float(max_processing_time_minutes) * 60.0, "limit": MAINTENANCE_CHUNK},
        )
        return [R.job_from_row(r) for r in rows]

    async def requeue_jobs(self, jobs: Sequence[tuple[int, int]]) -> int:
        if not jobs:
            return 0
        params = {
            "ids": [i for i, _ in jobs],
            "versions": [v for _, v in jobs],
            "channel": self.channel,
        }
        row = await self._one(self._sql.requeue, params)
        return int(row[0])

    # -- worker side -----------------------------------------------------------------------------
    async def claim_jobs(
        self, worker_id: str, limit: int, **options: Unpack[T.ClaimOptions]
    ) -> list[T.JobRecord]:
        if limit <= 0:
            return []
        job_types, group_concurrency = options.get("job_types"), options.get("group_concurrency")
        typed = job_types is not None
        params: dict[str, Any] = {
            "worker": worker_id,
            "lease": options["lease"],
            "types": self._types_literal(job_types) if job_types is not None else None,
            "channel": self.channel,  # the capped claim's promotion of due jobs wakes workers
        }
        async with self._conn() as conn:
            if group_concurrency is None:
                params["limit"] = limit
                query = self._claim_query(typed, limit)
                if self._owns_pool:  # our connections carry the planner settings already
                    cur = self._cursor_for(conn)
                    await cur.execute(query, params, prepare=True, binary=True)
                    return await self._claimed(conn, await cur.fetchall())
                async with conn.transaction():
                    await _execute(conn, CLAIM_PLANNER_SETTINGS)
                    cur = await _execute(conn, query, params, hot=True, binary=True)
                    return await self._claimed(conn, await cur.fetchall())
            try:
                async with conn.transaction():
                    if not self._owns_pool:
                        await _execute(conn, CLAIM_PLANNER_SETTINGS)
                    return await self._claim_grouped(conn, params, limit, group_concurrency)
            except pg_errors.DeadlockDetected:
                return []  # two claimers met in opposite group order; the next poll retries

    async def _claimed(
        self, conn: AsyncConnection[Any], rows: list[tuple[Any, ...]]
    ) -> list[T.JobRecord]:
        """The jobs of a claim's rows (Statements.claim); promotes due delayed jobs when the
        claim reported some left beyond the ones it took."""
        if rows[0][-1]:
            await _execute(conn, self._sql.promote, {"channel": self.channel})
        if rows[0][0] is None:
            return []
        return _in_claim_order([r[:-1] for r in rows])

    def _types_literal(self, job_types: Sequence[str]) -> str:
        """The claim's job types as an array literal, each type once (the typed claim scans
        per type, see Statements.claim); a processor asks with the same types every time."""
        key = tuple(job_types)
        literal = self._q_types.get(key)
        if literal is None:
            if len(self._q_types) >= 64:
                self._q_types.clear()
            literal = self._q_types[key] = pg_text_array(list(dict.fromkeys(key))) or "{}"
        return literal

    def _claim_query(self, typed: bool, limit: int) -> str:
        """The claim with its LIMIT written in. With a parameter there, the generic plan of
        the prepared claim is costed for an unknown limit, looks dearer than a custom plan,
        and PostgreSQL may plan every claim anew (measured: a third of the claim's server
        CPU on 100k pending jobs); with a constant it keeps the one generic plan."""
        if limit > _CLAIM_LITERAL_LIMIT_MAX:  # unusual batch sizes: not one statement each
            return self._q_claim[typed]
        key = (typed, limit)
        query = self._q_claim_limit.get(key)
        if query is None:  # at most 2 x _CLAIM_LITERAL_LIMIT_MAX of them
            query = self._q_claim[typed].replace("LIMIT %(limit)s", f"LIMIT {int(limit)}")
            self._q_claim_limit[key] = query
        return query

    async def _claim_grouped(
        self, conn: AsyncConnection[Any], params: dict[str, Any], limit: int, cap: int
    ) -> list[T.JobRecord]:
        """Lock candidates, then (per group, under an advisory lock, in a new snapshot)
        count processing jobs so concurrent claimers never exceed ``cap``."""
        typed = params["types"] is not None
        chosen: list[int] = []
        seen: list[int] = []
        full: set[str] = set()
        active: dict[str, int] = {}
        for _ in range(_ACTIVE_GROUP_LOCK_TRIES):
            want = limit - len(chosen)
            fetch = want * 2 + 8
            cur = await _execute(
                conn,
                self._q_candidates[typed],
                {**params, "limit": fetch, "cap": cap, "full": sorted(full), "seen": seen},
            )
            cands = await cur.fetchall()
            new_groups = sorted({g for _, g in cands if g is not None and g not in active})
            if new_groups:
                await _execute(
                    conn, self._sql.lock_groups, {"ns": self._group_lock_ns, "groups": new_groups}
                )
                cur = await _execute(conn, self._sql.count_active_groups, {"groups": new_groups})
                counts = dict(await cur.fetchall())
                for g in new_groups:
                    active[g] = int(counts.get(g, 0))
            for job_id, group in cands:
                seen.append(job_id)
                if len(chosen) >= limit:
                    break
                if group is None:
                    chosen.append(job_id)
                elif active[group] < cap:
                    chosen.append(job_id)
                    active[group] += 1
                if group is not None and active[group] >= cap:
                    full.add(group)
            if len(chosen) >= limit or len(cands) < fetch:
                break
        if not chosen:
            return []
        cur = await _execute(conn, self._sql.claim_ids, {**params, "ids": chosen}, binary=True)
        return _in_claim_order(await cur.fetchall())

    async def complete_job(
        self, job_id: int, worker_id: str, lock_version: int, output: Any = KEEP
    ) -> bool:
        keep = output is KEEP
        params = {
            "id": job_id,
            "worker": worker_id,
            "version": lock_version,
            "keep": keep,
            "output": None if keep else dump_json(output, "output"),
            "channel": self.channel,
            "done": self.done_channel,
        }
        row = await self._one(self._sql.complete, params)
        return bool(row[0])

    async def complete_jobs(self, items: Sequence[tuple[int, str, int, Any]]) -> list[bool]:
        """Every item's fenced completion in one call (one round trip, one transaction).
        Outputs are checked first: a bad one raises before anything is written. Items go in
        id order (rows are locked in that order, as by other multi-row writers) and as array
        literals (psycopg dumps list parameters element by element in Python)."""
        if not items:
            return []
        order = sorted(range(len(items)), key=lambda i: items[i][0])
        ordered = [items[i] for i in order]
        params = {
            "ids": pg_int_array([item[0] for item in ordered]),
            "workers": pg_nullable_text_array([item[1] for item in ordered]),
            "versions": pg_int_array([item[2] for item in ordered]),
            "keep": pg_bool_array([item[3] is KEEP for item in ordered]),
            "outputs": pg_nullable_text_array(
                [None if out is KEEP else dump_json(out, "output") for _, _, _, out in ordered]
            ),
            "channel": self.channel,
            "done": self.done_channel,
        }
        async with self._conn() as conn:
            cur = self._cursor_for(conn)
            await cur.execute(self._q_complete_many, params, prepare=True)
            row = await cur.fetchone()
        assert row is not None
        result = [False] * len(items)
        for position in row[0] or ():
            result[order[position - 1]] = True
        return result

    async def fail_job(
        self, job_id: int, worker_id: str | None, lock_version: int, plan: FailurePlan
    ) -> T.FailOutcome:
        delay = plan.retry_delay_seconds
        params = {
            "id": job_id,
            "worker": worker_id,
            "version": lock_version,
            "message": plan.message,
            "reason": plan.reason.value if plan.reason is not None else None,
            "entry": plan.error_entry_json,
            "delay": None if delay is None else timedelta(seconds=delay),
            "dlq": plan.dead_letter_job_type,
            "envelope": plan.dead_letter_payload_json,
            "dl_attempts": DEAD_LETTER_MAX_ATTEMPTS,
            "dl_priority": DEFAULT_PRIORITY,
            "channel": self.channel,
            "done": self.done_channel,
            "roots": [job_id],
        }
        # The cascade runs only if this transaction made the failure terminal (SQL guard).
        query = self._q_fail[worker_id is not None]
        row = await self._pair(query, self._sql.cascade_after_fail, params)
        if row is None:
            return T.FailOutcome(applied=False, will_retry=False)
        return T.FailOutcome(applied=True, will_retry=bool(row[0]), dead_letter_job_id=row[1])

    async def wait_job(
        self, job_id: int, worker_id: str, lock_version: int, **park: Unpack[T.ParkOptions]
    ) -> bool:
        params = {
            "id": job_id,
            "worker": worker_id,
            "version": lock_version,
            "until": park["wait_until"],
            "token": park["token_id"],
            "step_data": dump_json(park["step_data"], "step_data"),
            "channel": self.channel,  # idle workers re-arm their timers (wait_for_work)
        }
        row = await self._one(self._sql.wait, params)
        return bool(row[0])

    async def prolong_job(
        self, job_id: int, worker_id: str, lock_version: int, lease: timedelta
    ) -> bool:
        params = {"id": job_id, "worker": worker_id, "version": lock_version, "lease": lease}
        row = await self._one(self._sql.prolong, params)
        return bool(row[0])

    async def heartbeat(self, worker_id: str, job_ids: Sequence[int], lease: timedelta) -> int:
        if not job_ids:
            return 0
        params = {"ids": list(job_ids), "worker": worker_id, "lease": lease}
        return await self._run(self._sql.heartbeat, params)

    async def set_progress(
        self, job_id: int, worker_id: str, lock_version: int, progress: int
    ) -> bool:
        params = {"id": job_id, "worker": worker_id, "version": lock_version}
        return await self._run(self._sql.set_progress, {**params, "progress": progress}) > 0

    async def set_output(
        self, job_id: int, worker_id: str, lock_version: int, output_json: str
    ) -> bool:
        params = {"id": job_id, "worker": worker_id, "version": lock_version}
        return await self._run(self._sql.set_output, {**params, "output": output_json}) > 0

    async def set_step_data(
        self, job_id: int, worker_id: str, lock_version: int, step_data: dict[str, Any]
    ) -> bool:
        params = {
            "id": job_id,
            "worker": worker_id,
            "version": lock_version,
            "step_data": dump_json(step_data, "step_data"),
        }
        return await self._run(self._sql.set_step_data, params) > 0

    async def set_pending_reason_for_type(self, job_type: str, reason: str) -> None:
        await self._run(self._sql.set_pending_reason, {"job_type": job_type, "reason": reason})

    async def wait_for_work(self, timeout: float, worker_id: str | None = None) -> bool:
        """Wait for a NOTIFY on this queue's channel (new, newly unblocked, retried or parked
        jobs) for up to ``timeout`` seconds, or until the earliest not-yet-due job (future
        run_at, retry or wait time) comes due; True if woken by either. Each waiter (see
        ``current_waiter``) listens on its own connection; its first call returns True at
        once, so nothing notified before it listened is missed."""
        waiter = current_waiter()
        await self._drop_finished_listeners()
        try:
            conn = self._listeners.get(waiter)
            if conn is None or conn.closed:
                self._listeners[waiter] = await self._listen_connection()
                return True
            block, due_first = max(0.0, timeout), False
            if block > 0:
                # Look the due time up only once the channel is quiet: a stream of wake-ups
                # (each followed by a claim) then costs no extra statement. A job that came
                # due during the quiet wait counts too (since: this call's start), one due
                # before the call does not (the caller has seen it: no wake-up loop).
                started = time.monotonic()
                quiet = min(block, 0.05)
                if await _notified(conn, quiet):
                    return True
                block -= quiet
                since = {"since": time.monotonic() - started + 0.01}
                due_in = (await self._one(self._sql.next_due, since))[0] if block > 0 else None
                if due_in is not None and float(due_in) < block:
                    block, due_first = max(0.0, float(due_in)) + 0.001, True
            return await _notified(conn, block) or due_first
        except psycopg.Error as exc:
            listener = self._listeners.pop(waiter, None)
            if listener is not None:
                with contextlib.suppress(psycopg.Error):
                    await listener.close()
            raise BackendError(f"LISTEN connection failed: {exc}") from exc

    async def _drop_finished_listeners(self) -> None:
        """Close the LISTEN connections of waiters that have ended (a stopped processor)."""
        for waiter in [w for w in self._listeners if waiter_finished(w)]:
            listener = self._listeners.pop(waiter)
            with contextlib.suppress(psycopg.Error):
                await listener.close()

    async def listen_finished(self) -> AsyncFinishListener:
        """A dedicated LISTEN connection on the queue's "jobs finished" channel."""
        if self._closed:
            raise BackendError("the PostgreSQL backend is closed")
        kwargs = self.settings.connection_kwargs()
        kwargs["autocommit"] = True
        try:
            conn = await AsyncConnection.connect(self.settings.conninfo, **kwargs)
            await _execute(conn, sql.SQL("LISTEN {}").format(sql.Identifier(self.done_channel)))
        except psycopg.Error as exc:
            raise BackendError(f"LISTEN connection failed: {exc}") from exc
        return _PgFinishListener(conn)

    async def _listen_connection(self) -> AsyncConnection[Any]:
        if self._closed:
            raise BackendError("the PostgreSQL backend is closed")
        kwargs = self.settings.connection_kwargs()
        kwargs["autocommit"] = True
        conn = await AsyncConnection.connect(self.settings.conninfo, **kwargs)
        try:
            await _execute(conn, sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except BaseException:
            await conn.close()
            raise
        return conn

    # -- tokens ----------------------------------------------------------------------------------
    async def create_token(
        self, job_id: int | None, timeout: timedelta | None, tags: T.Tags, holder: T.Holder = None
    ) -> T.WaitpointRecord | None:
        params = {
            "token_id": f"wp_{uuid.uuid4()}",
            "id": job_id,
            "timeout": timeout,
            "tags": pg_text_array(tags) if tags else None,
        }
        if holder is None:
            row = await self._one(self._sql.create_token, params)
        else:
            params["worker"], params["version"] = holder
            row = await self._one(self._sql.create_token_held, params)
        return None if row is None else R.token_from_row(row)

    async def complete_token(self, token_id: str, output_json: str | None) -> bool:
        params = {
            "id": token_id,
            "output": output_json,
            "tokens": [token_id],
            "channel": self.channel,
        }
        row = await self._pair(self._sql.complete_token, self._sql.resume_token_waiters, params)
        return row is not None

    async def get_token(self, token_id: str) -> T.WaitpointRecord | None:
        rows = await self._all(self._sql.get_token, {"id": token_id})
        return R.token_from_row(rows[0]) if rows else None

    async def expire_timed_out_tokens(self) -> int:
        async with self._conn() as conn, conn.transaction():
            cur = await _execute(conn, self._sql.expire_tokens)
            tokens = [r[0] for r in await cur.fetchall()]
            if tokens:
                await _execute(
                    conn,
                    self._sql.resume_token_waiters,
                    {"tokens": tokens, "channel": self.channel},
                )
            return len(tokens)

    # -- cron ------------------------------------------------------------------------------------
    async def add_cron_job(self, schedule: T.CronInput) -> int:
        params = {
            name: getattr(schedule, name)
            for name in (
                "schedule_name", "cron_expression", "job_type", "payload_json", "max_attempts",
                "priority", "timeout_ms", "force_kill_on_timeout", "timezone", "allow_overlap",
                "retry_delay", "retry_backoff", "retry_delay_max", "dead_letter_job_type",
                "next_run_at",
            )
        }  # fmt: skip
        params["tags"] = list(schedule.tags) if schedule.tags else None
        try:
            row = await self._one(self._sql.add_cron, params)
        except InvalidJobError as exc:
            if isinstance(exc.__cause__, pg_errors.UniqueViolation):
                raise CronError(
                    f'Cron schedule with name "{schedule.schedule_name}" already exists'
                ) from None
            raise CronError(str(exc)) from exc
        return int(row[0])

    async def get_cron_job(self, cron_id: int) -> T.CronScheduleRecord | None:
        rows = await self._all(self._sql.cron_select("id = %(id)s"), {"id": cron_id})
        return R.cron_from_row(rows[0]) if rows else None

    async def get_cron_job_by_name(self, name: str) -> T.CronScheduleRecord | None:
        query = self._sql.cron_select("schedule_name = %(name)s")
        rows = await self._all(query, {"name": name})
        return R.cron_from_row(rows[0]) if rows else None

    async def list_cron_jobs(self, status: T.CronStatus | None) -> list[T.CronScheduleRecord]:
        where = "true" if status is None else "status = %(status)s"
        query = self._sql.cron_select(where, "ORDER BY created_at, id")
        params = {"status": None if status is None else T.CronStatus(status).value}
        return [R.cron_from_row(r) for r in await self._all(query, params)]

    async def edit_cron_job(self, cron_id: int, values: dict[str, Any]) -> bool:
        if not values:
            return await self.get_cron_job(cron_id) is not None
        assignments, params = cron_assignments(values)
        params["id"] = cron_id
        return await self._run(self._sql.edit_cron(assignments), params) > 0

    async def set_cron_status(self, cron_id: int, status: T.CronStatus) -> bool:
        params = {"id": cron_id, "status": T.CronStatus(status).value}
        return await self._run(self._sql.set_cron_status, params) > 0

    async def remove_cron_job(self, cron_id: int) -> bool:
        return await self._run(self._sql.remove_cron, {"id": cron_id}) > 0

    async def enqueue_due_cron_jobs(self, next_run: T.NextRunFn) -> int:
        """One transaction per due schedule: lock it (others skip it), enqueue unless its
        last job is still active, advance ``next_run_at`` — so an occurrence is enqueued once."""
        count = 0
        seen: list[int] = []
        async with self._conn() as conn:
            for _ in range(_CRON_MAX_PER_CALL):
                async with conn.transaction():
                    cur = await _execute(conn, self._sql.lock_due_cron, {"seen": seen})
                    row = await cur.fetchone()
                    if row is None:
                        break
                    record, now = R.cron_from_row(row[:-1]), row[-1]
                    seen.append(record.id)
                    cur = await _execute(
                        conn,
                        self._sql.enqueue_cron,
                        {
                            "id": record.id,
                            "next_run_at": next_run(record, now),
                            "channel": self.channel,
                        },
                    )
                    result = await cur.fetchone()
                    if result is not None and result[0] is not None:
                        count += 1
        return count
