# `make serve` and `make test` work on a fresh machine with Python 3.11 and make:
# each creates .venv and installs what it needs first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config.example.yaml
PYTEST_ARGS ?=

.PHONY: serve test lint bench wheel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

serve: $(VENV)/.installed
	$(BIN)/gateway serve --config $(CONFIG)

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

bench: $(VENV)/.installed-test
	$(BIN)/python bench/api.py

wheel: $(VENV)/.installed-test
	$(BIN)/pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) dist build *.egg-info .pytest_cache .ruff_cache .hypothesis
