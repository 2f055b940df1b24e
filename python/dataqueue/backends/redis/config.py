"""Redis connection settings (sans-IO): what to connect to and under which key prefix.

``RedisSettings.from_options`` validates the user's options without touching the network; the
backends then ask it for a client (``build_async_client`` / ``build_sync_client``). A client the
caller brought is used as is and never closed by the library.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from dataqueue.backends.redis.keys import plain_tag
from dataqueue.backends.settings_text import SECRET_FIELDS, check_setting_text, redact_url
from dataqueue.backends.tls import pem_file, pem_text
from dataqueue.backends.types import DEFAULT_POOL_SIZE, POOL_TIMEOUT_S
from dataqueue.errors import ConfigurationError
from dataqueue.options import INT32_MAX

__all__ = ["DEFAULT_KEY_PREFIX", "RedisSettings"]

DEFAULT_KEY_PREFIX: Final = "dq:"

_CONFIG_KEYS: Final = frozenset(
    {"url", "host", "port", "password", "username", "db", "tls", "key_prefix", "max_connections"}
)
#: Longest accepted key_prefix (characters).
MAX_PREFIX_LENGTH: Final = 200
_TLS_KEYS: Final = frozenset({"ca", "cert", "key", "reject_unauthorized"})


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS material: each PEM value is inline text or a ``file://`` path."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    reject_unauthorized: bool = True


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Where the Redis backend connects and which keys it uses.

    Exactly one of ``url``, ``host`` (from ``redis_config``) or ``client`` describes the
    server. ``key_prefix`` namespaces every key; the queue's keys also share one hash tag
    derived from it, so a queue lives in one Redis Cluster slot.
    """

    key_prefix: str = DEFAULT_KEY_PREFIX
    url: str | None = None
    host: str = "127.0.0.1"
    port: int = 6379
    username: str | None = None
    password: str | None = None
    db: int | None = None
    tls: TlsSettings | None = None
    max_connections: int = DEFAULT_POOL_SIZE
    client: Any = field(default=None, compare=False)

    @classmethod
    def from_options(
        cls,
        url: str | None = None,
        *,
        redis_config: Mapping[str, Any] | None = None,
        client: Any = None,
        key_prefix: str | None = None,
    ) -> RedisSettings:
        """Validate the options of ``init_job_queue(backend="redis", ...)``.

        ``url`` (``redis://`` / ``rediss://``) and ``redis_config`` keys (``url``, ``host``,
        ``port``, ``username``, ``password``, ``db``, ``tls``, ``key_prefix``) combine, the
        explicit keys winning over the URL; ``client`` is a ready ``redis.Redis`` /
        ``redis.asyncio.Redis``. Raises ``ConfigurationError`` for unknown keys, bad values or
        when nothing says where to connect.
        """
        cfg = dict(redis_config or {})
        unknown = set(cfg) - _CONFIG_KEYS
        if unknown:
            raise ConfigurationError(
                f"unknown redis_config key(s): {sorted(unknown)}; expected {sorted(_CONFIG_KEYS)}"
            )
        prefix = key_prefix if key_prefix is not None else cfg.get("key_prefix")
        prefix = DEFAULT_KEY_PREFIX if prefix is None else prefix
        _check_prefix(prefix)
        if client is not None:
            if not callable(getattr(client, "evalsha", None)):
                raise ConfigurationError(
                    f"client must be a redis.Redis or redis.asyncio.Redis, got {client!r}"
                )
            return cls(key_prefix=prefix, client=client)
        url = url if url is not None else cfg.get("url")
        if url is None and not cfg.get("host") and redis_config is None:
            raise ConfigurationError(
                "the redis backend needs a URL, redis_config={...} or client=<redis.Redis>"
            )
        kwargs: dict[str, Any] = {"key_prefix": prefix}
        if url is not None:
            kwargs.update(_parse_url(url))
        for name in ("host", "username", "password"):
            if cfg.get(name) is not None:
                if not isinstance(cfg[name], str) or not cfg[name]:
                    raise ConfigurationError(f"redis_config.{name} must be a non-empty string")
                kwargs[name] = check_setting_text(
                    cfg[name], f"redis_config.{name}", secret=name in SECRET_FIELDS
                )
        for name, low, high in (("port", 0, 65535), ("db", 0, INT32_MAX),
                                ("max_connections", 1, INT32_MAX)):  # fmt: skip
            if cfg.get(name) is not None:
                value = cfg[name]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int)
                    or not low <= value <= high
                ):
                    raise ConfigurationError(
                        f"redis_config.{name} must be an int from {low} to {high}, got {value!r}"
                    )
                kwargs[name] = value
        if cfg.get("tls") is not None:
            kwargs["tls"] = _parse_tls(cfg["tls"])
        return cls(**kwargs)

    # -- derived ---------------------------------------------------------------------------

    @property
    def owns_client(self) -> bool:
        """True when the library creates (and so closes) the client."""
        return self.client is None

    def async_twin(self) -> RedisSettings:
        """Settings for an asyncio client to the same server and keys.

        A sync queue's processor needs an async client; when the caller brought a sync client,
        its connection parameters are copied into a new client the library then owns.
        """
        if self.client is None or _is_async_client(self.client):
            return self
        return replace(self, client=None, url=None, **_kwargs_from_client(self.client))

    def describe_target(self) -> str:
        """Where these settings point, for messages: host, port, database and user (never
        the password)."""
        if self.client is not None:
            conn = getattr(getattr(self.client, "connection_pool", None), "connection_kwargs", {})
            host, port = conn.get("host", "?"), conn.get("port", "?")
            db, user = conn.get("db", 0), conn.get("username")
        elif self.url is not None:
            parts = urlsplit(self.url)
            host, port = parts.hostname or "127.0.0.1", parts.port or 6379
            query_db = [v for k, v in parse_qsl(parts.query) if k == "db"]
            db = (query_db or [parts.path.strip("/") or "0"])[0]
            user = unquote(parts.username) if parts.username else None
            if parts.scheme == "unix":
                return f"socket {parts.path} database {db}"
        else:
            host, port, db, user = self.host, self.port, self.db or 0, self.username
        who = f" user {user!r}" if user else ""
        return f"host {host} port {port} database {db}{who}"

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"decode_responses": True}
        url_mode = self.url is not None
        if self.username is not None:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = self.password
        if self.db is not None:
            kwargs["db"] = self.db
        if self.tls is not None:
            if not url_mode:
                kwargs["ssl"] = True  # with a URL, the rediss:// scheme selects TLS
            kwargs["ssl_cert_reqs"] = "required" if self.tls.reject_unauthorized else "none"
            kwargs["ssl_check_hostname"] = self.tls.reject_unauthorized
            if self.tls.ca:
                kwargs["ssl_ca_data"] = pem_text(self.tls.ca, "tls.ca")
            # redis-py wants file paths for the client certificate and key.
            if self.tls.cert:
                kwargs["ssl_certfile"] = pem_file(self.tls.cert, "tls.cert")
            if self.tls.key:
                kwargs["ssl_keyfile"] = pem_file(self.tls.key, "tls.key")
        return kwargs

    def _tls_url(self) -> str:
        assert self.url is not None
        if self.tls is not None and self.url.startswith("redis://"):
            return "rediss://" + self.url[len("redis://") :]
        return self.url

    def require_client_kind(self, *, is_async: bool) -> None:
        """Reject a caller's client of the wrong kind (a blocking client for the asyncio
        queue, or the reverse) before it fails in a confusing way."""
        if self.client is not None and _is_async_client(self.client) != is_async:
            want = "redis.asyncio.Redis" if is_async else "redis.Redis"
            raise ConfigurationError(
                f"this queue needs a {want} client, got {type(self.client).__module__}."
                f"{type(self.client).__name__}"
            )

    def build_async_client(self) -> Any:
        """The caller's client, or a new ``redis.asyncio.Redis`` for these settings."""
        if self.client is not None:
            return self.client
        import redis.asyncio

        return self._build(redis.asyncio)

    def build_sync_client(self) -> Any:
        """The caller's client, or a new ``redis.Redis`` for these settings."""
        if self.client is not None:
            return self.client
        import redis

        return self._build(redis)

    def _build(self, module: Any) -> Any:
        """A client over a blocking pool of ``max_connections``: a call beyond them waits
        for a free connection (as on PostgreSQL) instead of failing "Too many connections"."""
        kwargs = self._client_kwargs()
        pool_kwargs = {"max_connections": self.max_connections, "timeout": POOL_TIMEOUT_S}
        pool_class = module.BlockingConnectionPool
        if module.__name__ == "redis.asyncio":
            from dataqueue.backends.redis.pool import AsyncBlockingPool as pool_class
        if self.url is not None:
            pool = pool_class.from_url(self._tls_url(), **kwargs, **pool_kwargs)
        else:
            if kwargs.pop("ssl", False):
                kwargs["connection_class"] = module.SSLConnection
            pool = pool_class(host=self.host, port=self.port, **kwargs, **pool_kwargs)
        return module.Redis.from_pool(pool)  # the client owns (and closes) the pool


def _check_prefix(prefix: Any) -> None:
    """The key_prefix grammar (see ``keys.base_for_prefix`` and docs/security.md): a plain
    prefix without braces, or ``<name>{<tag>}:`` with one non-empty hash tag, ending in
    ``}:``. Every queue's base key then holds exactly one ``{`` and one ``}`` and ends in
    ``}:``, so no base is the start of another's keys; and an explicit form that names the
    keys a plain prefix already names is refused, so two accepted prefixes never share a
    key."""
    if not isinstance(prefix, str) or not prefix:
        raise ConfigurationError(f"key_prefix must be a non-empty string, got {prefix!r}")
    if len(prefix) > MAX_PREFIX_LENGTH:
        raise ConfigurationError(f"key_prefix is longer than {MAX_PREFIX_LENGTH} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in prefix):
        raise ConfigurationError(
            f"key_prefix must not contain control characters or lone surrogates: {prefix!r}"
        )
    if "{" not in prefix and "}" not in prefix:
        return
    head, _, rest = prefix.partition("{")
    tag, _, tail = rest.partition("}")
    if "}" in head or "{" in rest or "}" in tail or not tag or tail != ":":
        raise ConfigurationError(
            f"key_prefix {prefix!r} is not a plain prefix (no braces, e.g. 'app:') nor "
            "'<name>{<hash tag>}:' with one non-empty tag (e.g. 'app:{orders}:')"
        )
    if tag == plain_tag(head):
        raise ConfigurationError(
            f"key_prefix {prefix!r} names the keys of key_prefix {head!r}; use {head!r}"
        )


def _parse_url(url: Any) -> dict[str, Any]:
    if not isinstance(url, str):
        raise ConfigurationError(f"redis url must be a string, got {url!r}")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in url):
        raise ConfigurationError(
            f"redis url must not contain control characters or lone surrogates: {redact_url(url)!r}"
        )
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"malformed redis url {redact_url(url)!r}: {exc}") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"redis url must start with redis:// or rediss://, got {redact_url(url)!r}"
        )
    # What the percent-escapes decode to (redis-py unquotes these) obeys the same rule as
    # redis_config's values: %0A or %00 in a password or host is refused, naming the part.
    decoded = {
        "host": parts.hostname,
        "username": parts.username,
        "password": parts.password,
        "path": parts.path if parts.scheme == "unix" else None,
    }
    for name, raw in decoded.items():
        if raw:
            check_setting_text(unquote(raw), f"redis url {name}", secret=name in SECRET_FIELDS)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        check_setting_text(name, "redis url query parameter name")
        check_setting_text(value, f"redis url {name}", secret=name in SECRET_FIELDS)
    # redis-py reads an unparsable database as 0, silently: the wrong data set.
    db_text = parts.path.strip("/") if parts.scheme != "unix" else ""
    query_db = [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "db"]
    for text in ([db_text] if db_text else []) + query_db:
        if not text.isascii() or not text.isdigit() or int(text) > INT32_MAX:
            raise ConfigurationError(
                f"redis url {redact_url(url)!r}: the database must be a non-negative integer, "
                f"got {text!r}"
            )
    return {"url": url}


def _parse_tls(value: Any) -> TlsSettings:
    if value is True:
        return TlsSettings()
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"redis_config.tls must be a mapping or True, got {value!r}")
    unknown = set(value) - _TLS_KEYS
    if unknown:
        raise ConfigurationError(f"unknown redis_config.tls key(s): {sorted(unknown)}")
    for name in ("ca", "cert", "key"):
        if value.get(name) is not None and not isinstance(value[name], str):
            raise ConfigurationError(f"redis_config.tls.{name} must be PEM text or file://path")
    reject = value.get("reject_unauthorized", True)
    if not isinstance(reject, bool):
        raise ConfigurationError("redis_config.tls.reject_unauthorized must be a bool")
    return TlsSettings(value.get("ca"), value.get("cert"), value.get("key"), reject)


def _is_async_client(client: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(getattr(client, "execute_command", None))


def _kwargs_from_client(client: Any) -> dict[str, Any]:
    conn = dict(getattr(getattr(client, "connection_pool", None), "connection_kwargs", {}))
    out: dict[str, Any] = {
        "host": conn.get("host", "127.0.0.1"),
        "port": conn.get("port", 6379),
        "db": conn.get("db", 0),
        "username": conn.get("username"),
        "password": conn.get("password"),
    }
    if conn.get("ssl") or "ssl_cert_reqs" in conn:
        out["tls"] = TlsSettings(reject_unauthorized=conn.get("ssl_cert_reqs") != "none")
    return out
