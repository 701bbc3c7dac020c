#!/usr/bin/env bash
# Start the local PostgreSQL and Redis if they are installed here and not answering, and make sure the
# test database exists. Used by `make test` and .ci/run; harmless when both already run.
set -euo pipefail

if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(pg_lsclusters -h | cut -d' ' -f1 | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
if command -v psql >/dev/null 2>&1; then
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='tradingdash'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE tradingdash" >/dev/null
fi
