# tradingdash: the two fresh-machine commands are `make run` and `make test` (see README, Quick start).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2
export TF_ENABLE_ONEDNN_OPTS ?= 0

.PHONY: run test venv lint format worker beat services bench e2e fuzz load audit check-compose bench-peer superuser

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.requirements: requirements.txt | $(BIN)/python
	$(BIN)/pip install --upgrade pip >/dev/null
	$(BIN)/pip install -r requirements.txt
	touch $@

venv: $(VENV)/.requirements

## run: set up and start the app (HTTP and the live stream ws://localhost:8000/ws/stream) on http://localhost:8000 (SQLite + local cache unless DATABASE_URL / REDIS_URL are set).
## Without a network, market data comes from the synthetic provider, recorded as source "synthetic".
run: venv
	DEBUG=$${DEBUG:-1} MARKET_DATA_PROVIDER=$${MARKET_DATA_PROVIDER:-synthetic} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} MARKET_DATA_PROVIDER=$${MARKET_DATA_PROVIDER:-synthetic} $(BIN)/python manage.py load_demo_data
	DEBUG=$${DEBUG:-1} MARKET_DATA_PROVIDER=$${MARKET_DATA_PROVIDER:-synthetic} $(BIN)/python manage.py backfill_predictions RELIANCE TCS --bars 60
	DEBUG=$${DEBUG:-1} MARKET_DATA_PROVIDER=$${MARKET_DATA_PROVIDER:-synthetic} $(BIN)/uvicorn tradingdash.asgi:application --reload --host 127.0.0.1 --port 8000 --lifespan off --ws-max-size 65536

## superuser: create the first admin user in the database `make run` uses (asks for a password; non-interactive
## with DJANGO_SUPERUSER_USERNAME / DJANGO_SUPERUSER_EMAIL / DJANGO_SUPERUSER_PASSWORD set).
superuser: venv
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput -v 0
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py createsuperuser $${DJANGO_SUPERUSER_PASSWORD:+--noinput}

## test: set up and run the whole suite against PostgreSQL and Redis (started if installed and not running).
test: venv services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

services:
	@bash .ci/services.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

worker: venv
	$(BIN)/celery -A tradingdash worker -Q default,ml,compute -l info

beat: venv
	$(BIN)/celery -A tradingdash beat -l info

## e2e: real Celery worker + beat + gunicorn against PostgreSQL and a private Redis, including fault tests.
e2e: venv services
	$(BIN)/python -m pytest e2e

bench: venv services
	bash bench/run.sh

## bench-peer: our hot read paths against the seed's stack (bench/peer/) side by side, with wrk (bench/README.md).
bench-peer: venv services
	bash bench/side_by_side.sh

fuzz: venv services
	bash scripts/fuzz.sh

load: venv services
	bash load/run.sh

audit: venv
	$(BIN)/bandit -r accounts market predictions signals tradingdash watchlists alerts stream charts -ll -x '*/tests/*' -q
	$(BIN)/pip-audit -r requirements.txt

check-compose:
	npx --yes dclint@3.1.0 docker-compose.yml
