# Every target that runs code creates .venv and installs the project itself,
# so that a fresh clone needs nothing but python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/kimari serve

test: $(STAMP)
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
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
