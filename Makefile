# RevExOS — the two commands: `make run` and `make test` (DESIGN.md §7).
# Django 6 needs Python 3.12+: use $PYTHON, else the first new-enough python3.13/python3.12/python3
# on the PATH or installed by pyenv.
PYTHON ?= $(shell for p in python3.13 python3.12 python3 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do \
  command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && echo $$p && break; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
TEST_WORKERS ?= 2
BENCH_ARGS ?=

.PHONY: run test lint format bench install system-deps clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "RevExOS needs Python 3.12 or newer (Django 6). Set PYTHON=/path/to/python3.12."; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# Debian packages the test suite needs: Chromium for browser tests, poppler for PDF pages, fonts.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils fonts-dejavu-core fonts-liberation2 >/dev/null; \
	  else echo "Install chromium and poppler-utils (browser and PDF tests need them)."; fi; \
	fi

run: $(STAMP)
	$(PY) -m revexos.devrun

# The whole suite in TEST_WORKERS processes (pytest-xdist): each has its own test database, Redis
# database and media folder, and runs its tests in the order of a serial run (conftest.py).
# TEST_WORKERS=0: one process.
test: $(STAMP) system-deps
	$(PY) -m revexos.embedded exec -- $(PY) -m pytest -n $(TEST_WORKERS) --dist load $(PYTEST_ARGS)

# Lint and format check (ruff, configured in pyproject.toml); `make format` rewrites.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) -m revexos.embedded exec -- $(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles test-artifacts
