"""The Redis backend: ``AsyncRedisBackend`` / ``RedisBackend`` (generated twin)."""
