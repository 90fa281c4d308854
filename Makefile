# One command runner. `make test` and `make run` set up everything they need.
SHELL := /bin/bash
PYTHON ?= $(shell scripts/find-python.sh)
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TOOLS_STAMP := $(TOOLS)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# openapi.json is generated from the resolvers; a test fails when it drifts.
.PHONY: openapi
openapi: venv
	$(PY) -m jobtracker_local.openapi > openapi.json

.PHONY: help venv tools browser-deps test test-fast unit integration infra e2e contract lint format validate build run bench clean

help:
	@echo "make run       # start the local stack (moto + local ECS + API) and run the demo"
	@echo "make test      # set up and run every test tier (unit, integration, infra, e2e)"
	@echo "make contract  # Schemathesis: every route's answers against openapi.json, on the local stack"
	@echo "make lint      # ruff (lint + format check) and mypy"
	@echo "make validate  # sam validate --lint, cfn-lint, hadolint on worker/Dockerfile"
	@echo "make build     # sam build (no container needed)"
	@echo "make openapi   # regenerate openapi.json from the API's routes and models"
	@echo "make bench     # cold start, AWS calls per event, cost per job, index write spread,"
	@echo "               # timeouts to the second, a burst at the account's limits, the local stack"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# setuptools warns on every editable install that a folder named like a package could shadow
	# it (none does here): the only line a first `make run` would print before the banner.
	PYTHONWARNINGS=ignore $(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# SAM CLI, cfn-lint and hadolint pin boto3/pydantic/etc.: kept apart from the app's venv.
$(TOOLS_STAMP): requirements-tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --upgrade pip
	$(TOOLS)/bin/python -m pip install -q -r requirements-tools.txt
	touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

# The console's browser tests drive Debian's Chromium; installed here when missing (as root).
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q chromium chromium-driver >/dev/null \
	  || (apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null); \
	else echo "browser tests need: sudo apt-get install chromium chromium-driver"; fi

test: venv tools browser-deps
	$(PY) -m pytest -q -n 2 --dist loadgroup tests

test-fast: venv
	$(PY) -m pytest -q -n 2 tests/unit tests/integration

unit: venv
	$(PY) -m pytest -q tests/unit

integration: venv
	$(PY) -m pytest -q tests/integration

infra: venv tools
	$(PY) -m pytest -q tests/infra

e2e: venv
	$(PY) -m pytest -q tests/e2e

# Schemathesis against the local stack from openapi.json (bounded: about a minute on 2 cores).
contract: venv
	$(PY) -m pytest -q tests/contract

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/common/jobtracker worker/jobtracker_worker local/jobtracker_local client/jobtracker_client console/jobtracker_console functions bench

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

validate: tools
	$(TOOLS)/bin/sam validate --lint -t template.yaml
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/hadolint --failure-threshold warning worker/Dockerfile

build: tools
	PATH="$$(dirname $(PYTHON)):$$PATH" $(TOOLS)/bin/sam build

run: venv
	$(PY) -m jobtracker_local.main --demo fresh $(ARGS)

# Every bench runs, whichever missed its target (each exits non-zero then): one that misses
# must not hide the figures of the ones after it; `make bench` fails at the end if any did.
BENCHES = \
	"coldstart.py" \
	"events.py" \
	"cost.py" \
	"scale.py" \
	"deadlines.py --jobs 100" \
	"burst.py --jobs 1000" \
	"local.py --jobs 300" \
	"local.py --jobs 1000 -- --ecs-launch-rate 50 --ecs-launch-burst 100" \
	"array_jobs.py --metered 500 --size 10000" \
	"deps.py --metered 200 --jobs 1000"

bench: venv
	@missed=""; for b in $(BENCHES); do \
		echo "== bench/$$b"; $(PY) bench/$$b || missed="$$missed, $$b"; \
	done; \
	if [ -n "$$missed" ]; then echo "targets missed by: $${missed#, }"; exit 1; fi

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .mypy_cache .ruff_cache
