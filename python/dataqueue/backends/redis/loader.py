"""Loads the Lua scripts of ``scripts/`` and registers them with a client.

Each script is ``lib.lua`` followed by the script's own file, registered with redis-py's
``register_script``: calls go by SHA (EVALSHA) and the client reloads a script by itself when
the server answers NOSCRIPT (after a restart or SCRIPT FLUSH).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Final

from dataqueue.lifecycle import lua_constants

__all__ = ["SCRIPT_NAMES", "Scripts", "script_source"]

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


@cache
def script_source(name: str) -> str:
    """The full text of one script: the lifecycle constants, the shared library, then the
    script."""
    lib = (_DIR / "lib.lua").read_text()
    return (
        lua_constants()
        + lib
        + "\n-- ---- "
        + name
        + ".lua ----\n"
        + (_DIR / f"{name}.lua").read_text()
    )


class Scripts:
    """The registered scripts of one client, as attributes (``scripts.claim(keys, args)``)."""

    def __init__(self, client: Any) -> None:
        self._by_name = {name: client.register_script(script_source(name)) for name in SCRIPT_NAMES}

    def __getitem__(self, name: str) -> Any:
        return self._by_name[name]
