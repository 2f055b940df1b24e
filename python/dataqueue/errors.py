"""The exception hierarchy of dataqueue: every error the library raises on purpose."""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendNotSupportedError",
    "ConfigurationError",
    "CronError",
    "DataQueueError",
    "DependencyCycleError",
    "DependencyError",
    "InvalidFilterError",
    "InvalidJobError",
    "InvalidTokenError",
    "JobNotFoundError",
    "MigrationError",
    "UnknownPrerequisiteError",
]


class DataQueueError(Exception):
    """Root of every exception raised by dataqueue."""


class ConfigurationError(DataQueueError):
    """The queue, processor or supervisor was configured with invalid or missing settings."""


class BackendNotSupportedError(DataQueueError):
    """The operation exists but the chosen backend cannot do it (e.g. ``db=`` on Redis)."""


class BackendError(DataQueueError):
    """The storage backend failed in a way the caller may want to retry."""


class MigrationError(DataQueueError):
    """Applying the schema migrations failed."""


class InvalidJobError(DataQueueError, ValueError):
    """A job's options are invalid: bad type, payload, priority, run_at, tags, ..."""


class JobNotFoundError(DataQueueError, LookupError):
    """A job id that must exist does not."""


class DependencyError(InvalidJobError):
    """A job's ``depends_on`` is invalid."""


class DependencyCycleError(DependencyError):
    """The dependencies would form a cycle (a self reference is the shortest cycle)."""


class UnknownPrerequisiteError(DependencyError):
    """A prerequisite job id does not exist, or a batch placeholder points outside the batch."""


class InvalidTokenError(DataQueueError, ValueError):
    """A wait token's options are invalid (e.g. a malformed timeout)."""


class CronError(DataQueueError, ValueError):
    """A cron schedule is invalid: bad expression, unknown time zone or duplicate name."""


class InvalidFilterError(DataQueueError, ValueError):
    """A query filter has an unknown key or an invalid value."""
