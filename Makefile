# Every target that runs code creates .venv and installs the project itself,
# so that a fresh clone needs nothing but python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PG_PORT ?= 5433

.PHONY: run run-postgres system-deps test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/kimari serve

# The PostgreSQL store's tests (a throwaway server per run) and the replica test (HAProxy in
# front of three replicas) need Debian's postgresql and haproxy packages: installed here when
# absent (as root, as in CI; anyone else is told the command). `make run` needs neither.
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	    ! { [ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null; }; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing postgresql and haproxy (Debian packages)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      postgresql haproxy >/dev/null; \
	  else \
	    echo "PostgreSQL and HAProxy are needed: sudo apt-get install -y postgresql haproxy" >&2; \
	    exit 1; \
	  fi; \
	fi

# The service on PostgreSQL: a server kept in var/postgres (port $(PG_PORT)), stopped with it.
run-postgres: $(STAMP) system-deps
	$(BIN)/python -m tests.pg_server var/postgres $(PG_PORT) -- $(BIN)/kimari serve

test: $(STAMP) system-deps
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

bench: $(STAMP) system-deps
	$(BIN)/python bench/run.py --write

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
