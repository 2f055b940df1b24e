"""The field rules of the Rust core's ``RecordSpec`` (``rust/src/py_record.rs``), named once
for the backends that build records with it (a Redis job hash, a PostgreSQL row).

``kind``, for a present value: ``STR`` as it is, ``INT`` a decimal integer, ``TIME``
``extra(value)`` cached per distinct string of one read, ``CALL`` ``extra(value)``, ``TUPLE``
``tuple(extra(value))``, ``FLAG`` ``value == "1"``, ``ENUM`` ``extra[0][value]`` else
``extra[1](value)``. ``absent``, for a missing value (or NULL in a row): ``AS_IS`` the default,
``FACTORY`` the default called, ``REQUIRED`` a ``KeyError`` (a row keeps its ``None``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["AS_IS", "CALL", "ENUM", "FACTORY", "FLAG", "INT", "REQUIRED", "STR", "TIME", "TUPLE"]

STR: Final = 0
INT: Final = 1
TIME: Final = 2
CALL: Final = 3
TUPLE: Final = 4
FLAG: Final = 5
ENUM: Final = 6

AS_IS: Final = 0
FACTORY: Final = 1
REQUIRED: Final = 2
