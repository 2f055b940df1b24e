"""The docs tests choose their backend per test (``backend_name`` parameter) and use the shared
``storage`` fixture of tests/conftest.py."""
