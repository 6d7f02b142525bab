# newsmon task runner. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DB ?= data/newsmon.duckdb

# Prefect runs a temporary local server when no PREFECT_API_URL is set; keep it quiet and offline.
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_LOGGING_LEVEL ?= CRITICAL
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 60
export PREFECT_LOGGING_SETTINGS_PATH ?= $(CURDIR)/config/prefect-logging.yml

.DEFAULT_GOAL := help
.PHONY: help setup browser package-prepare screenshots run demo test lint docs package-check bench bench-dask bench-ducklake bench-extract model lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 is required (python3.11 not found)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install pinned dependencies (idempotent)

# Debian's Chromium and ChromeDriver, for the reading room's browser tests (tests/web/test_browser.py)
BROWSER_PACKAGES := chromium chromium-driver
browser: ## install Debian's chromium and chromium-driver if missing (apt-get; root or sudo)
	@command -v chromedriver >/dev/null && command -v chromium >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  export DEBIAN_FRONTEND=noninteractive; \
	  echo "installing Debian's $(BROWSER_PACKAGES) (the browser tests drive them)"; \
	  $$sudo apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null 2>&1 || \
	  { $$sudo apt-get update -qq >/dev/null && $$sudo apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; } || \
	  { echo "could not install $(BROWSER_PACKAGES): run, as root, apt-get install $(BROWSER_PACKAGES)"; exit 1; }; }

run: setup ## load the baseline and ingest the default feeds once into $(DB)
	$(BIN)/newsmon init --db $(DB)
	$(BIN)/newsmon run --db $(DB)

demo: setup ## offline demo: serve the bundled sample on 127.0.0.1, ingest it, query it
	NEWSMON_ALLOW_PRIVATE_NETWORKS=true $(BIN)/newsmon demo

TEST_WORKERS ?= 2
test: setup browser ## run the test suite (on TEST_WORKERS processes; TEST_WORKERS=0: in this one)
	$(BIN)/python -m pytest -q --durations=25 -n $(TEST_WORKERS) --dist loadscope

screenshots: setup browser ## the reading room's pages, photographed by the browser test, into docs/screenshots/
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider tests/web/test_browser.py

lint: setup ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

docs: setup ## regenerate docs/cli.md from the commands' --help
	$(BIN)/python docs/generate_cli.py

package-check: ## build the wheel, install it in a fresh venv, run init/demo/eval from an empty folder
	bash .ci/package-check

package-prepare: ## only build and install package-check's wheel and venv (under $TMPDIR), for CI
	bash .ci/package-check prepare

bench: setup ## end-to-end pipeline benchmark, 40 feeds x 50 items (see benchmarks/README.md)
	$(BIN)/python -m benchmarks.pipeline

bench-dask: setup ## the same with NEWSMON_TASK_RUNNER=dask (a local 2-process Dask cluster)
	$(BIN)/python -m benchmarks.pipeline --runner dask

bench-ducklake: setup ## the same into a DuckLake warehouse (SQLite catalog, Parquet files)
	$(BIN)/python -m benchmarks.pipeline --warehouse ducklake

bench-extract: setup ## extraction alone over the real corpus pages (benchmarks/extract.py)
	$(BIN)/python benchmarks/extract.py

CORPUS ?= ../shared/corpus/labelled
model: setup ## retrain the shipped relevance model from the shared labelled corpus (docs/topics.md)
	$(BIN)/newsmon train --no-labels --new-language-basis \
		--data $(CORPUS)/items.jsonl --data $(CORPUS)/feeds2.jsonl \
		--data $(CORPUS)/fulltext_negatives.jsonl

lock: setup ## regenerate constraints.txt from the current .venv (keep the header by hand)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^newsmon' > constraints.new && echo "wrote constraints.new: merge it into constraints.txt"

clean: ## remove the venv, caches and local data
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .prefect data
