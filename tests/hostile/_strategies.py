"""Hypothesis strategies for hostile arguments: strings with NUL, lone surrogates, braces,
quotes, percent signs and control characters; JSON with extreme numbers; integers around and
beyond the 32/64-bit bounds; datetimes at and past the edges, naive and in odd zones; values
of the wrong type, falsy ones especially."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

HOSTILE_CHARS = [
    "a",
    "b",
    "é",
    "\U0001f600",
    "\x00",
    "\ud800",
    "\udfff",
    "%",
    "{",
    "}",
    ":",
    "'",
    '"',
    "\\",
    "\t",
    "\n",
    " ",
    "*",
    "\u2028",
]

#: Strings a person or an attacker might pass.
texts = st.one_of(
    st.text(alphabet=st.sampled_from(HOSTILE_CHARS), max_size=8),
    st.text(max_size=6),
    st.sampled_from(["", "x" * 256, "x" * 255, "\ud800", "a\x00b", "%(id)s", "}{"]),
)

#: Integers near every bound the library documents.
EDGE_INTS = [
    0,
    1,
    -1,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**53 - 1,
    2**53,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
    10**30,
]
ints = st.one_of(st.integers(-3, 5), st.sampled_from(EDGE_INTS), st.integers())

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, -1e300, 1e16, 5e-324, 1.7976931348623157e308, -0.0, 0.1]),
    texts,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=8,
)

_ZONES = [timezone.utc, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
datetimes = st.one_of(
    st.datetimes(timezones=st.sampled_from(_ZONES)),
    st.datetimes(),  # naive
    st.sampled_from(
        [
            datetime.max.replace(tzinfo=timezone.utc),
            datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
            datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
            datetime(2200, 1, 1, tzinfo=timezone.utc),
            datetime(1900, 1, 1, tzinfo=timezone.utc),
            datetime(1899, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
        ]
    ),
)

#: Values of the wrong type for almost any argument (falsy ones included).
wrong = st.sampled_from([0, "", [], {}, (), False, True, 0.0, b"x", object(), {"x"}, 5, -1.5])


def anything(st_right: Any) -> Any:
    """Mostly well-typed (hostile) values, sometimes the wrong type, sometimes None."""
    return st.one_of(st_right, wrong, st.none())


def canonical(value: Any) -> str:
    """JSON text that tells True from 1 and 1.0 from 1 (``==`` does not)."""
    return json.dumps(value, sort_keys=True, allow_nan=True)
