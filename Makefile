# intentrank: `make run` sets everything up and runs the main job; `make test` sets up and runs the tests.
# Set-up is idempotent: the virtual environment is rebuilt only when pyproject.toml or requirements.lock change.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-tools run test lint bench clean

# Debian tools the tests and benchmarks drive: a headless browser (page and report screenshots) and a load
# generator. Installed with apt-get when missing (needs root, or sudo without a password).
SYSTEM_TOOLS := chromium chromedriver wrk
system-tools:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo -n"; \
	  else echo "error: need root (or sudo) to apt-get install chromium chromium-driver wrk" >&2; exit 2; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    chromium chromium-driver wrk >/dev/null; \
	fi

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

test: setup system-tools lint
	$(BIN)/pytest -q -p no:cacheprovider

bench: setup
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
