# Two commands on a fresh machine: `make run` serves the API, `make test` runs the suite.
# Each creates ./.venv and installs what it needs first, and only that: `make run` what serving
# needs, `make test` adds the test tools, `make bench` the benchmark tools. Each install runs
# again only when pyproject.toml (or client/pyproject.toml) changed.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --disable-pip-version-check --progress-bar off
SERVE_STAMP := $(VENV)/.serve-stamp
TEST_STAMP  := $(VENV)/.test-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
IMAGE  ?= strands-session-backend:latest
COMPOSE ?= docker compose

.PHONY: install run test migrate lint format bench up down logs image clean container-test

$(PY):
	@echo "==> Creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)

$(SERVE_STAMP): pyproject.toml | $(PY)
	@echo "==> Installing the service and what serving needs into $(VENV) (first time: under a minute)"
	$(PIP) -e .
	@touch $@

$(TEST_STAMP): pyproject.toml client/pyproject.toml $(SERVE_STAMP)
	@echo "==> Installing the client (./client, with strands-cli) and the test tools (pytest, schemathesis, ruff, mypy, ...) into $(VENV)"
	$(PIP) -e ./client -e '.[test]'
	@touch $@

$(BENCH_STAMP): pyproject.toml client/pyproject.toml $(SERVE_STAMP)
	@echo "==> Installing the client (./client) and the benchmark tools (matplotlib, py-spy, ...) into $(VENV)"
	$(PIP) -e ./client -e '.[bench]'
	@touch $@

install: $(TEST_STAMP) $(BENCH_STAMP) ## create ./.venv with the server, the client (./client, strands-cli), test and bench tools

run: $(SERVE_STAMP) ## serve the API (embedded database when DATABASE_URL is unset)
	@$(PY) -m service

test: $(TEST_STAMP) $(BENCH_STAMP) ## the whole suite against real PostgreSQL (its bench smoke test too)
	sh tests/ui/ensure_chromium.sh
	$(PY) -m pytest

migrate: $(SERVE_STAMP) ## apply migrations and exit
	@$(PY) -m service migrate

lint: $(TEST_STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check service client tests bench tools
	$(VENV)/bin/ruff format --check service client tests bench tools
	$(VENV)/bin/mypy

format: $(TEST_STAMP)
	$(VENV)/bin/ruff format service client tests
	$(VENV)/bin/ruff check --fix service client tests

bench: $(BENCH_STAMP) ## benchmark against same-run floors; writes bench/results.json
	$(PY) -m bench

up: ## start postgres, migrations and the API with Docker Compose; waits until healthy
	$(COMPOSE) up -d --wait

down: ## stop the stack (the postgres-data volume stays)
	$(COMPOSE) down

logs: ## follow the stack's logs
	$(COMPOSE) logs -f --tail=100

image: ## build the service image
	docker build -t $(IMAGE) .

# As root, with rootful podman from Debian (installed when missing); tests/stack/check_stack.py
# says which host workarounds it applies and why.
container-test: $(TEST_STAMP) ## build the image and smoke-test the compose stack for real
	$(PY) -m pytest -p no:cacheprovider -o addopts= --timeout=1800 -v -s tests/stack/check_stack.py

clean:
	rm -rf $(VENV) .data .pytest_cache
