#!/usr/bin/env bash
# Load test of three hot read endpoints with wrk, against gunicorn on a free loopback port (127.0.0.1 only):
#   quote       GET /api/market/quote/TCS                              (cached quote)
#   historical  GET /api/market/historical/TCS?timeframe=1H&limit=2500 (2,500 hourly candles, cached payload)
#   signals     GET /api/signals/TCS                                   (the 20 latest signals, cached)
# each for LOAD_DURATION with LOAD_CONNECTIONS concurrent connections, every request with a JWT. It prints one
# Markdown row per endpoint (req/s, p50, p99, errors) and fails if any request failed or was not a 2xx.
#
#   load/run.sh            # 60 s per endpoint, 64 connections (the figures in load/README.md)
#   load/run.sh --smoke    # 10 s per endpoint: for CI
#
# The server runs like production: gunicorn with tradingdash/gunicorn.conf.py (LOAD_WORKERS uvicorn workers;
# default 3 x 2), PostgreSQL, Redis, INFO request logs, Prometheus metrics in multiprocess mode; a fresh database
# (LOAD_DB) filled with synthetic candles. Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${LOAD_DURATION:-60s}"
if [[ "${1:-}" == "--smoke" ]]; then DURATION="${LOAD_DURATION:-10s}"; fi
[[ "$DURATION" =~ ^[0-9]+s$ ]] || { echo "LOAD_DURATION is in seconds, e.g. 30s" >&2; exit 2; }
CONNECTIONS="${LOAD_CONNECTIONS:-64}"
WRK_THREADS="${LOAD_WRK_THREADS:-2}"
DB="${LOAD_DB:-tradingdash_load}"
PG="${LOAD_PG:-postgres://postgres@127.0.0.1:5432}"
OUT="${LOAD_OUT_DIR:-var/load}"
BIN=.venv/bin

command -v wrk >/dev/null || { echo "wrk is required (Debian/Ubuntu: apt-get install -y wrk)" >&2; exit 1; }

export DATABASE_URL="$PG/$DB"
export REDIS_URL="${LOAD_REDIS_URL:-redis://127.0.0.1:6379/11}"
export DEBUG=0 SECRET_KEY="load-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
export ALLOWED_HOSTS=127.0.0.1 MARKET_DATA_PROVIDER=synthetic CACHE_KEY_PREFIX=tradingdash-load
export METRICS_ALLOWED_IPS=127.0.0.1 ACCESS_TOKEN_EXPIRE_MINUTES=120
export LOG_LEVEL=INFO LOG_FORMAT=json
export GUNICORN_WORKERS="${LOAD_WORKERS:-3}" GUNICORN_THREADS="${LOAD_THREADS:-2}"
export TF_CPP_MIN_LOG_LEVEL=2 TF_ENABLE_ONEDNN_OPTS=0
PROMETHEUS_MULTIPROC_DIR="$(mktemp -d)"
export PROMETHEUS_MULTIPROC_DIR

flush_redis() {
  "$BIN/python" -c 'import os, redis; redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()'
}

mkdir -p "$OUT"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
flush_redis
"$BIN/python" manage.py migrate --noinput -v 0

# Data: 1H candles for TCS (about 3,500 bars: the historical request returns the latest 2,500), daily candles and
# 20 stored signals; a user and a JWT for wrk.
TOKEN="$("$BIN/python" manage.py shell -c '
from rest_framework_simplejwt.tokens import AccessToken
from accounts.models import User
from market.services import candles_sync
from market.timeframes import Timeframe
from market.models import MarketData
from signals.models import TradingSignal
from signals.services import signal_generate
candles_sync(symbol="TCS.NS", timeframe=Timeframe.H1, days=729)
candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900)
# One signal per closed bar (generating again on the same bar returns the stored one): the latest, and copies of
# it on the 19 bars before, so the list endpoint has 20 to serve.
signal = signal_generate(symbol="TCS.NS", timeframe=Timeframe.D1)
bars = MarketData.objects.filter(symbol="TCS.NS", timeframe="1D", final=True, timestamp__lt=signal.candle_timestamp)
for stamp in bars.order_by("-timestamp").values_list("timestamp", flat=True)[:19]:
    signal.pk, signal.candle_timestamp = None, stamp
    signal.save()
user = User.objects.create_user(username="loadtester", email="load@example.com", password="load-Password-4821")
print(AccessToken.for_user(user))
' 2>"$OUT/seed.log" | tail -n 1)"

PORT="$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
export GUNICORN_BIND="127.0.0.1:$PORT"
"$BIN/gunicorn" tradingdash.asgi:application --config tradingdash/gunicorn.conf.py >"$OUT/server.log" 2>&1 &
SERVER=$!
cleanup() {
  kill -TERM "$SERVER" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  rm -rf "$PROMETHEUS_MULTIPROC_DIR"
  flush_redis || true
}
trap cleanup EXIT INT TERM

for _ in $(seq 1 150); do
  curl -fs "$BASE/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$OUT/server.log"; exit 1; }
  sleep 0.2
done

declare -A URLS=(
  [quote]="/api/market/quote/TCS"
  [historical]="/api/market/historical/TCS?timeframe=1H&limit=2500"
  [signals]="/api/signals/TCS"
)
# Warm the caches (the endpoints under test are the cached paths) and check what they return.
for name in quote historical signals; do
  curl -fs -H "Authorization: Bearer $TOKEN" "$BASE${URLS[$name]}" >"$OUT/$name.json"
done
"$BIN/python" - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
assert json.load(open(f"{out}/historical.json"))["count"] == 2500
assert len(json.load(open(f"{out}/signals.json"))["results"]) == 20
assert json.load(open(f"{out}/quote.json"))["symbol"] == "TCS.NS"
PY

# Each worker keeps what it verified (token, user) and its one-second quote copy per process: one curl warms one
# worker, so every endpoint gets two unrecorded seconds of load first. Measured is the steady state.
for name in quote historical signals; do
  timeout 30 wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d 2s -H "Authorization: Bearer $TOKEN" "$BASE${URLS[$name]}" \
    >"$OUT/$name.warmup.txt"
done

echo "gunicorn: $GUNICORN_WORKERS uvicorn (ASGI) workers; wrk: $WRK_THREADS threads, $CONNECTIONS connections, $DURATION per endpoint"
echo "| endpoint | req/s | p50 ms | p99 ms | max ms | errors |"
echo "|---|---:|---:|---:|---:|---:|"
failed=0
for name in quote historical signals; do
  seconds="${DURATION%s}"
  line="$(timeout $((seconds + 30)) wrk --latency -t "$WRK_THREADS" -c "$CONNECTIONS" -d "$DURATION" --timeout 10s \
    -s load/report.lua -H "Authorization: Bearer $TOKEN" "$BASE${URLS[$name]}" | tee "$OUT/$name.wrk.txt" | grep '^{')"
  "$BIN/python" - "$name" "$line" <<'PY' || failed=1
import json, sys
name, r = sys.argv[1], json.loads(sys.argv[2])
rps = r["requests"] / (r["duration_us"] / 1e6)
print(f"| {name} | {rps:,.0f} | {r['p50_us'] / 1000:.1f} | {r['p99_us'] / 1000:.1f} | {r['max_us'] / 1000:.1f} | {r['errors']} |")
sys.exit(1 if r["errors"] or not r["requests"] else 0)
PY
done

# The counters of every worker add up in multiprocess mode: /metrics saw all the requests above.
curl -fs "$BASE/metrics" | grep -E '^django_http_responses_total_by_status_total\{status="200"\}' || failed=1
if grep -q "Traceback" "$OUT/server.log"; then
  echo "the server logged tracebacks: see $OUT/server.log" >&2
  failed=1
fi
exit "$failed"
