"""Loads the Lua scripts of ``scripts/`` for a client, in one of two forms.

- A function library (Redis 7+): the constants, ``lib.lua`` and every script as a function of
  (KEYS, ARGV), loaded once with FUNCTION LOAD and called with FCALL. The shared code then
  runs once per server instead of at the start of every call (defining ~100 closures over
  ~100 locals: about a quarter of a single add_job's server CPU).
- Scripts (Redis 6.2, a Redis Cluster client, a user without FUNCTION rights): each script is
  the constants and ``lib.lua`` followed by the script's own file, registered with redis-py's
  ``register_script``: calls go by SHA (EVALSHA) and the client reloads a script by itself when
  the server answers NOSCRIPT (after a restart or SCRIPT FLUSH).

Both forms start each call with ``begin(KEYS)`` (see ``lib.lua``). The library's name and its
functions' names carry a digest of its text, so two versions of dataqueue sharing a server
never replace each other's code.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any, Final

from dataqueue.backends.redis.keys import WAKE_READY
from dataqueue.lifecycle import lua_constants

__all__ = ["SCRIPT_NAMES", "Scripts", "function_name", "library_source", "script_source"]

_DIR: Final = Path(__file__).with_name("scripts")

SCRIPT_NAMES: Final = (
    "add_jobs",
    "cancel",
    "claim",
    "cleanup_events",
    "cleanup_jobs",
    "complete",
    "cron",
    "dash_counts",
    "dash_edges",
    "dash_finished",
    "dash_holders",
    "dash_scan",
    "edit",
    "fail",
    "hand",
    "heartbeat",
    "job_fields",
    "job_hashes",
    "prolong",
    "promote",
    "reclaim",
    "requeue",
    "retry",
    "tokens",
    "wait",
)


def _constants() -> str:
    """The lifecycle constants, then the Redis layout's own."""
    return lua_constants() + f"local WAKE_READY = '{WAKE_READY}'\n"


def _body(name: str) -> str:
    return "-- ---- " + name + ".lua ----\n" + (_DIR / f"{name}.lua").read_text()


@cache
def script_source(name: str) -> str:
    """The full text of one script (EVALSHA form): the lifecycle constants, the shared
    library, then the script."""
    lib = (_DIR / "lib.lua").read_text()
    return _constants() + lib + "\nbegin(KEYS)\n" + _body(name)


@cache
def _library() -> tuple[str, str]:
    """(library name, source) of the function form."""
    parts = [_constants(), (_DIR / "lib.lua").read_text()]
    for name in SCRIPT_NAMES:
        parts.append(
            f"\nredis.register_function('@_{name}', function(KEYS, ARGV)\nbegin(KEYS)\n"
            + _body(name)
            + "\nend)\n"
        )
    text = "".join(parts)
    lib_name = "dataqueue_" + hashlib.sha1(text.encode()).hexdigest()[:16]
    return lib_name, f"#!lua name={lib_name}\n" + text.replace("'@_", f"'{lib_name}_")


def library_source() -> str:
    """The function library (FUNCTION LOAD) holding every script."""
    return _library()[1]


def function_name(name: str) -> str:
    """The library function of script ``name`` (FCALL)."""
    return f"{_library()[0]}_{name}"


class Scripts:
    """The registered scripts of one client (``scripts[name](keys=..., args=...)``)."""

    def __init__(self, client: Any) -> None:
        self._by_name = {name: client.register_script(script_source(name)) for name in SCRIPT_NAMES}

    def __getitem__(self, name: str) -> Any:
        return self._by_name[name]
