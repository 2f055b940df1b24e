#!/usr/bin/env bash
# Create .venv (if missing) and build dataqueue into it with every extra the tests need.
# Used by tools/test.sh and tools/quickstart.sh; safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
python -m pip install -q --upgrade pip >/dev/null
python -m pip install -q "maturin>=1.5,<2"
# --release: the Rust core is what the benchmarks measure, and the build is only a little slower.
maturin develop --release --extras "${DQ_EXTRAS:-postgres,redis,cli,embedded,dashboard,plot,dev}" -q
