"""The jobs handed to this process's workers, kept until their engine claims (both twins).

A script that makes jobs ready claims them for the free slots a waiting worker offered and
publishes them on the worker's hand channel (``scripts/lib.lua``: hand-offs). The waiter that
receives them keeps them here; the worker's next ``claim_jobs`` returns them without a round
trip. A handed job can reach the worker twice, by its message and by the hand list its next
claim reads, so every job given to an engine is remembered by (id, lock version) for a while
and never given again; and the ones given since the worker's last claim are named to that
claim (and to ``end_claims``), which then leave them alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from dataqueue.backends.types import JobRecord

__all__ = ["HandOffs", "entries"]

# How many recently given (id, lock version) pairs are remembered: far more than can be in
# flight between a hand-off and the claim that would return it again.
_REMEMBERED = 4096


def entries(jobs: Iterable[JobRecord]) -> str:
    """Jobs as the scripts name hand-offs: comma-separated ``"<id>:<lock_version>"``."""
    return ",".join(f"{j.id}:{j.lock_version}" for j in jobs)


class HandOffs:
    def __init__(self) -> None:
        self._kept: dict[str, list[JobRecord]] = {}  # worker → received, not given yet
        self._since: dict[str, list[JobRecord]] = {}  # worker → given since its last claim
        self._given: dict[tuple[int, int], None] = {}  # insertion-ordered: oldest first
        self._woken: set[str] = set()

    def receive(self, worker_id: str, jobs: Iterable[JobRecord]) -> None:
        """Keep the jobs handed to ``worker_id`` until it claims."""
        kept = self._kept.setdefault(worker_id, [])
        kept.extend(j for j in jobs if (j.id, j.lock_version) not in self._given)

    def wake(self, worker_id: str) -> None:
        """The worker's waiter got a plain wake-up: its next claim asks the store, even with
        handed jobs kept (a hand-off leaves some jobs to claims, see ``hand_off``)."""
        self._woken.add(worker_id)

    def woken(self, worker_id: str) -> bool:
        """Whether a plain wake-up came since the worker's last claim (then forgotten)."""
        if worker_id in self._woken:
            self._woken.discard(worker_id)
            return True
        return False

    def take(self, worker_id: str, limit: int) -> list[JobRecord]:
        """Up to ``limit`` of the jobs kept for ``worker_id``, given to it now."""
        kept = self._kept.get(worker_id)
        if not kept:
            return []
        fresh = [j for j in kept if (j.id, j.lock_version) not in self._given]
        out, kept[:] = fresh[:limit], fresh[limit:]
        return self.given(worker_id, out)

    def started(self, worker_id: str) -> list[JobRecord]:
        """The jobs given to ``worker_id`` since its last claim (which the store's hand list
        still names)."""
        return self._since.get(worker_id, [])

    def claimed(self, worker_id: str, jobs: Iterable[JobRecord]) -> list[JobRecord]:
        """What a claim of ``worker_id`` returned, less what it was given already. The claim
        emptied its hand list."""
        out = self.given(worker_id, jobs)
        self._since.pop(worker_id, None)
        return out

    def given(self, worker_id: str, jobs: Iterable[JobRecord]) -> list[JobRecord]:
        """The jobs among ``jobs`` not given before, remembered as given to ``worker_id``."""
        out = []
        for job in jobs:
            key = (job.id, job.lock_version)
            if key not in self._given:
                self._given[key] = None
                out.append(job)
        while len(self._given) > _REMEMBERED:
            del self._given[next(iter(self._given))]
        if out:
            self._since.setdefault(worker_id, []).extend(out)
        return out

    def drop(self, worker_id: str) -> tuple[list[JobRecord], list[JobRecord]]:
        """``worker_id`` stops: the jobs kept for it and never given, and those given since
        its last claim; forgotten here."""
        kept = [
            j for j in self._kept.pop(worker_id, []) if (j.id, j.lock_version) not in self._given
        ]
        self._woken.discard(worker_id)
        return kept, self._since.pop(worker_id, [])
