# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv and install everything on first use; nothing beyond Python, pip, make.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

DEMO_STORE := var/demo
DEMO_EVENTS ?= 200000
DATA_DIR ?= var/data
MODELS_DIR ?= var/models
PUBLIC_API_KEYS ?= pk_demo_public
SECRET_API_KEYS ?= sk_demo_secret
CAMPAIGNS_FILE ?= campaigns.example.yaml
# Load tests and benchmarks against the demo all come from 127.0.0.1.
DEMO_IP_RATE ?= 100000
# The demo's settings, given to the demo's commands only (the tests set their own).
DEMO_ENV := DATA_DIR=$(DATA_DIR) MODELS_DIR=$(MODELS_DIR) PUBLIC_API_KEYS=$(PUBLIC_API_KEYS) \
	SECRET_API_KEYS=$(SECRET_API_KEYS) CAMPAIGNS_FILE=$(CAMPAIGNS_FILE) STOREFRONT_DEMO=1 LOG_FORMAT=text \
	RATE_LIMIT_IP_PER_SECOND=$(DEMO_IP_RATE) RATE_LIMIT_IP_BURST=$(DEMO_IP_RATE)

# The browser tests drive Debian's Chromium through Playwright (no browser download).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

SHARED_DATA ?= ../shared/data
EVAL_DIR := docs/evaluation

LOADTEST_HOST ?= http://127.0.0.1:8000
LOADTEST_USERS ?= 50
LOADTEST_TIME ?= 60s

.PHONY: install demo serve test test-cluster lint format clean evaluate loadtest bench

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	touch $(STAMP)

$(DEMO_STORE)/events.jsonl.gz: | $(STAMP)
	$(BIN)/python -m training generate --out $(DEMO_STORE) --events $(DEMO_EVENTS)

$(DATA_DIR)/.loaded: $(DEMO_STORE)/events.jsonl.gz
	$(DEMO_ENV) $(BIN)/python -m training load --events $(DEMO_STORE)/events.jsonl.gz --catalog $(DEMO_STORE)/catalog.jsonl.gz
	touch $@

$(MODELS_DIR)/.trained: $(DEMO_STORE)/events.jsonl.gz
	$(DEMO_ENV) $(BIN)/python -m training train --events $(DEMO_STORE)/events.jsonl.gz --catalog $(DEMO_STORE)/catalog.jsonl.gz
	touch $@

demo: $(DATA_DIR)/.loaded $(MODELS_DIR)/.trained
	@echo "Encore demo on http://127.0.0.1:8000 (docs at /docs); Ctrl-C stops it all."
	@echo "  demo shop with the widget: http://127.0.0.1:8000/demo"
	@echo "  dashboard: http://127.0.0.1:8000/dashboard#key=$(SECRET_API_KEYS)"
	@echo "  public key: $(PUBLIC_API_KEYS)"
	@echo "  secret key: $(SECRET_API_KEYS)"
	@echo "  journey messages: the outbox stream enc:outbox (worker beside the API)"
	@trap 'kill $$worker 2>/dev/null' EXIT; \
	$(DEMO_ENV) $(BIN)/python -m server.worker & worker=$$!; \
	$(DEMO_ENV) $(BIN)/python -m server --host 127.0.0.1 --port 8000

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq --no-install-recommends chromium

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q

# The API's test modules again, against a 3-master Redis Cluster the tests start on
# loopback ports from the embedded binary (tests/test_cluster.py is in `make test` too).
CLUSTER_TESTS := events recommendations campaigns_api privacy measurement_api email catalog \
	auth limits experiments storefront metrics observability model_reload journeys ingest_retries
test-cluster: $(STAMP)
	ENCORE_TEST_REDIS=cluster $(BIN)/python -m pytest -q $(CLUSTER_TESTS:%=tests/test_%.py)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

# Offline evaluation on the public datasets beside the checkout; rewrites docs/evaluation.md.
evaluate: $(STAMP)
	$(BIN)/python -m training evaluate --events $(SHARED_DATA)/movielens-100k/events.jsonl.gz \
		--catalog $(SHARED_DATA)/movielens-100k/catalog.jsonl.gz --split random --test-fraction 0.25 \
		--out $(EVAL_DIR)/movielens-75-25
	$(BIN)/python -m training evaluate --events $(SHARED_DATA)/movielens-100k/events.jsonl.gz \
		--catalog $(SHARED_DATA)/movielens-100k/catalog.jsonl.gz --split random --test-fraction 0.2 \
		--out $(EVAL_DIR)/movielens-80-20
	$(BIN)/python -m training evaluate --events $(SHARED_DATA)/online-retail/events.jsonl.gz \
		--catalog $(SHARED_DATA)/online-retail/catalog.jsonl.gz --split time --test-days 30 \
		--out $(EVAL_DIR)/online-retail
	$(BIN)/python -m training evaluation-doc --reports $(EVAL_DIR) --out docs/evaluation.md
	$(BIN)/python -m training evaluate-churn --events $(SHARED_DATA)/online-retail/events.jsonl.gz \
		--out docs/churn

# Locust, headless, against a running server (make demo, or LOADTEST_HOST=...).
loadtest: $(STAMP)
	mkdir -p var/loadtest
	$(BIN)/locust -f loadtests/locustfile.py --headless --host $(LOADTEST_HOST) \
		-u $(LOADTEST_USERS) -r 10 -t $(LOADTEST_TIME) --only-summary \
		--csv var/loadtest/encore --html var/loadtest/report.html

# Self-contained benchmarks (each starts what it measures); tables printed, JSON in var/bench/.
# The headline benchmarks (docs/performance.md); the 1M-item bundle takes ~6 minutes to
# build on first use, and the training runs on 1M and 10M events (3 each) about an hour.
# The product owner's reference floors (REFERENCE_FLOORS) are run beside ours when present.
REFERENCE_FLOORS ?= ../shared/bench
bench: $(STAMP)
	$(BIN)/python -m benchmarks.recommendation_floors --items 100000
	if [ -f $(REFERENCE_FLOORS)/ideal_request.py ]; then \
		$(BIN)/python -m benchmarks.reference_floors --reference $(REFERENCE_FLOORS); fi
	$(BIN)/python -m benchmarks.paced_latency --items 100000
	$(BIN)/python -m benchmarks.recommendation_floors --items 10000 --events 300000 --out var/bench/recommendation_floors_10k.json
	$(BIN)/python -m benchmarks.recommendation_floors --items 1000000 --events 3000000 --out var/bench/recommendation_floors_1m.json
	$(BIN)/python -m benchmarks.paced_latency --items 1000000 --events 3000000 --out var/bench/paced_latency_1m.json
	$(BIN)/python -m benchmarks.index_recall var/bench/models-10000 var/bench/models-100000 var/bench/models-1000000 --ef-search 32 64 128
	$(BIN)/python -m benchmarks.ingestion --events 200000 --cluster --campaigns $(CAMPAIGNS_FILE)
	$(BIN)/python -m benchmarks.apply_script
	$(BIN)/python -m benchmarks.memory_per_visitor --visitors 1000000
	$(BIN)/python -m benchmarks.memory_per_visitor --visitors 1000000 --arrivals replay \
		--out var/bench/memory_per_visitor_replay.json
	$(BIN)/python -m benchmarks.memory_layouts --visitors 50000
	$(BIN)/python -m benchmarks.server_choice --items 100000
	$(BIN)/python -m benchmarks.swap_under_load --models var/bench/models-100000
	$(BIN)/python -m benchmarks.batch_recipients
	$(BIN)/python -m benchmarks.training_time --events 1000000 10000000

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
