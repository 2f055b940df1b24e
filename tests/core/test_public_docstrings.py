"""Every public name exported from ``dataqueue`` (and its public methods) carries a docstring,
and so do the objects the API hands out: handler contexts, processors and supervisors."""

from __future__ import annotations

import inspect
from typing import Any

import dataqueue
from dataqueue import supervisor, worker
from dataqueue.worker.forcekill import ForceKillContext


def _member_gaps(name: str, cls: type[Any]) -> list[str]:
    missing: list[str] = []
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
        is_member = callable(func) or isinstance(func, property)
        if is_member and not (getattr(func, "__doc__", None) or "").strip():
            missing.append(f"{name}.{attr}")
    return missing


def _undocumented() -> list[str]:
    missing: list[str] = []
    for name in dataqueue.__all__:
        obj = getattr(dataqueue, name)
        if name in {"__version__", "EVENTS"}:
            continue
        if not (getattr(obj, "__doc__", None) or "").strip():
            missing.append(name)
        if inspect.isclass(obj):
            missing += _member_gaps(name, obj)
    return missing


def test_every_public_name_has_a_docstring() -> None:
    assert _undocumented() == []


def test_handed_out_objects_are_documented() -> None:
    classes: list[type[Any]] = [
        worker.JobContext,
        worker.AsyncJobContext,
        worker.Processor,
        worker.AsyncProcessor,
        ForceKillContext,
        supervisor.Supervisor,
        supervisor.AsyncSupervisor,
    ]
    missing: list[str] = []
    for cls in classes:
        if not (cls.__doc__ or "").strip():
            missing.append(cls.__name__)
        for klass in cls.__mro__[:-1]:  # inherited methods count (ABC bases, shared bases)
            if klass.__module__.startswith("dataqueue"):
                missing += _member_gaps(klass.__name__, klass)
    assert sorted(set(missing)) == []
