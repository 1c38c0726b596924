# intentrank: `make run` sets everything up and runs the main job; `make test` sets up and runs the tests.
# Set-up is idempotent: the virtual environment is rebuilt only when pyproject.toml or requirements.lock change.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/intentrank run

lint: setup
	$(BIN)/ruff check src tests bench scripts

test: setup lint
	$(BIN)/pytest -q -p no:cacheprovider

bench: setup
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
