#!/usr/bin/env bash
# The test command: starts PostgreSQL and Redis on 127.0.0.1 (installing them if needed), builds
# the extension into .venv, then runs the Rust tests and the whole pytest suite against the real
# servers. Any failure, and a pytest run that collects no tests (exit 5), fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/services.sh
bash tools/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
export DATAQUEUE_TEST_PG_URL="${DATAQUEUE_TEST_PG_URL:-postgresql://postgres:postgres@127.0.0.1:5432/postgres}"
export DATAQUEUE_TEST_REDIS_URL="${DATAQUEUE_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
cargo test --quiet
python -m pytest -q -p no:cacheprovider -n "${DQ_TEST_WORKERS:-2}" "$@"
