#!/usr/bin/env bash
# Fuzz the live API with schemathesis, driven by our own OpenAPI schema (/api/schema): every operation gets up to
# FUZZ_EXAMPLES generated requests per phase (schema examples, boundary "coverage" values, random valid and invalid
# data, method/auth mutations), sent with a staff user's JWT, and `--checks all` must pass: no 5xx, only documented
# statuses, bodies and headers matching the schema, valid input accepted and invalid input refused. The few rules a
# JSON schema cannot state are listed, with reasons, in scripts/schemathesis.toml.
#
# It runs gunicorn on a free loopback port against a fresh database (FUZZ_DB, dropped and re-created) and its own
# Redis database, with the synthetic market data provider. Celery sends tasks to that Redis with no worker
# listening, so the training endpoints only enqueue (202) and nothing trains during the run. The server is always
# stopped, and a traceback in its log fails the run.
#
#   scripts/fuzz.sh                                   # 100 examples per operation and phase, ~2 minutes on 2 cores
#   FUZZ_EXAMPLES=20 FUZZ_SEED=7 scripts/fuzz.sh      # quicker / another seed
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES="${FUZZ_EXAMPLES:-100}"
SEED="${FUZZ_SEED:-1}"
DB="${FUZZ_DB:-tradingdash_fuzz}"
PG="${FUZZ_PG:-postgres://postgres@127.0.0.1:5432}"
REPORT_DIR="${FUZZ_REPORT_DIR:-var/fuzz}"
BIN=.venv/bin

export DATABASE_URL="$PG/$DB"
export REDIS_URL="${FUZZ_REDIS_URL:-redis://127.0.0.1:6379/13}"
export CELERY_BROKER_URL="$REDIS_URL" CELERY_TASK_ALWAYS_EAGER=0
export DEBUG=0 SECRET_KEY="fuzz-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
export ALLOWED_HOSTS=127.0.0.1 MARKET_DATA_PROVIDER=synthetic CACHE_KEY_PREFIX=tradingdash-fuzz
# One client sending thousands of requests: lift the rate limits (the suite tests them).
export AUTH_THROTTLE_RATE=1000000/minute GENERATION_THROTTLE_RATE=1000000/minute
export LOG_LEVEL="${FUZZ_LOG_LEVEL:-WARNING}" LOG_FORMAT=console
export TF_CPP_MIN_LOG_LEVEL=2 TF_ENABLE_ONEDNN_OPTS=0

flush_redis() {
  "$BIN/python" -c 'import os, redis; redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()'
}

psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
flush_redis
"$BIN/python" manage.py migrate --noinput -v 0

PORT="$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
mkdir -p "$REPORT_DIR"
# --limit-request-line 0: fuzzed query strings run to tens of KB; gunicorn's default 4 KB limit would answer
# them itself with an HTML 414 before Django sees them (a transport limit, not part of the API).
"$BIN/gunicorn" tradingdash.asgi:application --config tradingdash/gunicorn.conf.py \
  --bind "127.0.0.1:$PORT" --workers 2 --threads 2 --timeout 60 --limit-request-line 0 \
  >"$REPORT_DIR/server.log" 2>&1 &
SERVER=$!
cleanup() {
  kill -TERM "$SERVER" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  flush_redis || true
}
trap cleanup EXIT INT TERM

for _ in $(seq 1 100); do
  curl -fs "$BASE/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$REPORT_DIR/server.log"; exit 1; }
  sleep 0.2
done

# A staff user, so the staff-only operations are fuzzed past their permission check too.
TOKEN="$("$BIN/python" - "$BASE" <<'PY'
import subprocess, sys, requests
base = sys.argv[1]
user = {"username": "fuzzer", "email": "fuzzer@example.com", "password": "fuzz-Password-9137"}
requests.post(f"{base}/api/auth/register", json=user, timeout=10).raise_for_status()
promote = "from accounts.models import User; User.objects.filter(username='fuzzer').update(is_staff=True)"
subprocess.run([sys.executable, "manage.py", "shell", "-c", promote], check=True, capture_output=True)
login = requests.post(f"{base}/api/auth/login", json={k: user[k] for k in ("username", "password")}, timeout=10)
login.raise_for_status()
print(login.json()["access"])
PY
)"

status=0
# One worker: schemathesis' coverage phase parses Python source (hypothesis' lambda descriptions), which fails
# under concurrent threads on CPython 3.11 ("AST constructor recursion depth mismatch").
"$BIN/schemathesis" --config-file scripts/schemathesis.toml run "$BASE/api/schema" \
  --checks all \
  --max-examples "$EXAMPLES" \
  --seed "$SEED" \
  --workers 1 \
  --request-timeout 20 \
  --header "Authorization: Bearer $TOKEN" \
  --report junit --report-dir "$REPORT_DIR" \
  --output-truncate true \
  --no-color || status=$?

if grep -q "Traceback" "$REPORT_DIR/server.log"; then
  echo "the server logged tracebacks: see $REPORT_DIR/server.log" >&2
  status=1
fi
exit "$status"
