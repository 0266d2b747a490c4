# CI/CD Failure Orchestrator: `make demo`, `make test`, `make lint`, `make bench-*`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENARIOS ?= ../shared/scenarios
CIDIFF ?= ../shared/datasets/cidiff

.PHONY: venv demo test test-unit test-integration lint bench-fixrate bench-logs bench-load clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	$(BIN)/pytest -q tests

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit tests/dags

test-integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

lint: $(STAMP)
	$(BIN)/ruff check include dags plugins tests bench scripts
	$(BIN)/ruff format --check include dags plugins tests bench scripts
	$(BIN)/mypy

bench-fixrate: $(STAMP)
	$(BIN)/python bench/bench_fixrate.py $(SCENARIOS)

bench-load: $(STAMP)
	$(BIN)/python bench/bench_load.py --sessions $(or $(SESSIONS),50)

bench-logs: $(STAMP)
	$(BIN)/python bench/bench_logs.py --dataset $(CIDIFF)

clean:
	rm -rf $(VENV) .airflow var bench/results
