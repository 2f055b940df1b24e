"""Connection settings for the PostgreSQL backend (sans-IO: no connection is opened here).

``PostgresSettings.from_options`` turns a URL and/or a ``database_config`` mapping (or a caller's
pool) into a libpq conninfo string plus connection keyword arguments that every connection of
the backend uses, so any other component (e.g. a processor opening its own async pool for a
sync queue) can connect to the same database the same way (``connection_kwargs()``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dataqueue.backends.tls import FILE_SCHEME, private_pem_file
from dataqueue.errors import ConfigurationError

__all__ = ["PostgresSettings", "quote_ident"]

_CONFIG_KEYS: Final = frozenset(
    {
        "url",
        "connection_string",
        "host",
        "port",
        "database",
        "dbname",
        "user",
        "password",
        "min_size",
        "max_size",
        "ssl",
        "search_path",
    }
)
_SSL_KEYS: Final = frozenset({"ca", "cert", "key", "reject_unauthorized"})
_SSL_ENV: Final = {"ca": "PGSSLROOTCERT", "cert": "PGSSLCERT", "key": "PGSSLKEY"}
_SSL_PARAM: Final = {"ca": "sslrootcert", "cert": "sslcert", "key": "sslkey"}


def quote_ident(name: str) -> str:
    """Quote an SQL identifier: double quotes around it, inner double quotes doubled."""
    if not name or "\x00" in name:
        raise ConfigurationError(f"invalid identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _search_path_option(search_path: str) -> str:
    """``-c search_path=…`` for libpq's ``options``: identifiers quoted, spaces escaped."""
    parts = [p.strip() for p in search_path.split(",") if p.strip()]
    if not parts:
        raise ConfigurationError(f"empty search_path {search_path!r}")
    value = ",".join(
        p if p.startswith('"') and p.endswith('"') and len(p) > 1 else quote_ident(p) for p in parts
    )
    escaped = value.replace("\\", "\\\\").replace(" ", "\\ ")
    return f"-c search_path={escaped}"


def _pem_path(value: str, what: str) -> str:
    """libpq wants file paths: ``file://path`` → path; inline PEM → a private temp file."""
    if value.startswith(FILE_SCHEME):
        path = value[len(FILE_SCHEME) :]
        if not os.path.isfile(path):
            raise ConfigurationError(f"ssl.{what}: no such file {path!r}")
        return path
    if "-----BEGIN" in value:
        return private_pem_file(value, what)
    if os.path.isfile(value):
        return value
    raise ConfigurationError(f"ssl.{what} must be inline PEM, file://<path> or a file path")


def _split_url(url: str) -> tuple[str, str | None, bool]:
    """Remove ``search_path`` and ``sslmode=no-verify`` (not libpq's) from a URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(f"not a PostgreSQL URL: {parts.scheme!r} (postgresql://…)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    search_path: str | None = None
    no_verify = False
    kept: list[tuple[str, str]] = []
    for key, value in query:
        if key == "search_path":
            search_path = value
        elif key == "sslmode" and value == "no-verify":
            no_verify = True
            kept.append(("sslmode", "require"))
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), search_path, no_verify


@dataclass(frozen=True)
class PostgresSettings:
    """How to reach the database, and what the backend should own.

    ``conninfo`` and ``kwargs`` open a connection equivalent to the backend's own;
    ``pool`` is a caller's pool (never closed by dataqueue); ``schema`` holds the tables.
    """

    conninfo: str = ""
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    min_size: int = 1
    max_size: int = 10
    pool: Any = None
    schema: str | None = None

    @classmethod
    def from_options(
        cls,
        url: str | None = None,
        *,
        database_config: Mapping[str, Any] | None = None,
        pool: Any = None,
        schema: str | None = None,
    ) -> PostgresSettings:
        """Build settings from a URL, a ``database_config`` mapping and/or a caller's pool."""
        if schema is not None and (not isinstance(schema, str) or not schema):
            raise ConfigurationError(f"schema must be a non-empty string, got {schema!r}")
        if pool is not None:
            conninfo = getattr(pool, "conninfo", "") or ""
            kwargs = dict(getattr(pool, "kwargs", None) or {})
            return cls(conninfo=conninfo, kwargs=kwargs, pool=pool, schema=schema)
        config = dict(database_config or {})
        unknown = set(config) - _CONFIG_KEYS
        if unknown:
            raise ConfigurationError(f"unknown database_config key(s): {sorted(unknown)}")
        url = url or config.pop("url", None) or config.pop("connection_string", None)
        config.pop("url", None)
        config.pop("connection_string", None)
        if url is None and not config:
            raise ConfigurationError(
                'PostgreSQL needs a URL, "database_config" or "pool" (none was given)'
            )
        params: dict[str, Any] = {}
        search_path: str | None = None
        no_verify = False
        base = ""
        if url is not None:
            if not isinstance(url, str):
                raise ConfigurationError(f"url must be a string, got {url!r}")
            base, search_path, no_verify = _split_url(url)
        for src, dst in (("host", "host"), ("port", "port"), ("user", "user"),
                         ("password", "password"), ("database", "dbname"),
                         ("dbname", "dbname")):  # fmt: skip
            if config.get(src) is not None:
                params[dst] = str(config[src])
        if config.get("search_path") is not None:
            search_path = str(config["search_path"])
        ssl = config.get("ssl")
        if ssl is not None:
            params.update(_ssl_params(ssl))
        elif no_verify:
            params["sslmode"] = "require"
        if search_path:
            existing = conninfo_to_dict(base).get("options") if base else None
            option = _search_path_option(search_path)
            params["options"] = f"{existing} {option}" if existing else option
        try:
            conninfo = make_conninfo(base, **params)
        except Exception as exc:  # psycopg raises ProgrammingError for bad conninfo
            raise ConfigurationError(f"invalid PostgreSQL connection settings: {exc}") from None
        min_size = _size(config.get("min_size", 1), "min_size", minimum=0)
        max_size = _size(config.get("max_size", 10), "max_size", minimum=1)
        if min_size > max_size:
            raise ConfigurationError(f"min_size {min_size} is larger than max_size {max_size}")
        return cls(conninfo=conninfo, kwargs={}, min_size=min_size, max_size=max_size,
                   schema=schema)  # fmt: skip

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.(Async)Connection.connect(conninfo, **kwargs)``."""
        kwargs = dict(self.kwargs)
        kwargs.setdefault("autocommit", True)
        return kwargs

    def async_twin(self) -> PostgresSettings:
        """The same database without the caller's pool (a pool is sync or async, not both)."""
        return PostgresSettings(conninfo=self.conninfo, kwargs=dict(self.kwargs),
                                min_size=self.min_size, max_size=self.max_size,
                                schema=self.schema)  # fmt: skip

    sync_twin = async_twin

    @property
    def search_path_option(self) -> str | None:
        """The ``-c search_path=…`` part of the conninfo, if any."""
        options = conninfo_to_dict(self.conninfo).get("options") if self.conninfo else None
        return str(options) if options else None


def _size(value: Any, what: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"database_config.{what} must be an integer >= {minimum}")
    return value


def _ssl_params(ssl: Any) -> dict[str, str]:
    if ssl is True:
        return {"sslmode": "verify-full", "sslrootcert": "system"}
    if ssl is False:
        return {"sslmode": "disable"}
    if not isinstance(ssl, Mapping):
        raise ConfigurationError(f"database_config.ssl must be a mapping, got {ssl!r}")
    unknown = set(ssl) - _SSL_KEYS
    if unknown:
        raise ConfigurationError(f"unknown database_config.ssl key(s): {sorted(unknown)}")
    reject = ssl.get("reject_unauthorized", True)
    if not isinstance(reject, bool):
        raise ConfigurationError("ssl.reject_unauthorized must be a bool")
    out: dict[str, str] = {}
    for key in ("ca", "cert", "key"):
        value = ssl.get(key) or os.environ.get(_SSL_ENV[key])
        if value:
            if not isinstance(value, str):
                raise ConfigurationError(f"ssl.{key} must be a string")
            out[_SSL_PARAM[key]] = _pem_path(value, key)
    if reject:
        out["sslmode"] = "verify-full"
        out.setdefault("sslrootcert", "system")
    else:
        # Encrypt but do not verify: libpq only checks the server against a CA in verify-*.
        out["sslmode"] = "require"
        out.pop("sslrootcert", None)
    return out
