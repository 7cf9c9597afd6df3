# sales_assets: every target works from a fresh clone (Python 3.11+, Java 17+, make).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export SALES_DATA_DIR ?= $(CURDIR)/.data

.PHONY: run test test-fast test-system test-ui lint screenshot dev env stop bench clean spark-cluster spark-cluster-stop

# installing talks on stderr only: `eval "$(make -s env)"` reads stdout, also on a fresh clone
$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "no $(PYTHON) on PATH; sales_assets needs Python 3.11+: install it, or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(PYTHON) -m sales_assets.prerequisites  # Python 3.11+ and Java 17+, before creating anything
	test -x $(PY) || $(PYTHON) -m venv $(VENV) >&2
	$(PY) -m pip install --quiet --upgrade pip >&2
	$(PY) -m pip install --quiet -e '.[dev]' >&2
	$(PY) -m sales_assets jvm-archive >&2 || echo "warning: no JVM class archive; Spark will start a few seconds slower" >&2
	touch $@

run: $(VENV)/.installed ## materialize the whole graph once at SALES_ROWS
	$(PY) -m sales_assets run $(if $(V),-v)

test: $(VENV)/.installed ## unit + integration tiers in one process, against real PostgreSQL and the real ClickHouse engine
	$(PY) -m pytest -m "not system and not ui" $(PYTEST_ARGS)

test-fast: $(VENV)/.installed ## the unit tier (transforms, URLs, settings, definitions), under 90 s
	$(PY) -m pytest -m "not integration and not system and not ui" $(PYTEST_ARGS)

test-system: $(VENV)/.installed ## what needs processes of its own: kills, two runs at once, the daemon, make, the servers, the bench
	$(PY) -m pytest -m system $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff: lint, and the formatting check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-ui: $(VENV)/.installed ## the UI in headless Chromium (needs Debian's chromium package)
	$(PY) -m pytest -m ui $(PYTEST_ARGS)

screenshot: $(VENV)/.installed ## refresh the screenshots in docs/ (lineage, asset page, plots, checks) from the UI test
	SALES_UI_SCREENSHOT_DIR=$(CURDIR)/docs $(PY) -m pytest -m ui $(PYTEST_ARGS)

dev: $(VENV)/.installed ## the Dagster UI on this code location
	$(PY) -m sales_assets dev

ROWS ?= 1000000
bench: $(VENV)/.installed ## benchmark at ROWS (default 1M) vs a typical per-row pipeline; writes bench/results.json
	$(PY) bench/bench.py --rows $(ROWS) $(BENCH_ARGS)

env: $(VENV)/.installed ## effective SALES_PG_URL / SALES_CH_URL / SALES_SPARK_REMOTE, for eval
	@$(PY) -m sales_assets env

stop: $(VENV)/.installed ## stop the embedded dev services: PostgreSQL and the Spark Connect server
	$(PY) -m sales_assets stop

spark-cluster: $(VENV)/.installed ## a one-worker Spark standalone cluster on 127.0.0.1:7077
	$(PY) -m sales_assets spark-cluster

spark-cluster-stop: $(VENV)/.installed
	$(PY) -m sales_assets spark-cluster-stop

clean: stop spark-cluster-stop
	rm -rf $(SALES_DATA_DIR)
