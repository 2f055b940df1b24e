"""Type stubs for ``dataqueue._core``, the Rust core of dataqueue.

Every function raises the library's own exceptions from :mod:`dataqueue.errors` on bad input.
"""

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "MAX_DELAY_SECONDS",
    "RecordSpec",
    "batch_dep_ref",
    "plan_batch",
    "resolve_batch_refs",
    "retry_delay_seconds",
    "tags_match",
    "tags_match_many",
]

MAX_DELAY_SECONDS: int
"""Largest retry delay ever returned, in seconds (2**31 - 1)."""

class RecordSpec:
    """Builds instances of a frozen, slotted dataclass from a dict of stored strings.

    ``fields`` holds ``(name, kind, absent, default, extra)`` for every attribute of ``cls``.
    ``kind``: 0 the string, 1 ``int``, 2 ``extra(value)`` cached in ``times`` by string,
    3 ``extra(value)``, 4 ``tuple(extra(value))``, 5 ``value == "1"``, 6 ``extra[0][value]``
    else ``extra[1](value)``. ``absent``: 0 ``default``, 1 ``default()``, 2 ``KeyError``.
    """

    def __init__(self, cls: type, fields: Sequence[tuple[str, int, int, Any, Any]]) -> None: ...
    def build(self, mapping: dict[str, Any], times: dict[str, Any]) -> Any:
        """One instance of ``cls`` from ``mapping``; conversion errors propagate."""
    def build_row(self, row: tuple[Any, ...]) -> Any:
        """One instance of ``cls`` from a row of values in field order (already converted
        by a database driver): ``None`` follows the field's ``absent`` rule (``2``: stays
        ``None``), any other value its ``kind``."""

def batch_dep_ref(index: int) -> int:
    """Encode batch entry ``index`` as the placeholder id ``-(index + 1)``.

    Raises ``DependencyError`` for a negative or non-integer index.
    """

def plan_batch(
    deps: Sequence[Sequence[int]],
    existing_edges: Mapping[int, Sequence[int]] | None = None,
) -> list[int]:
    """Validate a batch's ``depends_on`` ids and return a topological insertion order.

    ``deps[i]`` holds job ``i``'s prerequisites: a placeholder ``-(k + 1)`` for batch entry
    ``k`` (forward references allowed) or a positive existing job id. ``existing_edges`` maps
    existing job ids to their prerequisite ids. Among ready entries the lowest index goes first.

    Raises ``UnknownPrerequisiteError`` (placeholder outside the batch), ``DependencyCycleError``
    (self reference or cycle, naming one cycle) or ``DependencyError`` (malformed input).
    """

def resolve_batch_refs(deps: Sequence[Sequence[int]], ids: Sequence[int]) -> list[list[int]]:
    """Replace each placeholder ``-(k + 1)`` with ``ids[k]``, de-duplicating in order.

    Raises ``UnknownPrerequisiteError`` for a placeholder outside ``ids``.
    """

def tags_match(job_tags: Sequence[str] | None, query: Sequence[str], mode: str) -> bool:
    """Match one job's tags against ``query`` with set semantics.

    ``mode`` is ``all``, ``any``, ``none``, ``exact`` or ``superset`` (the tag-drain rule);
    anything else raises ``InvalidFilterError``.
    """

def tags_match_many(
    tag_lists: Sequence[Sequence[str] | None], query: Sequence[str], mode: str
) -> list[bool]:
    """Match one query against many jobs' tag lists (see :func:`tags_match`)."""

def retry_delay_seconds(
    attempts: int,
    retry_delay: int | None,
    retry_backoff: bool | None,
    retry_delay_max: int | None,
    rand: float | None = None,
) -> float:
    """Seconds to wait before the next attempt (SPEC §5).

    ``rand`` in [0, 1) is the jitter draw; when ``None`` a fresh random value is used.
    Raises ``InvalidJobError`` for negative or non-integer inputs or ``rand`` out of range.
    """
