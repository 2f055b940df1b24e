"""Fixtures of the Redis backend's own tests (defined in ``_redis_fixtures``).

This directory is deliberately not a package: a package named ``redis`` would shadow redis-py.
"""

from _redis_fixtures import backend, cluster_url, prefix, raw

__all__ = ["backend", "cluster_url", "prefix", "raw"]
