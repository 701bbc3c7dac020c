#!/usr/bin/env bash
# Run every benchmark against the tradingdash_bench database (created and migrated if needed) and print the
# markdown report. Arguments go to bench.run, e.g. `bench/run.sh --only market signals`.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2 TF_ENABLE_ONEDNN_OPTS=0
exec .venv/bin/python -m bench.run "$@"
