# Runbook Autopilot developer entry points.
#
# `make install` sets up everything a fresh Debian 12 machine needs (as root, or with sudo), and is a no-op
# when nothing changed: the Python and npm installs are keyed on hashes of their requirement files.
# `make demo` and `make test` depend on it, so those two commands are the whole set-up.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PG_BIN := /usr/lib/postgresql/15/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# A stamp per content hash: changing a requirements file (or pyproject.toml) reinstalls, nothing else does.
PY_HASH := $(shell cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)
PY_STAMP := $(VENV)/.stamp-$(PY_HASH)
NPM_HASH := $(shell cat package.json package-lock.json | sha256sum | cut -c1-16)
NPM_STAMP := node_modules/.stamp-$(NPM_HASH)
# The Lambda asset's wheels (arm64, fetched by infra.bundling into .cache/lambda-deps) so synth runs offline.
LAMBDA_HASH := $(shell cat requirements.txt | sha256sum | cut -c1-16)
LAMBDA_STAMP := .cache/.stamp-lambda-deps-$(LAMBDA_HASH)

MYPY_PATHS := functions runbook infra app.py scripts
PYTEST_ARGS ?= -n 2
DEMO_ARGS ?= --event events/alarm-sales-service-5xx.json --scenario bad-deploy

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export DEBIAN_FRONTEND := noninteractive

.PHONY: help install system-deps demo test lint format synth cdk-synth bench docs clean distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: system-deps $(PY_STAMP) $(NPM_STAMP) $(LAMBDA_STAMP)  ## set up everything (idempotent): Debian packages, .venv, node_modules, Lambda wheels

# Debian packages, installed only when missing; `apt-get update` at most once, and only if needed.
system-deps:
	@missing=""; \
	[ -x $(PG_BIN)/pg_ctl ] || missing="$$missing postgresql postgresql-contrib"; \
	[ -x $(PY) ] || $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi; \
	command -v kubectl >/dev/null \
	  || echo "note: kubectl is not on the PATH; the kubectl differential tests will skip"

$(PY_STAMP):
	@echo "==> Python environment in $(VENV)"
	[ -x $(PY) ] || { $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "Python 3.11+ is required; $(PYTHON) is $$($(PYTHON) --version)"; exit 1; }; \
	  $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --progress-bar off --upgrade pip
	$(PY) -m pip install -q --progress-bar off -r requirements-dev.txt -e .
	rm -f $(VENV)/.stamp-*
	touch $@

$(NPM_STAMP):
	@echo "==> npm dev tools in node_modules"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(LAMBDA_STAMP): | $(PY_STAMP)
	@echo "==> Lambda dependencies for the CDK asset"
	$(PY) -m infra.bundling
	rm -f .cache/.stamp-lambda-deps-*
	touch $@

demo: install  ## run the P1 service-down runbook in the sandbox on the bad-deploy scenario
	$(VENV)/bin/runbook run p1-service-down $(DEMO_ARGS)

# A lint failure still fails `make test`, but after the suite has run: one CI run reports both.
test: install  ## lint, then the whole test suite
	@lint=0; $(MAKE) --no-print-directory lint || lint=$$?; \
	[ $$lint -eq 0 ] || echo "==> lint failed (above); running the tests anyway, make test will fail"; \
	echo "$(PY) -m pytest $(PYTEST_ARGS)"; \
	$(PY) -m pytest $(PYTEST_ARGS) && [ $$lint -eq 0 ]

lint: install  ## ruff check, ruff format --check, mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(MYPY_PATHS)

format: install  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

synth: install  ## synthesize the CDK app with Python (offline)
	$(PY) app.py

cdk-synth: install  ## synthesize through the CDK CLI
	npx --no-install cdk synth --no-notices $(if $(wildcard cdk.json),,--app "$(PY) app.py") >/dev/null
	@echo "==> templates in cdk.out/"

bench: install  ## run every benchmark in bench/
	@for f in bench/*.py; do echo "==> $$f"; $(PY) "$$f"; done

docs: install  ## regenerate the ASL diagrams in docs/runbooks/*.md and README.md
	$(PY) scripts/gen_docs.py

clean:  ## remove caches and build output (keeps .venv and node_modules)
	rm -rf cdk.out .sandbox .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -path ./.venv -prune -o -path ./node_modules -prune -o -name __pycache__ -type d -print0 \
	  | xargs -0 rm -rf

distclean: clean  ## also remove .venv, node_modules and .cache (the Lambda wheels)
	rm -rf $(VENV) node_modules .cache
