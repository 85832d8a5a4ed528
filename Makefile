# Everything installs itself: on a machine with only python3, uv is bootstrapped into .tools/.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
export UV_FROZEN := 1
# Installed packages get their bytecode at install time: a machine that sets PYTHONDONTWRITEBYTECODE (this one
# does) otherwise compiles every module from source in every process, ~4 s more per `import dagster`.
export UV_COMPILE_BYTECODE := 1
export DAGSTER_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1

UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
RUN := $(UV) run --frozen
DBT_FLAGS := --project-dir dbt_project --profiles-dir dbt_project
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' \) -not -path '*/target/*' -not -path '*/logs/*' 2>/dev/null)

.PHONY: help setup manifest demo test test-postgres lint format run dev docs bench bench-push clean browser postgres

help:
	@echo "make demo   run the whole nightly job end to end on local stand-ins and print a summary"
	@echo "make test   lint (ruff, sqlfluff) and run every test"
	@echo "make test-postgres   the dbt project on a throwaway PostgreSQL server, compared with DuckDB (also in make test)"
	@echo "make dev    the Dagster UI on http://127.0.0.1:3000 (dagster dev -w workspace.yaml)"
	@echo "make docs   the dbt docs (models, columns, tests, lineage) on http://127.0.0.1:$(DOCS_PORT)"

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen
	@touch $@

setup: .venv/.synced

$(MANIFEST): .venv/.synced $(DBT_SOURCES)
	$(RUN) dbt parse $(DBT_FLAGS) --quiet
	@touch $@

manifest: $(MANIFEST)

demo: setup manifest
	$(RUN) python -m sandbox.demo

lint: setup manifest
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	cd dbt_project && WAREHOUSE_PATH=$$(mktemp -d)/lint.duckdb $(RUN) sqlfluff lint models

format: setup
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

# Three workers on two cores: the end-to-end tests spend part of their time waiting on subprocesses, stand-in
# latencies and retry back-offs, which a third worker fills. A test file stays on one worker, since its tests
# share a pipeline. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 3
test: lint manifest browser postgres
	$(RUN) pytest -n $(TEST_WORKERS) --dist loadfile

# The PostgreSQL dbt target alone: a throwaway server on 127.0.0.1, dbt build there and on DuckDB, marts compared.
test-postgres: setup manifest postgres
	$(RUN) pytest tests/postgres

# Debian's Chromium for tests/browser (Playwright drives it and downloads no browser of its own); once.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the browser test"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL server binaries for tests/postgres (the test starts and removes its own cluster); once.
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || { \
		echo "installing Debian's postgresql for the PostgreSQL dbt target test"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; }

JOB ?= nightly_sync
# The Dagster instance (run history, schedules, the run queue and its pool limits) lives in dagster_home/.
run dev: export DAGSTER_HOME ?= $(CURDIR)/dagster_home

run: setup manifest
	$(RUN) dagster job execute -m orchestration.definitions -j $(JOB)

dev: setup manifest
	$(RUN) dagster dev -w workspace.yaml

# dbt docs of the warehouse in WAREHOUSE_PATH (default: the one `make demo` leaves); the catalog (column types,
# row counts) comes from it, the rest from the project.
DOCS_PORT ?= 8080
docs: setup manifest
	WAREHOUSE_PATH=$${WAREHOUSE_PATH:-$(CURDIR)/data/demo/warehouse.duckdb} $(RUN) dbt docs generate $(DBT_FLAGS)
	$(RUN) dbt docs serve $(DBT_FLAGS) --host 127.0.0.1 --port $(DOCS_PORT) --no-browser

# Every benchmark, one after the other on this machine, each writing its section of BENCHMARKS.md: the Stripe
# extraction against the rate-limit ceiling and two peers, then the reverse ETL (100,000 profiles to the
# Mailchimp and Customer.io stand-ins) against the API ceilings and the naive SDK loops, then the nightly job end
# to end (bench-nightly). About 100 minutes (three backfills of 1.1M objects, three rounds of pushes, one full and
# three incremental nightly runs); run it on an otherwise idle machine.
.PHONY: bench-quick bench-nightly
bench: setup manifest
	$(RUN) --group bench python -m bench.run
	$(RUN) --group bench python -m bench.push_bench
	$(RUN) --group bench python -m bench.nightly_bench

# The same on a small account, one run each (~5 min): checks the harness, writes bench/results/quick.md.
bench-quick: setup
	$(RUN) --group bench python -m bench.run --quick

# The reverse-ETL benchmark alone (100,000 profiles to the Mailchimp and Customer.io stand-ins, 3 rounds):
# rewrites the reverse-ETL section of BENCHMARKS.md, raw figures in bench/results/push.json.
bench-push: setup manifest
	$(RUN) --group bench python -m bench.push_bench

# The end-to-end nightly alone: `dagster job execute -j nightly_sync` on the 100,000-customer account behind the
# three stand-ins, one full run then three incremental ones after 1% changed (about 30 minutes: the full run ~15,
# ~10 of them extracting at Stripe's test-mode limit): rewrites its section of BENCHMARKS.md, raw figures in
# bench/results/nightly.json. `python -m bench.nightly_bench --quick` checks it on 10,000 customers (~10 min).
bench-nightly: setup manifest
	$(RUN) --group bench python -m bench.nightly_bench

clean:
	rm -rf data .dagster_home dbt_project/target dbt_project/logs .pytest_cache .ruff_cache
