# Bridgekeeper: two commands, `make run` and `make test` (see README.md).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEV_CONFIG := development.ini
PYTEST_WORKERS ?= auto

.PHONY: run test lint migrate services clean bench-sync bench-sync-live bench bench-smoke bench-accounts bench-peer demo

$(INSTALLED): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(INSTALLED)

NODE_EXAMPLE := examples/node/node_modules/.installed
TOKEN_EXAMPLE := examples/custom-token/node_modules/.installed
OIDC_CLIENTS := tests/oidc_clients/node_modules/.installed
PEER := bench/peer/node_modules/.installed

$(NODE_EXAMPLE): examples/node/package-lock.json
	npm ci --prefix examples/node --no-audit --no-fund
	touch $(NODE_EXAMPLE)

$(TOKEN_EXAMPLE): examples/custom-token/package-lock.json
	npm ci --prefix examples/custom-token --no-audit --no-fund
	touch $(TOKEN_EXAMPLE)

# The relying-party libraries the OIDC tests run against a live server.
$(OIDC_CLIENTS): tests/oidc_clients/package-lock.json
	npm ci --prefix tests/oidc_clients --no-audit --no-fund
	touch $(OIDC_CLIENTS)

# The benchmark's peer: node oidc-provider on Redis (bench/peer, bench/peer.py).
$(PEER): bench/peer/package-lock.json
	npm ci --prefix bench/peer --no-audit --no-fund
	touch $(PEER)

## run: set up and start the development server on embedded defaults
run: $(INSTALLED)
	mkdir -p var
	$(BIN)/saas-admin $(DEV_CONFIG) migrate
	@echo
	@echo "  Bridgekeeper is starting: open http://127.0.0.1:6543/dashboard/signup"
	@echo
	$(BIN)/pserve $(DEV_CONFIG)

# The suite's second leg runs every test that logs in, syncs or serves the
# dashboard again with the store on a Redis Cluster (each xdist worker starts
# three redis-server primaries of its own; tests/conftest.py). Left out: unit
# tests (embedded store) and the tests that bring a single Redis of their own
# (fault proxies, private servers), never touch the store, or only sign in on
# the way to a subject of PostgreSQL's (the audit CSV's memory: a minute).
CLUSTER_LEG_SKIPS := test_redis_faults.py test_redis_server_faults.py test_redis_step_faults.py \
	test_wheel.py test_bench_smoke.py test_peer_smoke.py test_getting_started.py test_topology.py \
	test_cluster_readiness.py test_cluster_store.py test_audit_csv_memory.py
CLUSTER_LEG := tests/functional tests/integration $(addprefix --ignore=tests/integration/,$(CLUSTER_LEG_SKIPS))

## test: set up, make sure PostgreSQL, Redis and RabbitMQ run, and run the whole suite
test: $(INSTALLED) $(NODE_EXAMPLE) $(TOKEN_EXAMPLE) $(OIDC_CLIENTS) $(PEER) services
	scripts/install-system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider
	TEST_REDIS_CLUSTER=1 $(BIN)/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider $(CLUSTER_LEG)

## services: start the local PostgreSQL and Redis if they are installed but stopped
services:
	scripts/ensure-services

## demo: the server, the example tenant endpoint and the SDK demo page (Ctrl-C stops all)
demo: $(INSTALLED)
	BK_CONFIG=$(DEV_CONFIG) scripts/demo

## bench-sync: drain a 100,000-event backlog in one process and print events/s
bench-sync: $(INSTALLED) services
	$(BIN)/python -m bench.sync

## bench-sync-live: the sync under live load (linger 0 vs 200 ms) beside the backlog, per event
bench-sync-live: $(INSTALLED) services
	$(BIN)/python -m bench.sync_live

BENCH_INSTALLED := $(VENV)/.installed-bench

$(BENCH_INSTALLED): setup.py $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $(BENCH_INSTALLED)

# Options of bench/run.py: `make bench BENCH_ARGS="--topology cluster"` (or
# TOPOLOGY=cluster) runs the scenarios on one Redis and then on a 3-primary
# Redis Cluster and prints them side by side.
BENCH_ARGS ?=
TOPOLOGY ?=

## bench: the production topology under load, its floor, the table (docs/performance.md)
# With bench/peer installed (it is a prerequisite) the oidc-provider peer runs
# after our scenarios and the ratio per operation is printed.
bench: $(BENCH_INSTALLED) $(PEER) services
	$(BIN)/python -m bench.run $(if $(TOPOLOGY),--topology $(TOPOLOGY)) \
		$(if $(wildcard $(PEER)),--peer) $(BENCH_ARGS)

## bench-peer: node oidc-provider on Redis under the same load: service CPU per operation
bench-peer: $(BENCH_INSTALLED) $(PEER)
	$(BIN)/python -m bench.peer

## bench-accounts: do reset and sign-up answers tell known from unknown addresses? (timing, bytes)
bench-accounts: $(INSTALLED) services
	$(BIN)/python -m bench.account_answers

## bench-smoke: the same runner for a few seconds; fails on any error
bench-smoke: $(INSTALLED) services
	$(BIN)/python -m bench.run --smoke

lint: $(INSTALLED)
	$(BIN)/ruff check .

migrate: $(INSTALLED)
	mkdir -p var
	$(BIN)/saas-admin $(DEV_CONFIG) migrate

clean:
	rm -rf $(VENV) var *.egg-info .pytest_cache .ruff_cache
