# Jisr — run `make help` for the targets.
# Every target creates .venv and installs what it needs on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR ?= var/demo
SERVE_DIR ?= var/instance
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help demo test lint fix serve docs migration messages bench clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,postgres,pkcs11]'
	@touch $@

demo: $(STAMP) ## Set up and run the two-country demo (MA, QA) and serve it; Ctrl-C stops
	$(BIN)/jisr demo --dir $(DEMO_DIR)

test: $(STAMP) ## Set up and run the tests (PostgreSQL too when JISR_TEST_DATABASE_URL is set)
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, formatting, mypy (strict on src/) and the architecture contracts
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

fix: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests benchmarks scripts
	$(BIN)/ruff format src tests benchmarks scripts

serve: $(STAMP) ## Serve one instance (made with `jisr init` on first use) at http://127.0.0.1:8000
	@test -f $(SERVE_DIR)/jisr.toml || $(BIN)/jisr init --dir $(SERVE_DIR)
	$(BIN)/jisr serve --dir $(SERVE_DIR)

docs: $(STAMP) ## Regenerate the generated docs (settings and CLI reference)
	$(BIN)/jisr settings docs --out docs/configuration.md
	$(PY) -m jisr.cli.reference > docs/cli.md

migration: $(STAMP) ## Autogenerate the next migration from the models: make migration m="…" [branch=BLOCK]
	$(PY) scripts/make_migration.py $(if $(branch),--branch=$(branch)) "$(m)"
	$(BIN)/ruff format src/jisr/migrations

messages: $(STAMP) ## Extract translatable strings and update the ar/fr catalogs
	@mkdir -p var
	$(BIN)/pybabel extract -F babel.cfg -o var/jisr.pot --no-location --sort-output src/jisr
	$(BIN)/pybabel update -i var/jisr.pot -d src/jisr/locale -D jisr --no-fuzzy-matching --ignore-obsolete

bench: $(STAMP) ## Run every benchmark under benchmarks/
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: ## Remove the virtual environment, caches and local data under var/
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
