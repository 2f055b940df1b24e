"""The PostgreSQL backend: ``AsyncPostgresBackend`` and its generated twin ``PostgresBackend``."""
