# `make serve` and `make test` work on a fresh machine with Python 3.11 and make:
# each creates .venv and installs what it needs first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.example.yaml
PYTEST_ARGS ?=

.PHONY: serve demo docs test lint bench fuzz wheel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# The demo's SMTP sink is aiosmtpd: an extra of its own, so that `make demo` does not pull in
# the test tools (Playwright, schemathesis) and a production install does not carry a sink.
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# Express and standardwebhooks for the Node.js receiver tests, oidc-provider for the sign-in
# tests' OpenID provider; without npm (or the registry) those tests skip (and the sign-in
# tests fail under .ci/run, which sets GATEWAY_REQUIRE_OIDC_PROVIDER=1).
tests/node/node_modules/.installed: tests/node/package.json
	@if command -v npm >/dev/null 2>&1; then \
	  (npm install --prefix tests/node --no-audit --no-fund --silent && touch $@) \
	  || echo "npm install failed: the Node.js receiver and sign-in tests will be skipped"; \
	else echo "npm not found: the Node.js receiver and sign-in tests will be skipped"; fi

# Chromium for the web inbox's browser tests (Playwright drives Debian's, it cannot fetch its
# own here): installed with apt-get when missing and we are root; otherwise those tests skip
# (and fail under .ci/run, which sets GATEWAY_REQUIRE_BROWSER=1).
tests/.chromium:
	@if [ -x /usr/bin/chromium ]; then touch $@; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null && touch $@) \
	  || echo "apt-get install chromium failed: the browser tests will be skipped"; \
	else echo "Chromium not installed and apt-get unavailable: the browser tests will be skipped"; fi

# PostgreSQL for the second backend's pass (the harness starts a throwaway cluster from its
# binaries): installed with apt-get when missing and we are root; otherwise those tests skip
# (and fail under .ci/run, which sets GATEWAY_REQUIRE_POSTGRES=1).
tests/.postgresql:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then touch $@; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null && touch $@) \
	  || echo "apt-get install postgresql failed: the PostgreSQL tests will be skipped"; \
	else echo "PostgreSQL not installed and apt-get unavailable: the PostgreSQL tests will be skipped"; fi

serve: $(VENV)/.installed
	$(BIN)/gateway serve --config $(CONFIG)

# The gateway on $(CONFIG) with a throwaway database, a webhook receiver that checks
# signatures and an SMTP sink, each arrival printed in one line; Ctrl-C stops all.
demo: $(VENV)/.installed-demo
	$(BIN)/gateway demo --config $(CONFIG)

# docs/api.md is made from schemas/openapi.yaml (tests/test_docs.py checks it is current).
docs: $(VENV)/.installed
	$(BIN)/python docs/api_reference.py > docs/api.md

# The suite runs three times: on SQLite with synchronous=full (the default: batches on the
# writer thread) and with normal (short batches on the event loop; gateway/store/sqlite.py),
# then on PostgreSQL (a throwaway cluster; the multi-instance and restart tests run there).
test: $(VENV)/.installed-test tests/node/node_modules/.installed tests/.chromium tests/.postgresql
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)
	GATEWAY_TEST_SYNCHRONOUS=normal $(BIN)/pytest -q $(PYTEST_ARGS)
	$(BIN)/pytest -q --backend postgresql $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

bench: $(VENV)/.installed-test
	$(BIN)/python bench/api.py

fuzz: $(VENV)/.installed-test
	FUZZ_EXAMPLES=200 $(BIN)/pytest -s tests/test_fuzz.py

wheel: $(VENV)/.installed-test
	$(BIN)/pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) dist build *.egg-info .pytest_cache .ruff_cache .hypothesis
