# Two commands on a fresh machine: `make run` serves the API, `make test` runs the suite.
# Both create ./.venv and install the project into it first (only when pyproject.toml changed).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
IMAGE  ?= strands-session-backend:latest
COMPOSE ?= docker compose

.PHONY: install run test migrate lint format bench up down logs image clean container-test

$(STAMP): pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./client -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP) ## create ./.venv with the server, the client (./client) and the test extras

run: $(STAMP) ## serve the API (embedded database when DATABASE_URL is unset)
	$(PY) -m service

test: $(STAMP) ## the whole suite against real PostgreSQL
	sh tests/ui/ensure_chromium.sh
	$(PY) -m pytest

migrate: $(STAMP) ## apply migrations and exit
	$(PY) -m service migrate

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check service client tests bench tools
	$(VENV)/bin/ruff format --check service client tests bench tools
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format service client tests
	$(VENV)/bin/ruff check --fix service client tests

bench: $(STAMP) ## benchmark against same-run floors; writes bench/results.json
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
container-test: $(STAMP) ## build the image and smoke-test the compose stack for real
	$(PY) -m pytest -p no:cacheprovider -o addopts= --timeout=1800 -v -s tests/stack/check_stack.py

clean:
	rm -rf $(VENV) .data .pytest_cache
