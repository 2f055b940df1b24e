"""Fixtures of the command-line tests: a fresh Postgres database or Redis key prefix per test,
given to the CLI as ``--url`` (and ``--key-prefix``): ``cli_storage.args``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _storage import Storage, fresh_storage

#: What ``cli_storage`` gives: the test's storage as command-line and library options.
CliStorage = Storage


@pytest.fixture(params=["postgres", "redis"])
def cli_storage(request: pytest.FixtureRequest) -> Iterator[CliStorage]:
    with fresh_storage(request.param, "dqcli") as storage:
        yield storage
