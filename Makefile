# Air Paradis Sentiment — the two commands a new user needs are `make up` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Training data: the shared Sentiment140 files beside the checkout, unless told otherwise.
export AIRPARADIS_TRAIN_DATA ?= $(abspath ../shared/data/sentiment140)
export AIRPARADIS_SHARED_DIR ?= $(abspath ../shared)
PYTEST_ARGS ?=

.PHONY: help install system-deps up test lint typecheck format bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install_k8s_tools.py airparadis/_fastpath.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(PY) scripts/install_k8s_tools.py
	touch $@

install: system-deps $(VENV)/.installed ## Create .venv with every extra, helm and kubectl

system-deps: ## PostgreSQL running on 127.0.0.1:5432 and Chromium (apt, as root)
	bash scripts/system_deps.sh

up: $(VENV)/.installed ## Train the baseline if needed, then serve it and the dashboard on loopback
	$(VENV)/bin/airparadis up

test: install ## Run the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(VENV)/.installed ## mypy --strict over the Python packages
	$(VENV)/bin/mypy

bench: system-deps $(VENV)/.installed ## Measure serving speed against a trivial model; writes docs/benchmarks.md
	$(PY) -m benchmarks.run --out docs/benchmarks.md
	$(PY) -m benchmarks.families --out docs/benchmarks.md
	$(PY) -m benchmarks.scoring --out docs/benchmarks.md

clean: ## Remove the embedded state (.airparadis) and caches
	rm -rf .airparadis .pytest_cache .mypy_cache .ruff_cache test-artifacts
