"""Task functions: ``@q.task(...)`` turns a function into a job type you enqueue by calling it.

The function's parameters are the payload::

    @q.task(max_attempts=5, retry_on=(TimeoutError,))
    def send_email(to: str, subject: str, body: str = "") -> dict[str, str]:
        ...
        return {"status": "sent"}

    handle = send_email.defer(to="a@example.com", subject="hi")   # type-checked arguments
    print(handle.result(timeout=30))                               # waits for the worker
    send_email.configure(priority=10, run_at=later).defer(to="b@example.com", subject="x")

- Arguments are stored as a JSON object keyed by parameter name. Dataclasses, pydantic models
  (``model_dump(mode="json")``; pydantic is not a dependency) and datetimes are encoded, and
  decoded back from the function's type hints when the job runs; TypedDicts and plain JSON
  types go as they are. Parameters left out use the function's defaults at run time.
- A parameter named ``ctx`` (put it first and annotate it ``JobContext`` / ``AsyncJobContext``
  so type checkers leave it out of ``defer``) receives the job context; it is not payload.
- The job type is ``job_type=`` (or ``name=``) when given, else ``module.qualname`` of the
  function. Name tasks explicitly when their jobs must survive a refactor (a renamed function
  would otherwise leave queued jobs without a handler).
- ``q.tasks`` maps every task's job type to its handler: ``q.create_processor(q.tasks)``, or
  ``dataqueue worker myapp.tasks`` (every task defined in the module).

``JobQueue.task`` gives a :class:`Task` (``defer`` blocks; ``await defer_async`` runs it in a
thread), ``AsyncJobQueue.task`` an :class:`AsyncTask` (``await defer``). Both return handles:
:class:`JobHandle` / :class:`AsyncJobHandle` with ``result(timeout=...)``.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import enum
import functools
import inspect
import sys
import types
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Final,
    Generic,
    ParamSpec,
    TypeAlias,
    TypedDict,
    TypeVar,
    Union,
    cast,
    overload,
)

from dataqueue._typing import Self, Unpack, check_keywords
from dataqueue.errors import ConfigurationError, DependencyError, InvalidJobError
from dataqueue.options import (
    DependsOn,
    JobGroup,
    JobOptions,
    UniqueWhile,
    normalize_job,
    parse_unique,
    positive_number,
)
from dataqueue.records import JobRecord

if TYPE_CHECKING:
    from dataqueue.queue_async import AsyncJobQueue
    from dataqueue.queue_sync import JobQueue
    from dataqueue.worker.context import AsyncJobContext, JobContext

__all__ = [
    "AsyncJobHandle",
    "AsyncTask",
    "AsyncTaskDecorator",
    "ConfigureKwargs",
    "JobHandle",
    "RetryPolicy",
    "Task",
    "TaskDecorator",
    "TaskJobKwargs",
    "TaskKwargs",
    "TaskOptions",
    "TaskRegistry",
    "collect_tasks",
]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

#: Attribute on a handler function carrying its :class:`RetryPolicy` (read by the worker).
RETRY_POLICY_ATTR = "__dataqueue_retry_policy__"

ExceptionTypes = tuple[type[BaseException], ...]


def _exception_types(value: Any, what: str) -> ExceptionTypes:
    if value is None:
        return ()
    items = (value,) if isinstance(value, type) else tuple(value)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ConfigurationError(f"{what} must list exception classes, got {item!r}")
    return items


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Which exceptions retry. ``retry_on`` non-empty: only those retry (others fail for good);
    ``dont_retry_on``: those fail for good at once. ``dataqueue.NonRetryable`` never retries,
    ``dataqueue.Retry`` always asks for its own delay (attempts permitting). Each is a tuple
    of exception classes; ``@q.task(retry=RetryPolicy(...))`` applies one."""

    retry_on: ExceptionTypes = ()
    dont_retry_on: ExceptionTypes = ()

    def __post_init__(self) -> None:
        for name in ("retry_on", "dont_retry_on"):
            object.__setattr__(self, name, _exception_types(getattr(self, name), name))

    def retries(self, exc: BaseException) -> bool:
        """Whether a handler's ``exc`` may retry (attempts permitting) under this policy."""
        if self.dont_retry_on and isinstance(exc, self.dont_retry_on):
            return False
        return not self.retry_on or isinstance(exc, self.retry_on)


#: Retry every exception (attempts permitting): the policy when none is given.
DEFAULT_RETRY_POLICY: Final = RetryPolicy()


@dataclasses.dataclass(frozen=True, slots=True)
class TaskOptions:
    """The enqueue options a task applies to every job it adds (``configure`` overrides):
    the ``add_job`` keywords given, by name (one not given keeps the queue's default)."""

    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def merged(self, **changes: Any) -> TaskOptions:
        given = {k: v for k, v in changes.items() if v is not None}
        return TaskOptions({**self.values, **given})

    def add_job_kwargs(self) -> dict[str, Any]:
        return dict(self.values)

    def check(self, job_type: str) -> None:
        """Raise what ``add_job`` would for these options (at decoration / ``configure``, not
        at the first ``defer``); whether prerequisites exist is checked when adding."""
        values = dict(self.values)
        key, while_, for_ = (
            values.pop(k, None) for k in ("unique_key", "unique_while", "unique_for")
        )
        normalize_job(JobOptions(job_type=job_type, **values))
        if while_ is not None or for_ is not None:
            parse_unique(job_type, "null", key, while_, for_)


def _depends_on(value: Any) -> DependsOn | Mapping[str, Any]:
    """``configure(depends_on=...)`` as ``add_job`` takes it: a ``DependsOn`` or mapping as
    given; a job id, a handle, or a list of them → those ids."""
    if isinstance(value, (DependsOn, Mapping)):
        return value
    if isinstance(value, (int, _HandleBase)) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise DependencyError(
            f"depends_on must be job ids, handles, a DependsOn or a mapping, got {value!r}"
        )
    return DependsOn(job_ids=[v.job_id if isinstance(v, _HandleBase) else v for v in value])


#: ``retry_on`` / ``dont_retry_on``: an exception class or a list of them.
ExceptionClasses: TypeAlias = type[BaseException] | Sequence[type[BaseException]]


class TaskJobKwargs(TypedDict, total=False):
    """Job options both ``q.task(...)`` and ``task.configure(...)`` take; one left out (or
    None) keeps the task's, else the queue's default."""

    max_attempts: int | None
    priority: int | None
    #: Seconds (or a timedelta) an attempt may run.
    timeout: float | timedelta | None
    tags: Sequence[str] | None
    group: JobGroup | str | None
    unique_key: str | None
    unique_while: UniqueWhile | None
    unique_for: timedelta | float | None


class TaskKwargs(TaskJobKwargs, total=False):
    """The keyword options of ``q.task(...)``: the job type (``job_type``, alias ``name``),
    the options of every job the task adds, and its retry policy."""

    job_type: str | None
    name: str | None
    timeout_ms: int | None
    force_kill_on_timeout: bool | None
    retry_delay: int | None
    retry_backoff: bool | None
    retry_delay_max: int | None
    dead_letter_job_type: str | None
    retry_on: ExceptionClasses | None
    dont_retry_on: ExceptionClasses | None
    #: How many times a failed job is retried (``max_attempts = retry + 1``), or a
    #: :class:`RetryPolicy` (instead of ``retry_on`` / ``dont_retry_on``).
    retry: int | RetryPolicy | None


#: What ``configure(depends_on=...)`` takes.
DependsOnSpec: TypeAlias = Union[
    DependsOn,
    Mapping[str, Sequence[Any]],
    int,
    "_HandleBase[Any]",
    Sequence[Union[int, "_HandleBase[Any]"]],
]


class ConfigureKwargs(TaskJobKwargs, total=False):
    """The keyword options of ``task.configure(...)``: options of the jobs it adds."""

    run_at: datetime | None
    #: Prerequisites: job ids or handles (one or a list), a ``DependsOn`` or a mapping.
    depends_on: DependsOnSpec | None
    idempotency_key: str | None


def _timeout_ms(timeout: float | timedelta | None, timeout_ms: int | None) -> int | None:
    if timeout is None:
        return timeout_ms
    if timeout_ms is not None:
        raise ConfigurationError("give timeout= (seconds) or timeout_ms=, not both")
    given = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    seconds = positive_number(given)
    if seconds is None:
        raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return max(1, round(seconds * 1000))


# -- payload encoding ---------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """A JSON-ready form of ``value``: dataclasses → dicts, pydantic models → their JSON
    dump, datetimes/dates → ISO strings, enums → their values, containers recursively;
    anything else unchanged (the queue rejects what JSON cannot hold)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return encode(value.value)
    if isinstance(value, Mapping):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [encode(v) for v in value]
    return value


def decode(value: Any, hint: Any) -> Any:
    """The value of type ``hint`` that :func:`encode` turned into ``value``."""
    if hint is Any or hint is None or value is None:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union or (sys.version_info >= (3, 10) and origin is types.UnionType):
        options = [a for a in args if a is not type(None)]
        return decode(value, options[0]) if len(options) == 1 else value
    if origin is typing.Annotated:
        return decode(value, args[0])
    if origin in (list, Sequence, set, frozenset, tuple) and isinstance(value, list):
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(decode(v, args[0]) for v in value)
            if args and len(args) == len(value):
                return tuple(decode(v, a) for v, a in zip(value, args, strict=True))
            return tuple(value)
        items = [decode(v, args[0]) if args else v for v in value]
        return items if origin in (list, Sequence) else origin(items)
    if origin in (dict, Mapping) and isinstance(value, dict):
        return {k: decode(v, args[1]) for k, v in value.items()} if len(args) == 2 else value
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            hints = _hints(hint)
            known = {f.name for f in dataclasses.fields(hint)}
            return hint(**{k: decode(v, hints.get(k, Any)) for k, v in value.items() if k in known})
        validate = getattr(hint, "model_validate", None)
        if callable(validate):
            return validate(value)
        if issubclass(hint, enum.Enum):
            return hint(value)
        if issubclass(hint, datetime) and isinstance(value, str):
            return datetime.fromisoformat(value)
        if issubclass(hint, date) and isinstance(value, str):
            return date.fromisoformat(value)
    return value


_SEQUENCES: Final = (list, tuple, set, frozenset)


def mismatch(value: Any, hint: Any) -> str | None:
    """Why ``value`` is not a ``hint`` (a path and what was expected), or None when it fits or
    the hint is beyond this check (a TypeVar, a protocol, an unresolved name): ``defer``
    rejects what a type checker would, before anything is written."""
    if hint is Any or hint is object or isinstance(hint, (str, TypeVar, typing.ForwardRef)):
        return None
    if hint is None or hint is type(None):
        return None if value is None else f"expected None, got {value!r}"
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return mismatch(value, args[0])
    if origin is Union or (sys.version_info >= (3, 10) and origin is types.UnionType):
        reasons = [mismatch(value, a) for a in args]
        if None in reasons:
            return None
        return f"expected {_type_name(hint)}, got {value!r}"
    if origin is typing.Literal:
        return None if value in args else f"expected one of {list(args)!r}, got {value!r}"
    if origin is not None:
        return _mismatch_generic(value, origin, args, hint)
    if not isinstance(hint, type):
        return None
    if typing.is_typeddict(hint):
        return _mismatch_typeddict(value, hint)
    if hint is float:
        ok = isinstance(value, (int, float))
    elif hint is complex:
        ok = isinstance(value, (int, float, complex))
    elif isinstance(value, Mapping) and callable(validate := getattr(hint, "model_validate", None)):
        try:  # a pydantic model given as a dict: valid if the model accepts it
            validate(value)
        except Exception as exc:
            return f"not a valid {hint.__name__}: {exc}"
        ok = True
    else:
        try:
            ok = isinstance(value, hint)
        except TypeError:  # e.g. a protocol that is not runtime-checkable
            return None
    return None if ok else f"expected {_type_name(hint)}, got {value!r}"


def _mismatch_generic(value: Any, origin: Any, args: tuple[Any, ...], hint: Any) -> str | None:
    if not isinstance(origin, type):
        return None
    try:
        fits = isinstance(value, origin)
    except TypeError:
        return None
    if not fits:
        return f"expected {_type_name(hint)}, got {value!r}"
    if isinstance(value, Mapping) and len(args) == 2:
        for key, item in value.items():
            why = mismatch(key, args[0]) or mismatch(item, args[1])
            if why is not None:
                return _nested(f"[{key!r}]", why)
        return None
    if isinstance(value, _SEQUENCES) and args:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                return f"expected {len(args)} items, got {value!r}"
            pairs = list(zip(value, args, strict=True))
        else:
            pairs = [(item, args[0]) for item in value]
        for index, (item, item_hint) in enumerate(pairs):
            why = mismatch(item, item_hint)
            if why is not None:
                return _nested(f"[{index}]", why)
    return None


def _mismatch_typeddict(value: Any, hint: Any) -> str | None:
    if not isinstance(value, Mapping):
        return f"expected a {hint.__name__} (a dict), got {value!r}"
    missing = sorted(set(hint.__required_keys__) - set(value))
    if missing:
        return f"{hint.__name__} is missing the key(s) {missing}"
    known = hint.__required_keys__ | hint.__optional_keys__
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        return f"{hint.__name__} has no key(s) {unknown}"
    hints = _hints(hint)
    for key, item in value.items():
        why = mismatch(item, hints.get(key, Any))
        if why is not None:
            return _nested(f"[{key!r}]", why)
    return None


def _nested(where: str, why: str) -> str:
    return f"{where}{why}" if why.startswith("[") else f"{where}: {why}"


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


@functools.lru_cache(maxsize=512)
def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception:
        pass
    # One name does not resolve (e.g. a class local to a function, under ``from __future__
    # import annotations``): resolve the others one by one; those values stay as stored.
    out: dict[str, Any] = {}
    namespace = getattr(obj, "__globals__", None) or vars(sys.modules.get(obj.__module__, sys))
    for name, annotation in getattr(obj, "__annotations__", {}).items():
        try:
            out[name] = typing.get_type_hints(
                _Annotated(name, annotation), namespace, include_extras=True
            )[name]
        except Exception:
            continue
    return out


class _Annotated:
    """One annotation on its own, for ``typing.get_type_hints``."""

    def __init__(self, name: str, annotation: Any) -> None:
        self.__annotations__ = {name: annotation}


def _is_context_annotation(annotation: Any) -> bool:
    from dataqueue.worker.context import AsyncJobContext, JobContext

    return annotation in (JobContext, AsyncJobContext, "JobContext", "AsyncJobContext")


# -- the task -----------------------------------------------------------------------------------


class _TaskBase(Generic[P, R_co]):
    """What both flavours share: the function, its job type, options and payload codec."""

    queue: Any

    def __init__(
        self,
        queue: Any,
        fn: Callable[..., Any],
        job_type: str | None,
        options: TaskOptions,
        policy: RetryPolicy,
    ) -> None:
        self.queue = queue
        if not callable(fn):
            raise ConfigurationError(f"@task needs a function, got {fn!r}")
        self.fn: Callable[..., Any] = fn
        module = getattr(fn, "__module__", None) or "__main__"
        qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
        self.job_type: str = job_type if job_type is not None else f"{module}.{qualname}"
        if not isinstance(self.job_type, str) or not self.job_type:
            raise ConfigurationError(f"job_type must be a non-empty string, got {job_type!r}")
        options.check(self.job_type)
        self.options: TaskOptions = options
        self.policy: RetryPolicy = policy
        self._signature = inspect.signature(fn)
        self._ctx_name: str | None = None
        for index, param in enumerate(self._signature.parameters.values()):
            if param.name == "ctx" or (index == 0 and _is_context_annotation(param.annotation)):
                self._ctx_name = param.name
                break
        self._payload_params = [
            p for p in self._signature.parameters.values() if p.name != self._ctx_name
        ]
        self.is_async: bool = inspect.iscoroutinefunction(fn)
        self.handler: Callable[[Any, Any], Any] = self._make_handler()
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.job_type}>"

    def payload(self, *args: P.args, **kwargs: P.kwargs) -> dict[str, Any]:
        """The payload ``defer(*args, **kwargs)`` would store (arguments checked against the
        function's signature; ``InvalidJobError`` if they do not fit)."""
        params = [p.replace(annotation=inspect.Parameter.empty) for p in self._payload_params]
        try:
            bound = inspect.Signature(params).bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidJobError(f"{self.job_type}: {exc}") from None
        hints = _hints(self.fn)
        out: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = self._signature.parameters[name].kind
            hint = hints.get(name, Any)
            if kind is inspect.Parameter.VAR_KEYWORD:
                out.update({k: self._checked(f"{name}[{k!r}]", v, hint) for k, v in value.items()})
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                out[name] = [self._checked(f"{name}[{i}]", v, hint) for i, v in enumerate(value)]
            else:
                out[name] = self._checked(name, value, hint)
        return out

    def _checked(self, label: str, value: Any, hint: Any) -> Any:
        """``value`` encoded for the payload, once it fits its hint (else ``InvalidJobError``
        naming the argument)."""
        why = mismatch(value, hint)
        if why is not None:
            raise InvalidJobError(f"{self.job_type}: {_nested(f'argument {label!r}', why)}")
        return encode(value)

    def _call_args(self, payload: Any, ctx: Any) -> tuple[list[Any], dict[str, Any]]:
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise InvalidJobError(
                f"{self.job_type}: the payload must be an object of arguments, got {payload!r}"
            )
        hints = _hints(self.fn)
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        rest = dict(payload)
        for param in self._signature.parameters.values():
            if param.name == self._ctx_name:
                if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                    args.append(ctx)
                else:
                    kwargs[param.name] = ctx
                continue
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                args.extend(rest.pop(param.name, []))
                continue
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            if param.name not in rest:
                continue  # the function's default applies
            value = decode(rest.pop(param.name), hints.get(param.name, Any))
            if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(value)
            else:
                kwargs[param.name] = value
        params = self._signature.parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            kwargs.update(rest)
        return args, kwargs

    def _make_handler(self) -> Callable[[Any, Any], Any]:
        fn = self.fn
        call_args = self._call_args

        if self.is_async:

            async def run_async(payload: Any, ctx: Any) -> Any:
                args, kwargs = call_args(payload, ctx)
                return encode(await fn(*args, **kwargs))

            handler: Callable[[Any, Any], Any] = run_async
        else:

            def run_sync(payload: Any, ctx: Any) -> Any:
                args, kwargs = call_args(payload, ctx)
                return encode(fn(*args, **kwargs))

            handler = run_sync
        handler.__name__ = getattr(fn, "__name__", "task")
        # Named as this task's ``handler`` attribute, so pickle finds it by reference
        # (``module.send_email.handler``): force_kill_on_timeout sends it to a child process.
        handler.__module__ = getattr(fn, "__module__", None) or handler.__module__
        handler.__qualname__ = f"{getattr(fn, '__qualname__', handler.__name__)}.handler"
        handler.__doc__ = getattr(fn, "__doc__", None)
        setattr(handler, RETRY_POLICY_ATTR, self.policy)
        return handler

    def decode_result(self, output: Any) -> Any:
        """The stored output as the function's return type (a dataclass back from its dict)."""
        hint = _hints(self.fn).get("return", Any)
        if self.is_async:
            origin = typing.get_origin(hint)
            if origin is not None and origin in (Awaitable, typing.Coroutine):
                hint = typing.get_args(hint)[-1]
        return decode(output, hint)

    def configure(self, **changes: Unpack[ConfigureKwargs]) -> Self:
        """The same task with these options for the jobs it adds (the task itself is
        unchanged): ``send.configure(priority=10, run_at=later).defer(...)``."""
        check_keywords("configure", changes, ConfigureKwargs)
        given: dict[str, Any] = dict(changes)
        timeout = given.pop("timeout", None)
        given["timeout_ms"] = _timeout_ms(timeout, None)
        if given.get("depends_on") is not None:
            given["depends_on"] = _depends_on(given["depends_on"])
        configured = copy.copy(self)
        configured.options = self.options.merged(**given)
        configured.options.check(self.job_type)
        return configured


class _HandleBase(Generic[R_co]):
    """What both handles share: the job's id, its task and queue."""

    _queue: Any

    def __init__(self, queue: Any, task: _TaskBase[Any, R_co], job_id: int) -> None:
        self._queue = queue
        self._task = task
        self.job_id: int = job_id

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._task.job_type} #{self.job_id}>"

    def __int__(self) -> int:
        return self.job_id


class JobHandle(_HandleBase[R_co]):
    """A job added by :meth:`Task.defer` on a blocking queue."""

    _queue: JobQueue

    def result(self, timeout: float | timedelta | None = None) -> R_co:
        """Wait for the job and return what the function returned (decoded to its return
        annotation). Raises ``JobFailedError`` / ``JobCancelledError``, or
        ``ResultTimeoutError`` after ``timeout`` seconds (None: wait for ever)."""
        output = self._queue.wait_for_job(self.job_id, timeout=timeout)
        return cast(R_co, self._task.decode_result(output))

    async def result_async(self, timeout: float | timedelta | None = None) -> R_co:
        """:meth:`result` for async code (the wait runs in a thread)."""
        return await asyncio.to_thread(self.result, timeout)

    def get(self) -> JobRecord | None:
        """The job's current record."""
        return self._queue.get_job(self.job_id)

    def cancel(self) -> bool:
        """Cancel the job if it has not started (see ``cancel_job``)."""
        return self._queue.cancel_job(self.job_id)


class AsyncJobHandle(_HandleBase[R_co]):
    """A job added by :meth:`AsyncTask.defer` on an asyncio queue."""

    _queue: AsyncJobQueue

    async def result(self, timeout: float | timedelta | None = None) -> R_co:
        """Wait for the job and return what the function returned; see :meth:`JobHandle.result`."""
        output = await self._queue.wait_for_job(self.job_id, timeout=timeout)
        return cast(R_co, self._task.decode_result(output))

    async def get(self) -> JobRecord | None:
        """The job's current record."""
        return await self._queue.get_job(self.job_id)

    async def cancel(self) -> bool:
        """Cancel the job if it has not started (see ``cancel_job``)."""
        return await self._queue.cancel_job(self.job_id)


class Task(_TaskBase[P, R_co]):
    """A task of a blocking :class:`~dataqueue.JobQueue`: ``defer`` adds a job."""

    queue: JobQueue

    def defer(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R_co]:
        """Add a job running this function with these arguments; returns its handle."""
        payload = self.payload(*args, **kwargs)
        job_id = self.queue.add_job(self.job_type, payload, **self.options.add_job_kwargs())
        return JobHandle(self.queue, self, job_id)

    async def defer_async(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R_co]:
        """:meth:`defer` for async code (the blocking add runs in a thread)."""
        return await asyncio.to_thread(functools.partial(self.defer, *args, **kwargs))


class AsyncTask(_TaskBase[P, R_co]):
    """A task of an :class:`~dataqueue.AsyncJobQueue`: ``await defer(...)`` adds a job."""

    queue: AsyncJobQueue

    async def defer(self, *args: P.args, **kwargs: P.kwargs) -> AsyncJobHandle[R_co]:
        """Add a job running this function with these arguments; returns its handle."""
        payload = self.payload(*args, **kwargs)
        options = self.options.add_job_kwargs()
        job_id = await self.queue.add_job(self.job_type, payload, **options)
        return AsyncJobHandle(self.queue, self, job_id)

    async def defer_async(self, *args: P.args, **kwargs: P.kwargs) -> AsyncJobHandle[R_co]:
        """The same as :meth:`defer` (named like the blocking queue's)."""
        return await self.defer(*args, **kwargs)


# -- the decorators ---------------------------------------------------------------------------


class _Decorator:
    """What both decorators share: the queue and the options of the tasks they make.

    ``decorator(fn)`` makes ``fn`` a task with these options; ``decorator(**options)`` (the
    ``@q.task(max_attempts=5)`` form) is a decorator with those options instead.
    """

    def __init__(
        self,
        queue: Any,
        job_type: str | None = None,
        options: TaskOptions | None = None,
        policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    ) -> None:
        self._queue = queue
        self._spec = (job_type, TaskOptions() if options is None else options, policy)

    def _make(self, kind: Any, fn: Callable[..., Any] | None, options: TaskKwargs) -> Any:
        """``fn`` as a ``kind`` task (registered with the queue), or a decorator."""
        if options or fn is None:
            configured: Any = type(self)(self._queue, *task_options(options))
            return configured if fn is None else configured(fn)
        task = kind(self._queue, fn, *self._spec)
        self._queue.tasks.add(task)
        return task


class TaskDecorator(_Decorator):
    """``JobQueue.task``: apply it to a function to get a :class:`Task`, or call it with
    options (``TaskKwargs``) to get a decorator with those."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[AsyncJobContext, P], Awaitable[R]], /
    ) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[JobContext, P], R], /) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: None = None, /, **options: Unpack[TaskKwargs]) -> TaskDecorator: ...
    def __call__(
        self, fn: Callable[..., Any] | None = None, /, **options: Unpack[TaskKwargs]
    ) -> Any:
        return self._make(Task, fn, options)


class AsyncTaskDecorator(_Decorator):
    """``AsyncJobQueue.task``: apply it to a function to get an :class:`AsyncTask`, or call
    it with options (``TaskKwargs``) to get a decorator with those."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[AsyncJobContext, P], Awaitable[R]], /
    ) -> AsyncTask[P, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[JobContext, P], R], /) -> AsyncTask[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> AsyncTask[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> AsyncTask[P, R]: ...
    @overload
    def __call__(self, fn: None = None, /, **options: Unpack[TaskKwargs]) -> AsyncTaskDecorator: ...
    def __call__(
        self, fn: Callable[..., Any] | None = None, /, **options: Unpack[TaskKwargs]
    ) -> Any:
        return self._make(AsyncTask, fn, options)


# -- the registry -------------------------------------------------------------------------------


class TaskRegistry(Mapping[str, Callable[[Any, Any], Any]]):
    """Job type → handler of every task of a queue; a processor accepts it as its handlers
    (``q.create_processor(q.tasks)``)."""

    def __init__(self) -> None:
        self._tasks: dict[str, _TaskBase[Any, Any]] = {}

    def add(self, task: _TaskBase[Any, Any]) -> None:
        """Register ``task``; another function under the same job type is an error."""
        current = self._tasks.get(task.job_type)
        if current is not None and current.fn is not task.fn:
            raise ConfigurationError(
                f"two tasks share the job type {task.job_type!r}: {current.fn!r} and {task.fn!r}"
            )
        self._tasks[task.job_type] = task

    def task(self, job_type: str) -> _TaskBase[Any, Any]:
        """The task registered under ``job_type``."""
        return self._tasks[job_type]

    def __getitem__(self, job_type: str) -> Callable[[Any, Any], Any]:
        return self._tasks[job_type].handler

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"<TaskRegistry {sorted(self._tasks)}>"


def collect_tasks(namespace: Any) -> dict[str, Callable[[Any, Any], Any]]:
    """Job type → handler of every task (or task registry) that ``namespace`` (a module)
    holds as an attribute — what ``dataqueue worker myapp.tasks`` runs."""
    out: dict[str, Callable[[Any, Any], Any]] = {}
    for value in list(vars(namespace).values()):
        if isinstance(value, _TaskBase):
            out[value.job_type] = value.handler
        elif isinstance(value, TaskRegistry):
            out.update(value)
    return out


def task_options(options: TaskKwargs) -> tuple[str | None, TaskOptions, RetryPolicy]:
    """Validate ``q.task(...)``'s options: the job type (None: the function's name), the job
    options and the retry policy (``ConfigurationError`` for what cannot be right)."""
    check_keywords("task", options, TaskKwargs)
    given: dict[str, Any] = dict(options)
    job_type, name = given.pop("job_type", None), given.pop("name", None)
    if job_type is not None and name is not None and job_type != name:
        raise ConfigurationError("give job_type= or name=, not both")
    given["timeout_ms"] = _timeout_ms(given.pop("timeout", None), given.get("timeout_ms"))
    retry_on, dont_retry_on = given.pop("retry_on", None), given.pop("dont_retry_on", None)
    policy = retry_policy(retry_on, dont_retry_on)
    retry = given.pop("retry", None)
    if isinstance(retry, RetryPolicy):
        if retry_on is not None or dont_retry_on is not None:
            raise ConfigurationError(
                "give retry=RetryPolicy(...) or retry_on=/dont_retry_on=, not both"
            )
        policy = retry
    elif retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise ConfigurationError(
                f"retry must be a number of retries (int >= 0) or a RetryPolicy, got {retry!r}"
            )
        if given.get("max_attempts") not in (None, retry + 1):
            raise ConfigurationError(
                f"retry={retry} means max_attempts={retry + 1}, "
                f"but max_attempts={given['max_attempts']!r} was given"
            )
        given["max_attempts"] = retry + 1
    return job_type or name, TaskOptions().merged(**given), policy


def retry_policy(
    retry_on: ExceptionClasses | None, dont_retry_on: ExceptionClasses | None
) -> RetryPolicy:
    """Validate ``retry_on`` / ``dont_retry_on`` (an exception class or a list of them)."""
    return RetryPolicy(cast(ExceptionTypes, retry_on), cast(ExceptionTypes, dont_retry_on))
