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
# Images: Debian's docker client (BuildKit built in; `RUN --mount` needs it), tagged IMAGE_TAG.
DOCKER ?= /usr/bin/docker
IMAGE_TAG ?= dev
# Empty: the upstream python image when the daemon has or can pull it, else a local bookworm
# base (scripts/base_image.sh). Set it to build FROM another image.
PYTHON_IMAGE ?=
# Build inputs of machines without direct internet access, used when present, never baked in:
# pip's CA bundle and extra constraints (build secrets), local wheels such as the CPU torch
# wheel (an image bind-mounted as pip's --find-links; then no PyTorch index is asked).
CA_BUNDLE ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)
PIP_EXTRA_CONSTRAINTS ?= $(wildcard /etc/xdg/pip/constraints.txt)
WHEEL_DIR ?= $(wildcard /opt/wheels)

.PHONY: help install system-deps up images test test-fast lint typecheck format bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# setuptools says on every build that `[tool.setuptools.ext-modules]` (the optional compiled
# cleaner) is experimental; the backend range pinned in pyproject.toml supports it, so that one
# warning, matched by its text, is not printed. Any other warning still is.
EXT_MODULES_WARNING := ignore:`[tool.setuptools.ext-modules]` in `pyproject.toml` is still
# A machine's pip configuration may list local file:// indexes (extra-index-url) that hold only
# some packages; pip then warns once per package such an index lacks, though another index
# serves it. Those lines alone are dropped (pip's exit status is kept); any other still shows.
PIP_NOT_IN_FILE_INDEX := ^WARNING: Location 'file://[^']*' is ignored: it is neither a file nor a directory\.$$
QUIET_PIP = 2>&1 | { grep -v "$(PIP_NOT_IN_FILE_INDEX)" || true; }

$(VENV)/.installed: pyproject.toml constraints.txt scripts/install_k8s_tools.py airparadis/_fastpath.c
	$(PYTHON) -m venv $(VENV)
	set -o pipefail; $(PY) -m pip install --quiet --upgrade pip $(QUIET_PIP)
	set -o pipefail; PYTHONWARNINGS='$(EXT_MODULES_WARNING)' \
	  $(PY) -m pip install --quiet -c constraints.txt -e ".[dev]" $(QUIET_PIP)
	$(PY) scripts/install_k8s_tools.py
	touch $@

install: system-deps $(VENV)/.installed ## Create .venv with every extra, helm and kubectl

system-deps: ## PostgreSQL running on 127.0.0.1:5432 and Chromium (apt, as root)
	bash scripts/system_deps.sh

up: $(VENV)/.installed ## Train the baseline if needed, then serve it and the dashboard on loopback
	$(VENV)/bin/airparadis up

images: ## Build the serving, training and dashboard images (BuildKit, cached layers)
	@set -euo pipefail; \
	base="$(PYTHON_IMAGE)"; [ -n "$$base" ] || base=$$(DOCKER=$(DOCKER) bash scripts/base_image.sh); \
	args=(--network=host --build-arg "PYTHON_IMAGE=$$base"); \
	[ -z "$(CA_BUNDLE)" ] || args+=(--secret "id=cacert,src=$(CA_BUNDLE)"); \
	[ -z "$(PIP_EXTRA_CONSTRAINTS)" ] || args+=(--secret "id=pipconstraints,src=$(PIP_EXTRA_CONSTRAINTS)"); \
	training=(); \
	if [ -n "$(WHEEL_DIR)" ]; then \
	  wheels=airparadis-wheels:$$(ls -l --time-style=+%s "$(WHEEL_DIR)" | sha256sum | cut -c1-12); \
	  $(DOCKER) image inspect "$$wheels" >/dev/null 2>&1 \
	    || tar -C "$(WHEEL_DIR)" -c . | $(DOCKER) import --message "wheels of $(WHEEL_DIR)" - "$$wheels" >/dev/null; \
	  training=(--build-arg "WHEELS_IMAGE=$$wheels" --build-arg TORCH_INDEX_URL=); \
	fi; \
	for spec in model_server:airparadis-model-server dashboard:airparadis-dashboard training_jobs:airparadis-training; do \
	  dir=$${spec%%:*}; name=$${spec#*:}; extra=(); [ "$$dir" != training_jobs ] || extra=("$${training[@]}"); \
	  echo "images: $$name:$(IMAGE_TAG) from $$dir/Dockerfile on $$base"; \
	  log=test-artifacts/images/$$name.log; mkdir -p "$${log%/*}"; \
	  DOCKER_BUILDKIT=1 $(DOCKER) build --progress=plain "$${args[@]}" "$${extra[@]}" \
	    -f "$$dir/Dockerfile" -t "$$name:$(IMAGE_TAG)" . >"$$log" 2>&1 \
	    || { tail -40 "$$log" >&2; echo "images: $$name failed, full log in $$log" >&2; exit 1; }; \
	done; \
	$(DOCKER) image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^airparadis-(model-server|dashboard|training):$(IMAGE_TAG) '

test: install ## Run the whole test suite
	$(PY) -m pytest --durations=25 $(PYTEST_ARGS)

test-fast: $(VENV)/.installed ## The edit loop: no browser, PostgreSQL, containers, builds or slow tests
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest -m "not slow and not postgres and not browser and not containers and not build" $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff lint and format check, and the import layers (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(VENV)/.installed ## mypy --strict over the Python packages
	$(VENV)/bin/mypy

bench: system-deps $(VENV)/.installed ## Measure serving speed against a trivial model, and the images; writes docs/benchmarks.md
	$(PY) -m benchmarks.run --out docs/benchmarks.md
	$(PY) -m benchmarks.families --out docs/benchmarks.md
	$(PY) -m benchmarks.scoring --out docs/benchmarks.md
	$(PY) -m benchmarks.images --out docs/benchmarks.md
	$(PY) -m benchmarks.feedback_load --out docs/benchmarks.md
	$(PY) -m benchmarks.soak --out docs/benchmarks.md
	$(PY) -m benchmarks.domain --out docs/benchmarks.md
	$(PY) -m benchmarks.grpc_rest --out docs/benchmarks.md

clean: ## Remove the embedded state (.airparadis) and caches
	rm -rf .airparadis .pytest_cache .mypy_cache .ruff_cache test-artifacts
