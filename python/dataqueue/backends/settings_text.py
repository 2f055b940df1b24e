"""The text rule shared by both backends' connection settings (hosts, users, passwords, database
names, URL parts): no control characters, lone surrogates or whitespace other than a space."""

from __future__ import annotations

import unicodedata
from typing import Final

from dataqueue.errors import ConfigurationError

__all__ = ["SECRET_FIELDS", "check_setting_text", "redact_url"]

#: Settings whose value an error message must not repeat.
SECRET_FIELDS: Final = frozenset({"password", "sslpassword"})


def check_setting_text(text: str, what: str, *, secret: bool = False, url: bool = False) -> str:
    """Reject control characters (NUL, tab, newline, ...), lone surrogates and whitespace
    other than a space in a connection setting: none has a legitimate use there, and each
    could split or corrupt what the driver sends (or fail deep in it with an encoding error).
    The error names the setting (``what``) and shows the value, except a ``secret`` one (a
    ``url`` is shown with its password masked)."""
    if any(unicodedata.category(c) in ("Cc", "Cs") or (c.isspace() and c != " ") for c in text):
        shown = "" if secret else f": {(redact_url(text) if url else text)!r}"
        raise ConfigurationError(
            f"{what} must not contain control characters, lone surrogates or whitespace other "
            f"than spaces{shown}"
        )
    return text


def redact_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***`` (for
    messages)."""
    scheme, sep, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    creds, at, host = authority.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}{slash}{tail}"
