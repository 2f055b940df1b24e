"""Storage backends. Each implements ``AsyncBackend`` (and a generated sync twin)."""
