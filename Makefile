# Every target that runs code creates .venv and installs the project itself,
# so that a fresh clone needs nothing but python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The contract tools (redocly, openapi-typescript, tsc), exactly as the committed lock file
# pins them; npm ci runs again only when the lock file is newer than the install.
CONTRACTS := tools/contracts
NODE_STAMP := $(CONTRACTS)/node_modules/.installed

.PHONY: run test lint format bench clean node

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): $(CONTRACTS)/package.json $(CONTRACTS)/package-lock.json
	cd $(CONTRACTS) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

node: $(NODE_STAMP)

run: $(STAMP)
	$(BIN)/kimari serve

test: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check engine tests bench
	$(BIN)/ruff format --check engine tests bench
	$(BIN)/kimari validate policies
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check engine tests bench
	$(BIN)/ruff format --check engine tests bench

format: $(STAMP)
	$(BIN)/ruff check --fix engine tests bench
	$(BIN)/ruff format engine tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py --write

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis $(CONTRACTS)/node_modules
