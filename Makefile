# One command to set up and run, one to set up and test. Everything a fresh machine needs is here.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A GPU machine takes torch from the registry; a CPU machine the pinned CPU build (local disk here).
TORCH_PIN := torch==2.13.0

.PHONY: setup system run test lint bench clean

system:
	@command -v dot >/dev/null && command -v chromium >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz chromium postgresql >/dev/null) || \
	  echo "warning: could not apt-get install graphviz chromium postgresql (diagram/browser/PostgreSQL tests will be skipped)"

$(STAMP): pyproject.toml
	$(MAKE) system
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  $(BIN)/pip install -q 'torch>=2.4,<2.15'; else $(BIN)/pip install -q $(TORCH_PIN); fi
	$(BIN)/pip install -q -e '.[all,dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/workbench ui

test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -x --timeout=900 $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: setup
	@for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
