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


@dataclass(frozen=True, slots=True)
class _BackendOptions:
    """A backend's keyword options: a settings mapping, a caller's own connection object (of
    ``kind``), and the qualifier naming this queue's place in the storage."""

    mapping: str
    own: str
    kind: str
    qualifier: str
    qualifier_env: str

    @property
    def names(self) -> tuple[str, str, str]:
        return (self.mapping, self.own, self.qualifier)


_OPTIONS_OF: Final[dict[BackendName, _BackendOptions]] = {
    "postgres": _BackendOptions("database_config", "pool", "ConnectionPool", "schema", ENV_SCHEMA),
    "redis": _BackendOptions("redis_config", "client", "redis.Redis", "key_prefix", ENV_KEY_PREFIX),
}


def resolve_config(url: str | None, **options: Unpack[QueueKwargs]) -> QueueConfig:
    """Validate ``init_job_queue``'s arguments and pick the backend; raise ConfigurationError."""
    check_keywords("init_job_queue", options, QueueKwargs)
    given: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    backend = given.pop("backend", None)
    verbose = given.pop("verbose", False)
    if url is not None and (not isinstance(url, str) or not url.strip()):
        raise ConfigurationError(f"url must be a non-empty string, got {url!r}")
    # DATAQUEUE_URL stands in for the URL whenever no connection source is given; backend=,
    # schema= and key_prefix= only qualify a connection, so they combine with it.
    if url is None and not any(o.mapping in given or o.own in given for o in _OPTIONS_OF.values()):
        url = os.environ.get(ENV_URL) or None
        if url is None and backend is None and not given:
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
    used = {name for name, o in _OPTIONS_OF.items() if given.keys() & set(o.names)}
    if chosen is None:
        if len(used) > 1:
            raise ConfigurationError(
                "both Postgres options (database_config/pool/schema) and Redis options "
                "(redis_config/client/key_prefix) were given; pass backend= or only one kind"
            )
        chosen = "postgres" if "postgres" in used else "redis"
    mine = _OPTIONS_OF[chosen]
    for other in used - {chosen}:  # at most one: there are two backends
        names = _OPTIONS_OF[other].names
        raise ConfigurationError(
            f"{names[0]}, {names[1]} and {names[2]} only apply to the {other} backend"
        )
    # The backend's environment variable fills in what the caller left out, as in the CLI.
    if mine.qualifier not in given and os.environ.get(mine.qualifier_env):
        given[mine.qualifier] = os.environ[mine.qualifier_env]
    if url is None and mine.mapping not in given and mine.own not in given:
        raise ConfigurationError(
            f"the {chosen} backend needs a URL, {mine.mapping}={{...}} or {mine.own}=<{mine.kind}>"
        )
    _check_mapping(given.get(mine.mapping), mine.mapping)
    qualifier = given.get(mine.qualifier)
    if qualifier is not None and (not isinstance(qualifier, str) or not qualifier):
        raise ConfigurationError(f"{mine.qualifier} must be a non-empty string, got {qualifier!r}")
    if verbose:
        enable_verbose_logging()
    return QueueConfig(backend=chosen, url=url, verbose=bool(verbose), **given)


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
