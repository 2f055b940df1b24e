"""Typing names newer than Python 3.10: from ``typing``, or from ``typing_extensions`` (a
dependency on 3.10 only)."""

import sys
from collections.abc import Mapping
from typing import Any

if sys.version_info >= (3, 11):
    from typing import Required, Self, Unpack
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Required, Self, Unpack

__all__ = ["Required", "Self", "Unpack", "check_keywords"]


def check_keywords(where: str, given: Mapping[str, Any], typed: Any) -> None:
    """Raise the ``TypeError`` Python raises for a keyword a function does not take, for
    ``**kwargs: Unpack[typed]`` (``typed`` a TypedDict: type checkers see the keys, this
    checks them at run time)."""
    unknown = set(given) - typed.__required_keys__ - typed.__optional_keys__
    if unknown:
        raise TypeError(f"{where}() got unexpected keyword arguments: {sorted(unknown)}")
