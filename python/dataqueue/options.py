"""Job options as users write them, and their validated, normalised form (sans-IO).

Both backends receive only the normalised classes defined here (``NewJob``, ``JobFilters``,
``JobUpdates``), so every rule about what input is acceptable lives in this one module.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Literal, TypeAlias, TypedDict, TypeVar

from dataqueue.errors import DependencyError, InvalidFilterError, InvalidJobError
from dataqueue.lifecycle import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY
from dataqueue.records import TagQueryMode

EnumT = TypeVar("EnumT", bound=enum.Enum)

__all__ = [
    "DependsOn",
    "JobFilters",
    "JobGroup",
    "JobOptions",
    "JobSpec",
    "JobUpdates",
    "NewJob",
    "RunAtFilter",
    "TagFilter",
    "UniqueSpec",
    "UniqueWhile",
    "batch_dep_ref",
    "compact_json",
    "dump_json",
    "normalize_job",
]

MAX_NAME_LENGTH: Final = 255
# Integer bounds, one home for both backends: a value outside its bound is rejected up front
# with the argument named, never left to the storage ("bigint out of range", a Lua error).
INT32_MAX: Final = 2**31 - 1
#: Ids, limits, offsets, cursors: PostgreSQL bigint.
INT64_MAX: Final = 2**63 - 1
#: Batch sizes (cleanup): one statement / script run never handles more rows than this.
MAX_BATCH_SIZE: Final = INT32_MAX
#: ``timeout_ms`` and integers inside JSON values: within it a double (Redis's Lua numbers,
#: JavaScript) holds the value exactly, and PostgreSQL's jsonb output of a float can be told
#: from an integer (see ``json_int_or_float``).
MAX_SAFE_INT: Final = 2**53 - 1

_UNSET: Any = object()


def batch_dep_ref(index: int) -> int:
    """Placeholder for "the job at ``index`` in this ``add_jobs`` call" inside ``depends_on``."""
    from dataqueue import _core

    return _core.batch_dep_ref(index)


# json.dumps with options builds a JSONEncoder on every call, and JSONEncoder.encode builds its
# C encoder on every call: a large share of the cost for small payloads. The C encoder is
# built here directly (same arguments as JSONEncoder.encode passes, so the same output; fresh
# per call, so it keeps no state between calls and threads), falling back to the encoder.
_ENCODER: Final = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False)
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_c_encode_string: Any = json.encoder.encode_basestring
_default = _ENCODER.default


def _encode_c(value: Any) -> str:
    return "".join(
        _c_make_encoder({}, _default, _c_encode_string, None, ":", ",", False, False, False)(
            value, 0
        )
    )


def _c_encoder_works() -> bool:
    sample = {"a": [1, 2.5, None, True, 'é\n"x'], "b": {"c": -3}}
    try:
        return _c_make_encoder is not None and _encode_c(sample) == _ENCODER.encode(sample)
    except Exception:
        return False


_encode: Final = _encode_c if _c_encoder_works() else _ENCODER.encode


def compact_json(value: Any) -> str:
    """Compact JSON (no spaces, non-ASCII kept) of a value known to be JSON-able, without the
    checks of ``dump_json``: what the library builds itself (a backend's arguments)."""
    return _encode(value)


# A JSON-escaped NUL: ``\u0000`` preceded by an even number of backslashes.
_ESCAPED_NUL: Final = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# A number token long enough to be outside ±MAX_SAFE_INT (or a long digit run in a string:
# then the slow exact check below decides).
_LONG_DIGITS: Final = re.compile(r"[0-9]{16}")


def _unsafe_int(value: Any) -> Any:
    """The first integer outside ±MAX_SAFE_INT inside a JSON-able value, or None."""
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is int or (isinstance(v, int) and not isinstance(v, bool)):
            if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                return v
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return None


def _no_negative_zero(value: Any) -> Any:
    """``value`` with every -0.0 replaced by 0.0 (the rare path of ``dump_json``)."""
    if isinstance(value, float):
        return 0.0 if value == 0.0 else value
    if isinstance(value, dict):
        return {k: _no_negative_zero(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_negative_zero(v) for v in value]
    return value


def dump_json(value: Any, what: str = "payload", error: type[Exception] = InvalidJobError) -> str:
    """Serialise ``value`` as JSON that both backends store and read back exactly, or raise
    ``error`` (``InvalidJobError`` by default) naming ``what`` was wrong: not serialisable,
    nested too deep, a NUL character or a lone surrogate in a string (PostgreSQL's jsonb and
    UTF-8 cannot hold them), or an integer beyond ±(2**53 - 1)."""
    try:
        text: str = _encode(value)
    except (TypeError, ValueError) as exc:
        raise error(f"{what} is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply to be stored as JSON") from None
    if "-0.0" in text:
        # PostgreSQL's numeric has no negative zero: store 0.0 on both backends alike.
        text = _encode(_no_negative_zero(value))
    if "\\u0000" in text and _ESCAPED_NUL.search(text):
        raise error(f"{what} contains a NUL character (\\x00), which cannot be stored")
    if not text.isascii() and not _utf8_ok(text):
        raise error(f"{what} contains a lone surrogate character, which cannot be stored")
    if _LONG_DIGITS.search(text) is not None:
        big = _unsafe_int(value)
        if big is not None:
            raise error(
                f"{what} contains the integer {big}, outside ±{MAX_SAFE_INT} (the range JSON "
                "numbers keep exactly); store it as a string"
            )
    return text


def dump_payload(value: Any) -> str:
    """``dump_json`` for a job payload."""
    return dump_json(value)


def json_int_or_float(text: str) -> int | float:
    """``parse_int`` for JSON read back from PostgreSQL: jsonb prints a float such as 1e300 as
    its digits, and ``dump_json`` admits no integer beyond ±MAX_SAFE_INT, so such digits were
    a float."""
    value = int(text)
    return value if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else float(text)


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(value: str, what: str, error: type[Exception] = InvalidJobError) -> str:
    """Reject a string the storage cannot hold alike on both backends: a NUL character
    (PostgreSQL text) or a lone surrogate (not encodable as UTF-8)."""
    if "\x00" in value:
        raise error(f"{what} contains a NUL character: {value[:40]!r}")
    if not value.isascii() and not _utf8_ok(value):
        raise error(f"{what} contains a lone surrogate character: {value[:40]!r}")
    return value


def check_int(
    value: Any,
    what: str,
    *,
    minimum: int,
    maximum: int,
    error: type[Exception] = InvalidJobError,
) -> int:
    """An int (not a bool) within [minimum, maximum], else ``error`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{what} must be an integer, got {value!r}")
    if not minimum <= value <= maximum:
        raise error(f"{what} must be between {minimum} and {maximum}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class DependsOn:
    """Prerequisites of a job: ids that must complete, and/or tags that must drain."""

    job_ids: Sequence[int] = ()
    tags: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class JobGroup:
    """A concurrency group; ``tier`` is stored but not interpreted."""

    id: str
    tier: str | None = None


#: ``unique_while`` values: ``"active"`` = while the holder is pending, processing, waiting or
#: failed with a retry scheduled.
UniqueWhile: TypeAlias = Literal["active"]
_UNIQUE_WHILE: Final = ("active",)
#: The options that make a job unique (see :func:`parse_unique`).
UNIQUE_OPTION_NAMES: Final = frozenset({"unique_key", "unique_while", "unique_for"})


@dataclass(frozen=True, slots=True)
class UniqueSpec:
    """A validated uniqueness scope: while a job holding ``key`` is in scope, adding another
    job with the same key returns the holder's id instead (``created=False``). The scope is
    the holder's: active (``while_active``) and/or added less than ``for_seconds`` ago."""

    key: str
    while_active: bool
    for_seconds: float | None


def positive_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number above 0 (a bool is not), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def parse_unique(
    job_type: str, payload_json: str, key: Any, while_: Any, for_: Any
) -> UniqueSpec | None:
    """Validate the unique options of one job (None: not unique). Without ``unique_key`` the
    key is the job type and a hash of the payload, so equal calls collide."""
    if key is None and while_ is None and for_ is None:
        return None
    if while_ is not None and while_ not in _UNIQUE_WHILE:
        raise InvalidJobError(f"unique_while must be one of {list(_UNIQUE_WHILE)}, got {while_!r}")
    seconds: float | None = None
    if for_ is not None:
        seconds = positive_number(for_.total_seconds() if isinstance(for_, timedelta) else for_)
        if seconds is None:
            raise InvalidJobError(
                f"unique_for must be a positive timedelta or number of seconds, got {for_!r}"
            )
    if while_ is None and seconds is None:
        raise InvalidJobError("unique_key needs a scope: unique_while='active' and/or unique_for=")
    if key is None:
        digest = hashlib.sha256(payload_json.encode()).hexdigest()[:32]
        key = f"{job_type}:{digest}"
    else:
        key = _name(key, "unique_key")
    return UniqueSpec(key=key, while_active=while_ is not None, for_seconds=seconds)


@dataclass(slots=True)
class JobOptions:
    """Everything ``add_job`` accepts, as one object (used by ``add_jobs``)."""

    job_type: str
    payload: Any = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    priority: int = DEFAULT_PRIORITY
    run_at: datetime | None = None
    timeout_ms: int | None = None
    force_kill_on_timeout: bool = False
    tags: Sequence[str] | None = None
    idempotency_key: str | None = None
    retry_delay: int | None = None
    retry_backoff: bool | None = None
    retry_delay_max: int | None = None
    dead_letter_job_type: str | None = None
    group: JobGroup | Mapping[str, Any] | str | None = None
    depends_on: DependsOn | Mapping[str, Any] | None = None
    unique_key: str | None = None
    unique_while: UniqueWhile | None = None
    unique_for: timedelta | float | None = None


class _JobSpecRequired(TypedDict):
    job_type: str


class JobSpec(_JobSpecRequired, total=False):
    """An ``add_jobs`` entry as a dict: the keys of :class:`JobOptions` (``job_type``
    required). Type checkers catch a misspelt key in a dict literal."""

    payload: Any
    max_attempts: int
    priority: int
    run_at: datetime | None
    timeout_ms: int | None
    force_kill_on_timeout: bool
    tags: Sequence[str] | None
    idempotency_key: str | None
    retry_delay: int | None
    retry_backoff: bool | None
    retry_delay_max: int | None
    dead_letter_job_type: str | None
    group: JobGroup | Mapping[str, Any] | str | None
    depends_on: DependsOn | Mapping[str, Any] | None
    unique_key: str | None
    unique_while: UniqueWhile | None
    unique_for: timedelta | float | None


JOB_OPTION_NAMES: Final = frozenset(f.name for f in fields(JobOptions))


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated job ready to be written. ``depends_on_job_ids`` may hold batch placeholders
    (negative) until the backend resolves them."""

    job_type: str
    payload_json: str
    max_attempts: int
    priority: int
    run_at: datetime | None
    timeout_ms: int | None
    force_kill_on_timeout: bool
    tags: tuple[str, ...] | None
    idempotency_key: str | None
    retry_delay: int | None
    retry_backoff: bool | None
    retry_delay_max: int | None
    dead_letter_job_type: str | None
    group_id: str | None
    group_tier: str | None
    depends_on_job_ids: tuple[int, ...] | None
    depends_on_tags: tuple[str, ...] | None


# -- field validators -------------------------------------------------------------------------


def _sorted_names(keys: Any) -> list[str]:
    """Unknown keys for a message (a caller's mapping may mix key types)."""
    return sorted(str(k) for k in keys)


def _name(value: Any, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidJobError(f"{what} must be a non-empty string, got {value!r}")
    check_text(value, what)
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidJobError(
            f"{what} is longer than {MAX_NAME_LENGTH} characters: {value[:40]!r}…"
        )
    return value


def _int(
    value: Any,
    what: str,
    *,
    minimum: int | None = None,
    optional: bool = False,
    maximum: int = INT32_MAX,
) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidJobError(f"{what} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidJobError(f"{what} must be >= {minimum}, got {value}")
    if value > maximum or value < -maximum - 1:
        low = -maximum - 1 if minimum is None else minimum
        raise InvalidJobError(f"{what} must be between {low} and {maximum}, got {value}")
    return value


def _bool(value: Any, what: str, *, optional: bool = False) -> bool | None:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise InvalidJobError(f"{what} must be a bool, got {value!r}")
    return value


#: Datetimes a job stores (run_at, wait_until) lie in [MIN_STORED_DATETIME,
#: MAX_STORED_DATETIME). Redis keeps times as microseconds in Lua numbers (doubles), exact
#: only up to 2**53 µs from 1970 (about 1684 to 2255); this rounder range is enforced on both
#: backends alike, so what is stored is what is read back and no stored time can overflow.
MIN_STORED_DATETIME: Final = datetime(1900, 1, 1, tzinfo=timezone.utc)
MAX_STORED_DATETIME: Final = datetime(2200, 1, 1, tzinfo=timezone.utc)


def aware_datetime(value: Any, what: str, error: type[Exception] = InvalidJobError) -> datetime:
    """Datetimes must carry a time zone: a naive one is ambiguous, so it is rejected."""
    if not isinstance(value, datetime):
        raise error(f"{what} must be a datetime, got {value!r}")
    try:
        offset = None if value.tzinfo is None else value.tzinfo.utcoffset(value)
    except Exception as exc:  # a broken tzinfo implementation
        raise error(f"{what} has an invalid time zone: {exc}") from None
    if offset is None:
        raise error(
            f"{what} must be timezone-aware (e.g. datetime.now(timezone.utc)), got naive {value!r}"
        )
    try:
        return value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise error(
            f"{what} is outside the datetime range once converted to UTC: {value!r}"
        ) from None


def stored_datetime(value: Any, what: str, error: type[Exception] = InvalidJobError) -> datetime:
    """``aware_datetime`` for a time the queue stores: also within the storable range."""
    when = aware_datetime(value, what, error)
    if not MIN_STORED_DATETIME <= when < MAX_STORED_DATETIME:
        raise error(
            f"{what} must be from {MIN_STORED_DATETIME.date()} to before "
            f"{MAX_STORED_DATETIME.date()} (UTC), got {value.isoformat()}"
        )
    return when


def _tags(value: Any, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence | set | frozenset):
        raise InvalidJobError(f"{what} must be a list of strings, got {value!r}")
    out: dict[str, None] = {}
    for tag in value:
        _name(tag, f"{what} entry")
        out[tag] = None
    return tuple(out) or None


def _group(value: Any) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, str):
        return _name(value, "group"), None
    kinds = "a JobGroup, mapping or string"
    gid, tier = _fields_of(value, JobGroup, ("id", "tier"), "group", kinds, InvalidJobError)
    return _name(gid, "group id"), _name(tier, "group tier", optional=True)


def _fields_of(
    value: Any, cls: type, names: tuple[str, str], what: str, kinds: str, error: type[Exception]
) -> tuple[Any, Any]:
    """The two fields ``names`` of option ``what`` given as a ``cls`` or as a mapping of them."""
    if isinstance(value, cls):
        return getattr(value, names[0]), getattr(value, names[1])
    if not isinstance(value, Mapping):
        raise error(f"{what} must be {kinds}, got {value!r}")
    unknown = set(value) - set(names)
    if unknown:
        raise error(f"{what} has unknown keys: {_sorted_names(unknown)}")
    return value.get(names[0]), value.get(names[1])


def _depends_on(value: Any) -> tuple[tuple[int, ...] | None, tuple[str, ...] | None]:
    if value is None:
        return None, None
    kinds = "a DependsOn or a mapping"
    ids, tags = _fields_of(
        value, DependsOn, ("job_ids", "tags"), "depends_on", kinds, DependencyError
    )
    ids = () if ids is None else ids
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence | set | frozenset):
        raise DependencyError(f"depends_on.job_ids must be a list of ints, got {ids!r}")
    seen: dict[int, None] = {}
    for job_id in ids:
        if isinstance(job_id, bool) or not isinstance(job_id, int):
            raise DependencyError(f"depends_on.job_ids entries must be ints, got {job_id!r}")
        if job_id == 0:
            raise DependencyError("depends_on.job_ids: 0 is not a job id")
        if not -INT64_MAX - 1 <= job_id <= INT64_MAX:
            raise DependencyError(f"depends_on.job_ids: {job_id} is outside the 64-bit id range")
        seen[job_id] = None
    try:
        norm_tags = _tags(tags, "depends_on.tags")
    except InvalidJobError as exc:
        raise DependencyError(str(exc)) from None
    return tuple(seen) or None, norm_tags


# NewJob is frozen, so its generated __init__ sets each field through object.__setattr__;
# setting the slots directly halves the cost of building one (it is per job in add_jobs).
_new_object: Final = object.__new__


def _slot_setter(name: str) -> Any:
    return NewJob.__dict__[name].__set__


_set_job_type: Final = _slot_setter("job_type")
_set_payload_json: Final = _slot_setter("payload_json")
_set_max_attempts: Final = _slot_setter("max_attempts")
_set_priority: Final = _slot_setter("priority")
_set_run_at: Final = _slot_setter("run_at")
_set_timeout_ms: Final = _slot_setter("timeout_ms")
_set_force_kill_on_timeout: Final = _slot_setter("force_kill_on_timeout")
_set_tags: Final = _slot_setter("tags")
_set_idempotency_key: Final = _slot_setter("idempotency_key")
_set_retry_delay: Final = _slot_setter("retry_delay")
_set_retry_backoff: Final = _slot_setter("retry_backoff")
_set_retry_delay_max: Final = _slot_setter("retry_delay_max")
_set_dead_letter_job_type: Final = _slot_setter("dead_letter_job_type")
_set_group_id: Final = _slot_setter("group_id")
_set_group_tier: Final = _slot_setter("group_tier")
_set_depends_on_job_ids: Final = _slot_setter("depends_on_job_ids")
_set_depends_on_tags: Final = _slot_setter("depends_on_tags")
# _build and _normalize_basic set every field: a field added to NewJob must be added there.
assert len(fields(NewJob)) == 17, "update _build for the new NewJob field"

_DEPENDS_ON_KEYS: Final = frozenset({"job_ids", "tags"})
_ID_MIN: Final = -INT64_MAX - 1


def _depends_on_fast(value: Any) -> tuple[tuple[int, ...] | None, tuple[str, ...] | None]:
    """``_depends_on`` for the usual shape (a dict of non-zero int ids, no tags); anything
    else goes to ``_depends_on``, which validates it and words the errors."""
    if type(value) is dict and value.keys() <= _DEPENDS_ON_KEYS:
        ids = value.get("job_ids", ())
        if value.get("tags") is None and type(ids) in (list, tuple):
            for job_id in ids:
                if type(job_id) is not int or job_id == 0 or not _ID_MIN <= job_id <= INT64_MAX:
                    break
            else:
                if len(ids) > 1:
                    ids = dict.fromkeys(ids)
                return tuple(ids) or None, None
    return _depends_on(value)


def _build(
    job_type: Any,
    payload: Any,
    max_attempts: Any,
    priority: Any,
    run_at: Any,
    timeout_ms: Any,
    force_kill_on_timeout: Any,
    tags: Any,
    idempotency_key: Any,
    retry_delay: Any,
    retry_backoff: Any,
    retry_delay_max: Any,
    dead_letter_job_type: Any,
    group: Any,
    depends_on: Any,
) -> NewJob:
    """Validate the fields of one job (in a fixed order, so the first problem reported is
    always the same one). Values of the usual types are checked inline; any other value goes
    to its field validator, which accepts or rejects it and words the error."""
    group_id, group_tier = (None, None) if group is None else _group(group)
    dep_ids, dep_tags = (None, None) if depends_on is None else _depends_on_fast(depends_on)
    if timeout_ms is not None:
        timeout_ms = _int(timeout_ms, "timeout_ms", minimum=1, optional=True, maximum=MAX_SAFE_INT)
    if (
        type(job_type) is not str
        or not 0 < len(job_type) <= MAX_NAME_LENGTH
        or "\x00" in job_type
        or not job_type.isascii()
    ):
        job_type = _name(job_type, "job_type")
    payload_json = "null" if payload is None else dump_payload(payload)
    if type(max_attempts) is not int or not 1 <= max_attempts <= INT32_MAX:
        max_attempts = _int(max_attempts, "max_attempts", minimum=1)
    if type(priority) is not int or not -INT32_MAX - 1 <= priority <= INT32_MAX:
        priority = _int(priority, "priority")
    if run_at is not None:
        run_at = stored_datetime(run_at, "run_at")
    if force_kill_on_timeout is not False and force_kill_on_timeout is not True:
        force_kill_on_timeout = bool(_bool(force_kill_on_timeout, "force_kill_on_timeout"))
    if tags is not None:
        tags = _tags(tags, "tags")
    if idempotency_key is not None:
        idempotency_key = _name(idempotency_key, "idempotency_key")
    if retry_delay is not None:
        retry_delay = _int(retry_delay, "retry_delay", minimum=0)
    if retry_backoff is not None:
        retry_backoff = _bool(retry_backoff, "retry_backoff")
    if retry_delay_max is not None:
        retry_delay_max = _int(retry_delay_max, "retry_delay_max", minimum=0)
    if dead_letter_job_type is not None:
        dead_letter_job_type = _name(dead_letter_job_type, "dead_letter_job_type")
    new = _new_object(NewJob)
    _set_job_type(new, job_type)
    _set_payload_json(new, payload_json)
    _set_max_attempts(new, max_attempts)
    _set_priority(new, priority)
    _set_run_at(new, run_at)
    _set_timeout_ms(new, timeout_ms)
    _set_force_kill_on_timeout(new, force_kill_on_timeout)
    _set_tags(new, tags)
    _set_idempotency_key(new, idempotency_key)
    _set_retry_delay(new, retry_delay)
    _set_retry_backoff(new, retry_backoff)
    _set_retry_delay_max(new, retry_delay_max)
    _set_dead_letter_job_type(new, dead_letter_job_type)
    _set_group_id(new, group_id)
    _set_group_tier(new, group_tier)
    _set_depends_on_job_ids(new, dep_ids)
    _set_depends_on_tags(new, dep_tags)
    return new


_BASIC_KEYS: Final = frozenset({"job_type", "payload", "depends_on"})


def _normalize_basic(job: dict[str, Any]) -> NewJob:
    """``normalize_job`` of a dict with no other keys than ``_BASIC_KEYS`` (the usual batch
    entry): the same checks in the same order as ``_build``, every other field at its
    default."""
    job_type = job.get("job_type", _UNSET)
    if job_type is _UNSET:
        raise InvalidJobError("job_type is required")
    depends_on = job.get("depends_on")
    dep_ids, dep_tags = (None, None) if depends_on is None else _depends_on_fast(depends_on)
    if (
        type(job_type) is not str
        or not 0 < len(job_type) <= MAX_NAME_LENGTH
        or "\x00" in job_type
        or not job_type.isascii()
    ):
        job_type = _name(job_type, "job_type")
    payload = job.get("payload")
    new = _new_object(NewJob)
    _set_job_type(new, job_type)
    _set_payload_json(new, "null" if payload is None else dump_payload(payload))
    _set_max_attempts(new, DEFAULT_MAX_ATTEMPTS)
    _set_priority(new, DEFAULT_PRIORITY)
    _set_run_at(new, None)
    _set_timeout_ms(new, None)
    _set_force_kill_on_timeout(new, False)
    _set_tags(new, None)
    _set_idempotency_key(new, None)
    _set_retry_delay(new, None)
    _set_retry_backoff(new, None)
    _set_retry_delay_max(new, None)
    _set_dead_letter_job_type(new, None)
    _set_group_id(new, None)
    _set_group_tier(new, None)
    _set_depends_on_job_ids(new, dep_ids)
    _set_depends_on_tags(new, dep_tags)
    return new


#: ``_build``'s options after ``job_type``: the fields of JobOptions with their defaults.
_BUILD_FIELDS: Final = tuple(
    (f.name, f.default)
    for f in fields(JobOptions)
    if f.name != "job_type" and f.name not in UNIQUE_OPTION_NAMES
)


def normalize_job(job: JobOptions | Mapping[str, Any]) -> NewJob:
    """Validate one job's options; raise ``InvalidJobError`` (or a subclass) naming the problem."""
    if type(job) is dict and job.keys() <= _BASIC_KEYS:
        return _normalize_basic(job)
    if isinstance(job, JobOptions):
        return _build(job.job_type, **{name: getattr(job, name) for name, _ in _BUILD_FIELDS})
    if not isinstance(job, Mapping):
        raise InvalidJobError(f"a job must be JobOptions or a mapping, got {type(job).__name__}")
    if not job.keys() <= JOB_OPTION_NAMES:
        unknown = set(job) - JOB_OPTION_NAMES
        raise InvalidJobError(f"unknown job option(s): {_sorted_names(unknown)}")
    get = job.get
    job_type = get("job_type", _UNSET)
    if job_type is _UNSET:
        raise InvalidJobError("job_type is required")
    return _build(job_type, **{name: get(name, default) for name, default in _BUILD_FIELDS})


# -- filters ----------------------------------------------------------------------------------

_RUN_AT_OPS: Final = ("gt", "gte", "lt", "lte", "eq")


@dataclass(frozen=True, slots=True)
class RunAtFilter:
    """``run_at`` comparisons, ANDed; each bound is an aware UTC datetime or None."""

    gt: datetime | None = None
    gte: datetime | None = None
    lt: datetime | None = None
    lte: datetime | None = None
    eq: datetime | None = None

    def items(self) -> list[tuple[str, datetime]]:
        return [(op, v) for op in _RUN_AT_OPS if (v := getattr(self, op)) is not None]


@dataclass(frozen=True, slots=True)
class TagFilter:
    values: tuple[str, ...]
    mode: TagQueryMode = TagQueryMode.ALL


@dataclass(frozen=True, slots=True)
class JobFilters:
    """Validated filters for ``get_jobs`` and the bulk edit/cancel methods."""

    job_type: str | None = None
    priority: int | None = None
    run_at: RunAtFilter | None = None
    tags: TagFilter | None = None

    @classmethod
    def parse(cls, filters: Mapping[str, Any] | JobFilters | None) -> JobFilters:
        """Validate a filters mapping; unknown keys or wrong types raise InvalidFilterError."""
        if filters is None:
            return cls()
        if isinstance(filters, JobFilters):
            # Built by the caller without validation: check it like a mapping.
            filters = {f.name: getattr(filters, f.name) for f in fields(JobFilters)}
        if not isinstance(filters, Mapping):
            raise InvalidFilterError(f"filters must be a mapping, got {filters!r}")
        unknown = set(filters) - {"job_type", "priority", "run_at", "tags"}
        if unknown:
            raise InvalidFilterError(f"unknown filter key(s): {_sorted_names(unknown)}")
        # Only the documented empty forms mean "no filter": an absent key or None, and ""
        # for job_type; a wrong-typed falsy value (0, [], False) is an error, never silently
        # "match everything".
        job_type = filters.get("job_type")
        if job_type == "":
            job_type = None
        elif job_type is not None:
            job_type = _filter_name(job_type, "job_type filter")
        priority = filters.get("priority")
        if priority is not None:
            priority = check_int(
                priority,
                "priority filter",
                minimum=-INT32_MAX - 1,
                maximum=INT32_MAX,
                error=InvalidFilterError,
            )
        return cls(
            job_type,
            priority,
            _parse_run_at(filters.get("run_at")),
            parse_tag_filter(filters.get("tags")),
        )

    @property
    def is_empty(self) -> bool:
        """True when no filter is set (every job matches)."""
        return (
            self.job_type is None
            and self.priority is None
            and self.run_at is None
            and self.tags is None
        )


def _filter_dt(value: Any, what: str) -> datetime:
    # Any aware datetime is a valid bound: both backends compare it exactly.
    return aware_datetime(value, what, InvalidFilterError)


def _filter_name(value: Any, what: str) -> str:
    try:
        return str(_name(value, what))
    except InvalidJobError as exc:
        raise InvalidFilterError(str(exc)) from None


def _parse_run_at(value: Any) -> RunAtFilter | None:
    if value is None:
        return None
    if isinstance(value, RunAtFilter):
        value = {op: getattr(value, op) for op in _RUN_AT_OPS}
    if isinstance(value, datetime):
        return RunAtFilter(eq=_filter_dt(value, "run_at filter"))
    if not isinstance(value, Mapping):
        raise InvalidFilterError(f"run_at filter must be a datetime or a mapping, got {value!r}")
    unknown = set(value) - set(_RUN_AT_OPS)
    if unknown:
        raise InvalidFilterError(f"unknown run_at operator(s): {_sorted_names(unknown)}")
    bounds = {op: _filter_dt(v, f"run_at.{op}") for op, v in value.items() if v is not None}
    return RunAtFilter(**bounds) if bounds else None


def parse_enum(cls: type[EnumT], value: Any, what: str) -> EnumT:
    """``value`` as a member of the string enum ``cls``; ``InvalidFilterError`` naming it."""
    try:
        return cls(value)
    except (ValueError, TypeError):
        names = ", ".join(str(member.value) for member in cls)
        raise InvalidFilterError(f"{what} must be one of {names}; got {value!r}") from None


def parse_tag_mode(mode: Any) -> TagQueryMode:
    return parse_enum(TagQueryMode, mode, "tag mode")


def parse_tag_filter(value: Any) -> TagFilter | None:
    if value is None:
        return None
    if isinstance(value, TagFilter):
        value = {"values": value.values, "mode": value.mode}
    if not isinstance(value, Mapping):
        raise InvalidFilterError(
            f"tags filter must be {{'values': [...], 'mode': ...}}, got {value!r}"
        )
    unknown = set(value) - {"values", "mode"}
    if unknown:
        raise InvalidFilterError(f"unknown tags filter key(s): {_sorted_names(unknown)}")
    mode = parse_tag_mode(value.get("mode", "all"))
    raw = value.get("values")
    try:
        values = _tags(() if raw is None else raw, "tags filter values")
    except InvalidJobError as exc:
        raise InvalidFilterError(str(exc)) from None
    if not values:
        return None  # an empty tag list (with a valid mode) matches everything: no filter
    return TagFilter(values, mode)


# -- edits ------------------------------------------------------------------------------------

EDITABLE_FIELDS: Final = (
    "payload",
    "max_attempts",
    "priority",
    "run_at",
    "timeout_ms",
    "tags",
    "retry_delay",
    "retry_backoff",
    "retry_delay_max",
    "dead_letter_job_type",
)


@dataclass(frozen=True, slots=True)
class JobUpdates:
    """Validated updates. ``values`` holds only the fields given; a None value clears the field
    (``run_at=None`` means now). ``payload`` is stored as JSON text under ``payload_json``."""

    values: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, updates: Mapping[str, Any]) -> JobUpdates:
        unknown = set(updates) - set(EDITABLE_FIELDS)
        if unknown:
            raise InvalidJobError(
                f"cannot edit {sorted(unknown)}; editable fields are {list(EDITABLE_FIELDS)}"
            )
        out: dict[str, Any] = {}
        for key, value in updates.items():
            if key == "payload":
                out["payload_json"] = dump_payload(value)
            elif key == "max_attempts":
                out[key] = _int(value, key, minimum=1)
            elif key == "priority":
                out[key] = _int(value, key)
            elif key == "run_at":
                out[key] = None if value is None else stored_datetime(value, key)
            elif key == "timeout_ms":
                out[key] = _int(value, key, minimum=1, optional=True, maximum=MAX_SAFE_INT)
            elif key == "tags":
                out[key] = _tags(value, key)
            elif key in ("retry_delay", "retry_delay_max"):
                out[key] = _int(value, key, minimum=0, optional=True)
            elif key == "retry_backoff":
                out[key] = _bool(value, key, optional=True)
            else:
                out[key] = _name(value, key, optional=True)
        return cls(out)

    def __bool__(self) -> bool:
        return bool(self.values)

    def event_metadata(self) -> dict[str, Any]:
        """The ``edited`` event's metadata: the fields given, JSON-friendly."""
        meta: dict[str, Any] = {}
        for key, value in self.values.items():
            if key == "payload_json":
                meta["payload"] = json.loads(value)
            elif isinstance(value, datetime):
                meta[key] = value.isoformat()
            elif isinstance(value, tuple):
                meta[key] = list(value)
            else:
                meta[key] = value
        return meta


# -- durations --------------------------------------------------------------------------------

_DURATION_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TOKEN_TIMEOUT: Final = timedelta(days=365)
# ASCII digits only (str.isdigit() also accepts "²", which int() rejects), bounded in length.
_DURATION_RE: Final = re.compile(r"([0-9]{1,12})([smhd])")


def parse_token_timeout(value: str | int | float | timedelta | None) -> timedelta | None:
    """Token timeout: ``"30s"``, ``"10m"``, ``"2h"``, ``"1d"``, seconds or a timedelta (≤ 365 d)."""
    from dataqueue.errors import InvalidTokenError

    if value is None:
        return None
    if isinstance(value, timedelta):
        delta = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        # Compared before building the timedelta, which overflows for huge numbers.
        if not math.isfinite(value) or abs(value) > MAX_TOKEN_TIMEOUT.total_seconds():
            raise InvalidTokenError(
                f"invalid timeout {value!r}: at most {MAX_TOKEN_TIMEOUT.days} days of seconds"
            )
        delta = timedelta(seconds=value)
    elif isinstance(value, str) and (m := _DURATION_RE.fullmatch(value)) is not None:
        delta = timedelta(seconds=int(m[1]) * _DURATION_UNITS[m[2]])
    else:
        raise InvalidTokenError(
            f"invalid timeout {value!r}: use a number followed by s, m, h or d (e.g. '10m')"
        )
    if delta <= timedelta(0):
        raise InvalidTokenError(f"timeout must be positive, got {value!r}")
    if delta > MAX_TOKEN_TIMEOUT:
        raise InvalidTokenError(f"timeout {value!r} is too large: the maximum is 365 days")
    return delta
