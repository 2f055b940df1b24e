"""Which backend a queue uses, and how it is built from ``init_job_queue``'s arguments.

The backend is chosen, in order, by ``backend=``, by the URL scheme, by the keyword options
given (``database_config``/``pool`` → Postgres, ``redis_config``/``client`` → Redis), and
finally by the ``DATAQUEUE_URL`` environment variable. Backends are imported lazily so that
``import dataqueue`` works with only one of the drivers installed.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypedDict, cast
from urllib.parse import urlsplit

from dataqueue._typing import Unpack, check_keywords
from dataqueue.errors import ConfigurationError

if TYPE_CHECKING:
    from dataqueue.backends.base_async import AsyncBackend
    from dataqueue.backends.base_sync import Backend
    from dataqueue.backends.postgres.config import PostgresSettings
    from dataqueue.backends.redis.config import RedisSettings

__all__ = [
    "ENV_GIVE_UP_AFTER",
    "ENV_KEY_PREFIX",
    "ENV_LOG_LEVEL",
    "ENV_SCHEMA",
    "ENV_URL",
    "BackendName",
    "QueueConfig",
    "QueueKwargs",
    "backend_class",
    "redact_url",
    "resolve_config",
]

# The environment variables of a queue, read alike by init_job_queue() and the CLI.
ENV_URL: Final = "DATAQUEUE_URL"
#: Redis key prefix when ``key_prefix=`` is not given.
ENV_KEY_PREFIX: Final = "DATAQUEUE_KEY_PREFIX"
#: PostgreSQL schema when ``schema=`` is not given.
ENV_SCHEMA: Final = "DATAQUEUE_SCHEMA"
# The CLI worker's own settings.
ENV_LOG_LEVEL: Final = "DATAQUEUE_LOG_LEVEL"
ENV_GIVE_UP_AFTER: Final = "DATAQUEUE_GIVE_UP_AFTER"

BackendName = Literal["postgres", "redis"]

_SCHEMES: Final[dict[str, BackendName]] = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "redis": "redis",
    "rediss": "redis",
}
_ALIASES: Final[dict[str, BackendName]] = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "pg": "postgres",
    "redis": "redis",
    "valkey": "redis",
}

Twin = Literal["sync", "async"]
# Where each backend's classes live (imported on first use: only one driver may be installed).
_BACKEND_CLASSES: Final[dict[tuple[BackendName, Twin], tuple[str, str]]] = {
    ("postgres", "async"): ("dataqueue.backends.postgres.backend_async", "AsyncPostgresBackend"),
    ("postgres", "sync"): ("dataqueue.backends.postgres.backend_sync", "PostgresBackend"),
    ("redis", "async"): ("dataqueue.backends.redis.backend_async", "AsyncRedisBackend"),
    ("redis", "sync"): ("dataqueue.backends.redis.backend_sync", "RedisBackend"),
}


def backend_class(backend: BackendName, twin: Twin) -> Any:
    """The class of ``backend``'s ``twin`` (imports its module, and so its driver)."""
    module, name = _BACKEND_CLASSES[backend, twin]
    return getattr(importlib.import_module(module), name)


class QueueKwargs(TypedDict, total=False):
    """The keyword options of ``init_job_queue`` / ``init_async_job_queue`` (see there)."""

    backend: str | None
    database_config: Mapping[str, Any] | None
    pool: Any
    redis_config: Mapping[str, Any] | None
    client: Any
    key_prefix: str | None
    schema: str | None
    verbose: bool


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """The resolved configuration of one queue; ``build_*`` constructs its backend."""

    backend: BackendName
    url: str | None = None
    database_config: Mapping[str, Any] | None = None
    pool: Any = None
    schema: str | None = None
    redis_config: Mapping[str, Any] | None = None
    client: Any = None
    key_prefix: str | None = None
    verbose: bool = False

    def build_async(self) -> AsyncBackend:
        """Construct the asyncio backend (imports its driver lazily)."""
        return cast("AsyncBackend", self._build("async"))

    def build_sync(self) -> Backend:
        """Construct the blocking backend (imports its driver lazily)."""
        return cast("Backend", self._build("sync"))

    def _build(self, twin: Twin) -> Any:
        try:
            cls = backend_class(self.backend, twin)
            if self.backend == "postgres":
                return cls(self._postgres_settings())
            return cls(self._redis_settings())
        except ImportError as exc:
            raise self._missing_driver(exc) from exc

    def _postgres_settings(self) -> PostgresSettings:
        from dataqueue.backends.postgres.config import PostgresSettings

        return PostgresSettings.from_options(
            self.url, database_config=self.database_config, pool=self.pool, schema=self.schema
        )

    def _redis_settings(self) -> RedisSettings:
        from dataqueue.backends.redis.config import RedisSettings

        return RedisSettings.from_options(
            self.url,
            redis_config=self.redis_config,
            client=self.client,
            key_prefix=self.key_prefix,
        )

    def _missing_driver(self, exc: ImportError) -> ConfigurationError:
        # Only a missing third-party driver is a configuration problem; a broken dataqueue
        # module is a bug and keeps its ImportError as the cause.
        missing = (exc.name or "").split(".")[0]
        if missing in ("psycopg", "psycopg_pool", "redis"):
            # Each backend's extra is named after it.
            return ConfigurationError(
                f"the {self.backend} backend needs the {missing!r} package: "
                f"pip install 'dataqueue[{self.backend}]'"
            )
        return ConfigurationError(f"the {self.backend} backend could not be loaded: {exc}")


def _scheme_backend(url: str) -> BackendName:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigurationError(
            f"cannot tell the backend from URL scheme {scheme!r} in {redact_url(url)!r}; use "
            "postgresql://, postgres://, redis:// or rediss:// (or pass backend=)"
        )
    return _SCHEMES[scheme]


def redact_url(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def resolve_config(url: str | None, **options: Unpack[QueueKwargs]) -> QueueConfig:
    """Validate ``init_job_queue``'s arguments and pick the backend; raise ConfigurationError."""
    check_keywords("init_job_queue", options, QueueKwargs)
    backend = options.get("backend")
    database_config, pool = options.get("database_config"), options.get("pool")
    redis_config, client = options.get("redis_config"), options.get("client")
    key_prefix, schema = options.get("key_prefix"), options.get("schema")
    verbose = options.get("verbose", False)
    if url is not None and (not isinstance(url, str) or not url.strip()):
        raise ConfigurationError(f"url must be a non-empty string, got {url!r}")
    pg_opts = database_config is not None or pool is not None or schema is not None
    redis_opts = redis_config is not None or client is not None or key_prefix is not None
    # DATAQUEUE_URL stands in for the URL whenever no connection source is given; backend=,
    # schema= and key_prefix= only qualify a connection, so they combine with it.
    sources = (database_config, pool, redis_config, client)
    if url is None and all(s is None for s in sources):
        url = os.environ.get(ENV_URL) or None
        if url is None and backend is None and not pg_opts and not redis_opts:
            raise ConfigurationError(
                "no queue configured: pass a URL (init_job_queue('postgresql://…') or "
                "'redis://…'), backend= with its options, or set the DATAQUEUE_URL environment "
                "variable"
            )

    chosen: BackendName | None = None
    if backend is not None:
        if not isinstance(backend, str) or backend.lower() not in _ALIASES:
            raise ConfigurationError(f"unknown backend {backend!r}; expected 'postgres' or 'redis'")
        chosen = _ALIASES[backend.lower()]
    if url is not None:
        from_url = _scheme_backend(url)
        if chosen is not None and chosen != from_url:
            raise ConfigurationError(
                f"backend={backend!r} contradicts the URL scheme of {redact_url(url)!r}"
            )
        chosen = from_url
    if chosen is None:
        if pg_opts and redis_opts:
            raise ConfigurationError(
                "both Postgres options (database_config/pool/schema) and Redis options "
                "(redis_config/client/key_prefix) were given; pass backend= or only one kind"
            )
        chosen = "postgres" if pg_opts else "redis"

    # The backend's environment variable fills in what the caller left out, as in the CLI.
    if chosen == "postgres" and schema is None:
        schema = os.environ.get(ENV_SCHEMA) or None
    if chosen == "redis" and key_prefix is None:
        key_prefix = os.environ.get(ENV_KEY_PREFIX) or None
    if chosen == "postgres":
        if redis_opts:
            raise ConfigurationError(
                "redis_config, client and key_prefix only apply to the redis backend"
            )
        if url is None and database_config is None and pool is None:
            raise ConfigurationError(
                "the postgres backend needs a URL, database_config={...} or pool=<ConnectionPool>"
            )
        _check_mapping(database_config, "database_config")
    else:
        if pg_opts:
            raise ConfigurationError(
                "database_config, pool and schema only apply to the postgres backend"
            )
        if url is None and redis_config is None and client is None:
            raise ConfigurationError(
                "the redis backend needs a URL, redis_config={...} or client=<redis.Redis>"
            )
        _check_mapping(redis_config, "redis_config")
        if key_prefix is not None and (not isinstance(key_prefix, str) or not key_prefix):
            raise ConfigurationError(f"key_prefix must be a non-empty string, got {key_prefix!r}")
    if schema is not None and (not isinstance(schema, str) or not schema):
        raise ConfigurationError(f"schema must be a non-empty string, got {schema!r}")
    if verbose:
        enable_verbose_logging()
    return QueueConfig(
        backend=chosen,
        url=url,
        database_config=database_config,
        pool=pool,
        schema=schema,
        redis_config=redis_config,
        client=client,
        key_prefix=key_prefix,
        verbose=bool(verbose),
    )


def _check_mapping(value: Any, what: str) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise ConfigurationError(f"{what} must be a mapping, got {type(value).__name__}")


def enable_verbose_logging() -> None:
    """``verbose=True``: log the ``dataqueue`` logger at DEBUG. A handler is attached only
    when the application configured none, so its own logging setup always wins."""
    logger = logging.getLogger("dataqueue")
    logger.setLevel(logging.DEBUG)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
