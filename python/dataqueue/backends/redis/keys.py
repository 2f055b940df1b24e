"""The Redis key layout of one queue.

Every key starts with ``base = key_prefix + "{" + tag + "}:"`` where the hash tag is derived
from the prefix, so all keys of a queue hash to one Redis Cluster slot and two prefixes are two
independent queues. The Lua scripts receive ``base`` as ``KEYS[1]`` and build the same names
(see ``scripts/lib.lua``); this module is the Python side of that layout.

Layout (suffixes after ``base``)::

    id, evid, cronid          counters (job ids, event ids, cron ids)
    j:<id>                    HASH   job fields (absent field = None; JSON for structured values)
    ev:<id>                   LIST   the job's events, JSON, oldest first
    rd:<id>                   SET    ids of jobs that depend on <id> (reverse edges; kept until
                                     cleanup deletes <id>)
    rdy:<type>                ZSET   ready jobs of a type: ungrouped ones and each group's head
    grdy:<len>:<type>:<group> ZSET   ready jobs of one group and type
    rtypes                    SET    types whose ready set is not empty
    delayed                   ZSET   future run_at / retry time / time wait (score µs)
    leases                    ZSET   processing jobs by lease expiry (µs)
    st:<status>, all          ZSET   ids by status / every id (score = id: newest first)
    type:<type>, tag:<tag>    ZSET   ids by type / by tag (score = id)
    fin:<status>              ZSET   terminal jobs by finish time (cleanup)
    types                     SET    job types, kept by earlier versions (now: cnt's fields)
    cnt                       HASH   <status>:<type> / blocked:<type> → jobs (dashboard counts;
                                     every type ever enqueued has its pending:<type> field)
    idem:<key>                STRING idempotency key → id
    gact                      HASH   group → jobs processing
    dcnt, dbt:<tag>, dwait:<drain>, dj:<drain>   tag-drain counts and waiters
    wake                      pub/sub channel: "a job may be claimable" (not a key); the
                              message is WAKE_READY when the earliest delayed job stayed
                              the same (a waiter keeps its timer), anything else otherwise;
                              published only while ``idle`` exists, and deletes it
    idle                      STRING set by a claim short of its limit and a new wake
                              subscription: some worker relies on wake-ups
    done                      pub/sub channel: "jobs finished" (for wait_for_job; not a key)
    offers                    HASH   worker → what its last claim left free, while it waits:
                                     "<slots>|<lease µs>|<group cap>|<expiry µs>|<types>"
    hand:<worker>             pub/sub channel: jobs claimed for the worker by the script that
                              made them ready (a hand-off): "F" (its offer filled, or some
                              ready job was left to claims) or "S", then a JSON array of hashes
    hl:<worker>               LIST   "<id>:<lock_version>" of the jobs handed to the worker
                                     (its next claim returns those it did not receive)
    wp:<id>, wpto, wpall, jwp:<job>              tokens
    cr:<id>, crname:<name>, crons, crdue          cron schedules
    evidx                     ZSET   job id → time of its oldest event (event cleanup)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WAKE_READY", "Keys", "base_for_prefix", "plain_tag"]

# The wake message of a script that left the earliest delayed job as it was.
WAKE_READY = "r"


def plain_tag(prefix: str) -> str:
    """The hash tag of a plain (brace-free) prefix: ``dq:`` → ``dq``."""
    return prefix.rstrip(":") or prefix


def base_for_prefix(prefix: str) -> str:
    """``dq:`` → ``dq:{dq}:``; a prefix that already carries a ``{tag}`` (``app:{orders}:``,
    see ``config._check_prefix`` for the grammar) is used as is."""
    if "{" in prefix:
        return prefix
    return f"{prefix}{{{plain_tag(prefix)}}}:"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names of one queue."""

    base: str

    @classmethod
    def for_prefix(cls, prefix: str) -> Keys:
        return cls(base_for_prefix(prefix))

    def job(self, job_id: int | str) -> str:
        return f"{self.base}j:{job_id}"

    def events(self, job_id: int | str) -> str:
        return f"{self.base}ev:{job_id}"

    def status(self, status: str) -> str:
        return f"{self.base}st:{status}"

    @property
    def all(self) -> str:
        return f"{self.base}all"

    def job_type(self, job_type: str) -> str:
        return f"{self.base}type:{job_type}"

    def tag(self, tag: str) -> str:
        return f"{self.base}tag:{tag}"

    @property
    def delayed(self) -> str:
        return f"{self.base}delayed"

    @property
    def wake(self) -> str:
        return f"{self.base}wake"

    @property
    def idle(self) -> str:
        return f"{self.base}idle"

    @property
    def done(self) -> str:
        return f"{self.base}done"

    def hand(self, worker_id: str) -> str:
        return f"{self.base}hand:{worker_id}"

    def token(self, token_id: str) -> str:
        return f"{self.base}wp:{token_id}"

    def cron(self, cron_id: int | str) -> str:
        return f"{self.base}cr:{cron_id}"

    def cron_name(self, name: str) -> str:
        return f"{self.base}crname:{name}"

    @property
    def crons(self) -> str:
        return f"{self.base}crons"

    @property
    def cron_due(self) -> str:
        return f"{self.base}crdue"
