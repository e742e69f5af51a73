# bankapp — the two commands: `make run` (app on SQLite with demo data) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

.PHONY: run test test-postgres e2e bench bank-test check clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo --if-empty
	$(BIN)/flask run --host 127.0.0.1 --port 5000

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every configured dependency (database + SSL, migrations, Redis, SMTP, SECRET_KEY): OK/FAIL.
check: $(BIN)/.installed
	$(BIN)/flask check

# The suite on the local PostgreSQL with Redis as limiter storage (what .ci/run does second).
test-postgres: $(BIN)/.installed
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres} \
	TEST_REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks on PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres).
# Each script creates and drops its own database; BENCH_ARGS is passed to the reports bench.
bench: $(BIN)/.installed
	$(BIN)/python bench/ledger_bench.py
	$(BIN)/python bench/ledger_bench.py --hot
	$(BIN)/python bench/reports_bench.py $(BENCH_ARGS)
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python bench/load_bench.py
	$(BIN)/python bench/bank_test.py

# Real-browser walk: the app under gunicorn, an SMTP sink, Debian's Chromium (/usr/bin/chromium).
# Screenshots and the server log land in artifacts/e2e/.
e2e: $(BIN)/.installed
	E2E=1 $(BIN)/python -m pytest tests/e2e -m e2e $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis

# The bank test under faults, short version (CI); `make bench` runs the full one.
bank-test: $(BIN)/.installed
	$(BIN)/python bench/bank_test.py --short
