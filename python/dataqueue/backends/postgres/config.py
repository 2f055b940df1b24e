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
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dataqueue.backends.settings_text import SECRET_FIELDS, check_setting_text
from dataqueue.backends.tls import FILE_SCHEME, private_pem_file
from dataqueue.backends.types import DEFAULT_POOL_SIZE
from dataqueue.errors import BackendError, ConfigurationError, DataQueueError

__all__ = [
    "MAX_IDENTIFIER_BYTES",
    "PostgresSettings",
    "check_identifier",
    "check_setting_text",
    "connect_failure",
    "describe_target",
    "quote_ident",
]

#: Seconds the first connection of a backend may take before it fails (unless the conninfo
#: sets ``connect_timeout``): a wrong address should fail in seconds, not after the pool's 30 s.
FIRST_CONNECT_TIMEOUT: Final = 10

# SQLSTATEs that mean the settings are wrong (not that the server is briefly unavailable):
# bad password / authentication, unknown role, unknown database.
_MISCONFIGURED: Final = frozenset({"28P01", "28000", "3D000"})

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


#: PostgreSQL truncates longer identifiers (NAMEDATALEN - 1 bytes), so two long names could
#: silently be one schema: longer names are rejected instead.
MAX_IDENTIFIER_BYTES: Final = 63


def check_identifier(name: Any, what: str) -> str:
    """A schema name (or search_path entry) PostgreSQL keeps as given: a non-empty string of
    at most 63 UTF-8 bytes without control characters (NUL, tab, newline, ...) or lone
    surrogates. Any other character is allowed: it is always quoted."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{what} must be a non-empty string, got {name!r}")
    check_setting_text(name, what)
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise ConfigurationError(
            f"{what} is longer than {MAX_IDENTIFIER_BYTES} bytes (PostgreSQL would truncate "
            f"it): {name!r}"
        )
    return name


def quote_ident(name: str) -> str:
    """Quote an SQL identifier: double quotes around it, inner double quotes doubled."""
    if not name or "\x00" in name:
        raise ConfigurationError(f"invalid identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _unquoted(part: str) -> str:
    """A search_path entry as its plain name: ``"a""b"`` → ``a"b``; a bare name as is."""
    if len(part) > 1 and part.startswith('"') and part.endswith('"'):
        inner = part[1:-1]
        if inner.replace('""', "").count('"'):
            raise ConfigurationError(f"badly quoted search_path entry {part!r}")
        return inner.replace('""', '"')
    return part


def _search_path_option(search_path: str) -> str:
    """``-c search_path=…`` for libpq's ``options``: each entry checked and quoted, and the
    whole escaped so it stays one option (libpq splits ``options`` at whitespace; a tab or a
    newline could otherwise start another ``-c name=value``)."""
    check_setting_text(search_path, "search_path")
    parts = [p.strip() for p in search_path.split(",") if p.strip()]
    if not parts:
        raise ConfigurationError(f"empty search_path {search_path!r}")
    value = ",".join(
        quote_ident(check_identifier(_unquoted(p), "search_path entry")) for p in parts
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
    check_setting_text(url, "url", url=True)
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"malformed PostgreSQL URL: {exc}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(f"not a PostgreSQL URL: {parts.scheme!r} (postgresql://…)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    # What the percent-escapes decode to (libpq decodes them) obeys the rule the plain text
    # does: %0A or %00 in a password, user, host or option is refused, naming the part.
    for name, raw in (("user", parts.username), ("password", parts.password),
                      ("host", parts.hostname), ("dbname", parts.path.lstrip("/"))):  # fmt: skip
        if raw:
            check_setting_text(unquote(raw), f"url {name}", secret=name in SECRET_FIELDS)
    for key, value in query:
        check_setting_text(value, f"url {key}", secret=key in SECRET_FIELDS)
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
    # quote_via=quote: libpq decodes %20 but not "+", so a space must stay %20.
    query_text = urlencode(kept, quote_via=quote)
    return urlunsplit(parts._replace(query=query_text)), search_path, no_verify


@dataclass(frozen=True)
class PostgresSettings:
    """How to reach the database, and what the backend should own.

    ``conninfo`` and ``kwargs`` open a connection equivalent to the backend's own;
    ``pool`` is a caller's pool (never closed by dataqueue); ``schema`` holds the tables.
    """

    conninfo: str = ""
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    min_size: int = 1
    max_size: int = DEFAULT_POOL_SIZE
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
        if schema is not None:
            check_identifier(schema, "schema")
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
                params[dst] = check_setting_text(
                    str(config[src]), f"database_config.{src}", secret=src in SECRET_FIELDS
                )
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
            decoded = conninfo_to_dict(conninfo)
        except Exception as exc:  # psycopg raises ProgrammingError for bad conninfo
            raise ConfigurationError(
                f"invalid PostgreSQL connection settings: {_masked(str(exc), url)}"
            ) from None
        # What the URL's percent-escapes decode to (%0A, %00 in a password, host or option)
        # obeys the rule its plain text does.
        for key, value in decoded.items():
            if isinstance(value, str):
                check_setting_text(value, f"url {key}", secret=key in SECRET_FIELDS)
        min_size = _size(config.get("min_size", 1), "min_size", minimum=0)
        max_size = _size(config.get("max_size", DEFAULT_POOL_SIZE), "max_size", minimum=1)
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


def _masked(message: str, url: str | None) -> str:
    """``message`` without the URL's password (libpq quotes the part it cannot parse)."""
    try:
        password = urlsplit(url).password if url else None
    except ValueError:
        password = None
    for secret in {password, unquote(password)} if password else ():
        message = message.replace(secret, "***")
    return message


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


def describe_target(conninfo: str) -> str:
    """Where ``conninfo`` points, for messages: host, port, database and user (never the
    password)."""
    try:
        params = conninfo_to_dict(conninfo) if conninfo else {}
    except Exception:  # an unparsable conninfo fails elsewhere with its own message
        params = {}

    def get(key: str, env: str, default: str) -> str:
        return str(params.get(key) or os.environ.get(env) or default)

    host = get("host", "PGHOST", "localhost")
    port = get("port", "PGPORT", "5432")
    user = get("user", "PGUSER", os.environ.get("USER", "?"))
    dbname = get("dbname", "PGDATABASE", user)
    return f"host {host} port {port} database {dbname!r} user {user!r}"


def first_connect_kwargs(settings: PostgresSettings) -> dict[str, Any]:
    """Connection arguments for the backend's first, fail-fast connection."""
    kwargs = settings.connection_kwargs()
    has_timeout = "connect_timeout" in kwargs or (
        settings.conninfo and "connect_timeout" in conninfo_to_dict(settings.conninfo)
    )
    if not has_timeout:
        kwargs["connect_timeout"] = FIRST_CONNECT_TIMEOUT
    return kwargs


def connect_failure(exc: BaseException, conninfo: str) -> DataQueueError:
    """The error for a failed first connection: the server's own reason and where it was
    tried. Wrong credentials or a missing database are a ``ConfigurationError``; an
    unreachable server a ``BackendError`` (it may come back)."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    where = describe_target(conninfo)
    sqlstate = getattr(exc, "sqlstate", None)
    text = reason.lower()
    if sqlstate in _MISCONFIGURED or (
        sqlstate is None
        and (
            "password authentication failed" in text
            or ("database" in text and "does not exist" in text)
            or ("role" in text and "does not exist" in text)
            or "no password supplied" in text
        )
    ):
        return ConfigurationError(f"cannot connect to PostgreSQL at {where}: {reason}")
    return BackendError(f"cannot connect to PostgreSQL at {where}: {reason}")
