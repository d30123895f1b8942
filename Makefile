# ioc: two commands matter. `make demo` runs the operations centre; `make test` runs the suite.
SHELL := /bin/bash
VENV := .venv
IOC := $(VENV)/bin/ioc
PY := $(VENV)/bin/python

.PHONY: setup system venv demo test test-fast lint bench bench-ingest bench-live bench-sim bench-wall bench-broker-restart bench-nearby clean bench-open bench-open-isolation test-random bench-forecast bench-backfill bench-history

setup: system venv  ## install system services and the virtualenv (idempotent)

system:
	@bash scripts/setup-system.sh

venv:
	@bash scripts/setup-venv.sh

demo: setup  ## README command 1: the whole stack on simulated data
	$(IOC) up

test: setup  ## README command 2: the full suite against real PostgreSQL/TimescaleDB, Mosquitto, Chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# The suite in a random order (pytest-randomly; file order is the default so CI stays reproducible): it finds
# tests that pass only after another left something behind. Replay an order: make test-random PYTEST_ARGS=--randomly-seed=N
test-random: setup  ## the suite shuffled; the header prints the seed
	$(PY) -m pytest -p randomly $(PYTEST_ARGS)

lint: venv  ## ruff over all Python, mypy over the packages (CI runs it before the tests)
	$(VENV)/bin/ruff check ioc ingest dashboards simulators incidents opendata forecast migrations tests benchmarks
	$(VENV)/bin/mypy ioc ingest dashboards simulators incidents opendata forecast

bench-ingest: setup
	$(PY) benchmarks/bench_ingest.py

bench-sim: setup
	$(PY) benchmarks/bench_simulate.py

bench-live: setup
	$(PY) benchmarks/bench_live.py

bench-wall: setup  ## issue 18 bar 6: the wall at 4K under the storm traced 3 times (main-thread time per update, long frames), then a 30-minute heap soak
	$(PY) benchmarks/bench_wall_trace.py --minutes 30

bench-nearby: setup
	$(PY) benchmarks/bench_nearby.py

bench-open: setup  ## issue 14: the open data API's bar queries on 10 M observations (median and p95)
	$(PY) benchmarks/bench_open.py

bench-open-isolation: setup  ## issue 14: the wall's publish-to-screen latency alone and beside 200 public clients (medians of 3 interleaved)
	$(PY) benchmarks/bench_open_isolation.py --variants no-cache

bench-broker-restart: setup  ## issue 11: a broker restart at 2,000 msg/s, three runs, 0 lost and 0 doubled
	$(PY) benchmarks/bench_broker_restart.py

bench-backfill: setup  ## issue 12: the first ioc up's 14 days of history on a fresh stack (median of 3, rows/s, wall, CPU)
	$(PY) benchmarks/bench_backfill.py

bench-history: setup  ## issue 18 bar 5: the history API's queries over 50 M raw readings of the demo city (median, p95), storage per million rows
	$(PY) benchmarks/bench_history.py

bench-forecast: setup  ## issue 13: training and inference times, then the 7-day rolling backtest (needs history)
	$(PY) benchmarks/bench_forecast.py

clean:  ## delete the state folder, and root's database cluster that .ioc/postgres links to
	if [ -L .ioc/postgres ]; then rm -rf "$$(readlink -f .ioc/postgres)"; fi
	rm -rf .ioc .pytest_cache
