# ioc: two commands matter. `make demo` runs the operations centre; `make test` runs the suite.
SHELL := /bin/bash
VENV := .venv
IOC := $(VENV)/bin/ioc
PY := $(VENV)/bin/python

.PHONY: setup system venv demo test test-fast lint bench bench-ingest bench-live bench-sim bench-wall bench-broker-restart bench-forecast clean

setup: system venv  ## install system services and the virtualenv (idempotent)

system:
	@bash scripts/setup-system.sh

venv:
	@bash scripts/setup-venv.sh

demo: setup  ## README command 1: the whole stack on simulated data
	$(IOC) up

test: setup  ## README command 2: the full suite against real PostgreSQL/TimescaleDB, Mosquitto, Chromium
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check ioc ingest dashboards simulators forecast tests benchmarks

bench-ingest: setup
	$(PY) benchmarks/bench_ingest.py

bench-sim: setup
	$(PY) benchmarks/bench_simulate.py

bench-live: setup
	$(PY) benchmarks/bench_live.py

bench-wall: setup
	$(PY) benchmarks/bench_wall_soak.py

bench-broker-restart: setup  ## issue 11: a broker restart at 2,000 msg/s, three runs, 0 lost and 0 doubled
	$(PY) benchmarks/bench_broker_restart.py

bench-forecast: setup  ## issue 13: training and inference times, then the 7-day rolling backtest (needs history)
	$(PY) benchmarks/bench_forecast.py

clean:  ## delete the state folder, and root's database cluster that .ioc/postgres links to
	if [ -L .ioc/postgres ]; then rm -rf "$$(readlink -f .ioc/postgres)"; fi
	rm -rf .ioc .pytest_cache
