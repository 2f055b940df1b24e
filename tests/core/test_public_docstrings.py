"""Every public name exported from ``dataqueue`` (and its public methods) carries a docstring."""

from __future__ import annotations

import inspect

import dataqueue


def _undocumented() -> list[str]:
    missing: list[str] = []
    for name in dataqueue.__all__:
        obj = getattr(dataqueue, name)
        if name in {"__version__", "EVENTS"}:
            continue
        if not (getattr(obj, "__doc__", None) or "").strip():
            missing.append(name)
        if not inspect.isclass(obj):
            continue
        for attr, value in vars(obj).items():
            if attr.startswith("_"):
                continue
            func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
            is_member = callable(func) or isinstance(func, property)
            if is_member and not (getattr(func, "__doc__", None) or "").strip():
                missing.append(f"{name}.{attr}")
    return missing


def test_every_public_name_has_a_docstring() -> None:
    assert _undocumented() == []
