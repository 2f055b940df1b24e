"""TLS material as users give it to either backend: PEM text inline or a ``file://`` path.

Drivers want either the PEM text (a CA bundle) or a file path (client certificate and key), so
inline PEM that must be a file goes to a private temporary file, removed when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Final

from dataqueue.errors import ConfigurationError

__all__ = ["FILE_SCHEME", "pem_file", "pem_text", "private_pem_file"]

FILE_SCHEME: Final = "file://"

_temp_files: list[str] = []


def _remove_temp_files() -> None:
    while _temp_files:
        with contextlib.suppress(OSError):
            os.unlink(_temp_files.pop())


atexit.register(_remove_temp_files)


def pem_text(value: str, what: str) -> str:
    """The PEM text of ``value``: a ``file://`` path is read, anything else is the text."""
    if value.startswith(FILE_SCHEME):
        try:
            return Path(value[len(FILE_SCHEME) :]).read_text()
        except OSError as exc:
            raise ConfigurationError(f"{what}: cannot read {value!r}: {exc}") from None
    return value


def pem_file(value: str, what: str) -> str:
    """A path to a file holding ``value``: a ``file://`` value's own path, or inline PEM
    written to a private temporary file."""
    if value.startswith(FILE_SCHEME):
        return value[len(FILE_SCHEME) :]
    return private_pem_file(value, what)


def private_pem_file(pem: str, what: str) -> str:
    """Write ``pem`` to a new file only this user can read; it is removed at process exit."""
    fd, path = tempfile.mkstemp(prefix=f"dataqueue-{what}-", suffix=".pem")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem.encode())
    finally:
        os.close(fd)
    _temp_files.append(path)
    return path
