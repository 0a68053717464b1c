# One task runner: CI calls these targets verbatim (see .ci/run).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

install: $(VENV)/.installed ## create .venv and install flowservice

run: $(VENV)/.installed ## migrate and serve API + UI + workers + scheduler on SQLite and a local lake
	$(BIN)/flowservice db upgrade
	$(BIN)/flowservice serve --dev --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test ## install test dependencies and run every test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

FUZZ_EXAMPLES ?= 500

fuzz: $(VENV)/.installed-test ## schemathesis on every operation, FUZZ_EXAMPLES per operation (long; make test runs 6)
	FLOWSERVICE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -s tests/api/test_fuzz.py $(PYTEST_ARGS)

CODE := src tests $(wildcard bench)

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@touch $@

bench: $(VENV)/.installed-bench ## run the benchmarks (minutes; results go to BENCHMARKS.md by hand)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/runs_api.py --backend both
	$(BIN)/python bench/ui_pages.py --backend both --reuse
	$(BIN)/python bench/scheduler.py --backend both
	$(BIN)/python bench/scale.py

screenshots: $(VENV)/.installed-test ## re-take docs/screenshots/ from the browser test's real runs
	FLOWSERVICE_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/ui/test_browser.py

lint: $(VENV)/.installed-test ## ruff + mypy
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy

format: $(VENV)/.installed-test ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix $(CODE)
	$(BIN)/ruff format $(CODE)

clean: ## remove the venv and local data
	rm -rf $(VENV) .flowservice .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install run test fuzz bench screenshots lint format clean
