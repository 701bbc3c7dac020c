#!/usr/bin/env bash
# Our hot read paths against the seed's stack (bench/peer/), side by side: see bench/side_by_side.py and
# bench/README.md. Creates bench/peer/.venv from bench/peer/requirements.txt when missing or out of date.
# Arguments go to bench.side_by_side, e.g. `bench/side_by_side.sh --duration 10 --rounds 3`.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2 TF_ENABLE_ONEDNN_OPTS=0
command -v wrk >/dev/null || { echo "wrk is required (Debian/Ubuntu: apt-get install -y wrk)" >&2; exit 1; }
PEER=bench/peer
if [[ ! -f $PEER/.venv/.requirements || $PEER/requirements.txt -nt $PEER/.venv/.requirements ]]; then
  "${PYTHON:-python3.11}" -m venv "$PEER/.venv"
  "$PEER/.venv/bin/pip" install -q -r "$PEER/requirements.txt"
  touch "$PEER/.venv/.requirements"
fi
exec .venv/bin/python -m bench.side_by_side "$@"
