#!/usr/bin/env bash
# First command for a newcomer: build dataqueue into .venv (with the embedded PostgreSQL extra)
# and run the live demo. With no --url / DATAQUEUE_URL the demo uses an embedded PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
DQ_EXTRAS="${DQ_EXTRAS:-postgres,redis,cli,embedded}" bash tools/bootstrap.sh
exec .venv/bin/dataqueue demo "$@"
