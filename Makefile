# Whistle — everything needs only Python 3.11+ and make. The first target that needs
# the environment builds it inside the checkout: .tools/ holds a pinned uv, .venv/ the
# project's locked dependencies (uv.lock).
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# `make token USER=x` (USER from the environment is the login name: only an explicit one counts)
USER_ARG = $(if $(filter command line,$(origin USER)),$(USER),)

.PHONY: up test test-fast test-faults lint bench bench-e2e install browser-deps clean-data help token

help:
	@echo "make up     start the whole system on the embedded default, with demo data (Ctrl-C stops it)"
	@echo "make test   run every test (unit, component, end-to-end)"
	@echo "make test-faults   the fault-injection suite: load, kills, broker and database faults, poison"
	@echo "make lint   ruff (rules, format), mypy and the import-layer contracts (make test runs them too)"
	@echo "make bench  run the benchmarks and print figures (board, inbox and KPI queries at"
	@echo "            10k/100k/1M cases; BENCH_QUERIES_ARGS='--sizes 10000,100000 --runs 5')"
	@echo "make bench-e2e   the whole stack under load (25..400 cases/s, 30 s each, and a closed loop)"
	@echo "                 against this machine's floor; BENCH_E2E_ARGS='--rates 10,25 --seconds 10'"
	@echo "make token USER=wangfang   print a bearer token for a demo user"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --all-extras --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

# The browser tests drive Debian's chromium (Playwright's own browser download is not
# reachable here) and need CJK fonts to draw Chinese. Installed once, as root or with sudo.
CHROMIUM ?= /usr/bin/chromium
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser-deps:
	@if [ ! -x "$(CHROMIUM)" ] || [ ! -f "$(CJK_FONT)" ]; then \
	  echo "Installing chromium and fonts-noto-cjk (apt-get) for the browser tests..."; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    chromium fonts-noto-cjk >/dev/null; fi

up: install
	$(PY) -m stack up

test: install browser-deps
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -p no:cacheprovider -m "not e2e" $(PYTEST_ARGS)

test-faults: install
	$(PY) -m pytest -p no:cacheprovider tests/faults $(PYTEST_ARGS)

# The static checks on their own (make test runs them too, as tests/contract).
lint: install
	$(VENV)/bin/ruff check shared services stack tests web bench
	$(VENV)/bin/ruff format --check shared services stack tests web bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

token: install
	@$(PY) -m stack token $(USER_ARG)

bench: install
	$(PY) -m bench
	$(PY) -m bench.timers
	$(PY) -m bench.queries $(BENCH_QUERIES_ARGS)

bench-e2e: install
	$(PY) -m bench.e2e $(BENCH_E2E_ARGS)

clean-data:
	rm -rf .data
