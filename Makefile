# Every target that runs code creates .venv and installs the project itself,
# so that a fresh clone needs nothing but python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The console (docs/console.md): TypeScript sources in console/, built with the machine's
# Node and npm from the committed lock file into engine/console/static/ (shipped in the
# wheel, not committed). Rebuilt when the lock file or any source is newer than the build.
# The draft editor completes from the policy and tests JSON Schemas, bundled from schemas/.
CONSOLE_SOURCES := $(shell find console -path console/node_modules -prune -o -type f -print) \
	schemas/policy.schema.json schemas/tests.schema.json
CONSOLE_BUILT := engine/console/static/index.html
NPM_STAMP := console/node_modules/.installed
# The browser tests drive Debian's Chromium (Playwright's own download cannot work here).
CHROMIUM := /usr/bin/chromium

PG_PORT ?= 5433
# The suite on up to two processes (one on a 1-core machine): each test file runs whole, in
# order, on one of them, so a file's shared server and its tests' order stay as written.
# `make test PYTEST_PARALLEL=` runs it on one.
PYTEST_PARALLEL ?= -n auto --maxprocesses=2 --dist loadfile

.PHONY: run run-postgres system-deps test lint format bench bench-deps bench-front clean console browser wheel screenshots contracts messages

# The message catalogue (docs/messages.md): every Msg("...") of engine/ is a message id.
# `make messages` extracts them, merges them into the Japanese catalogue (a new message comes
# in untranslated, and tests/core/test_messages.py fails until it is translated) and compiles
# the .mo that ships in the wheel. Both files are committed: pip users need no Babel.
LOCALE := engine/locale
PO := $(LOCALE)/ja/LC_MESSAGES/kimari.po

# The contract tools (redocly, openapi-typescript, tsc) of tools/contracts, exactly as
# its committed lock file pins them; npm ci again only when the lock file changes.
CONTRACTS := tools/contracts
CONTRACTS_STAMP := $(CONTRACTS)/node_modules/.installed


$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(CONTRACTS_STAMP): $(CONTRACTS)/package.json $(CONTRACTS)/package-lock.json
	cd $(CONTRACTS) && npm ci --no-audit --no-fund
	touch $@

contracts: $(CONTRACTS_STAMP)

$(NPM_STAMP): console/package.json console/package-lock.json
	cd console && npm ci --no-audit --no-fund
	touch $@

$(CONSOLE_BUILT): $(NPM_STAMP) $(CONSOLE_SOURCES)
	cd console && npm run --silent build

console: $(CONSOLE_BUILT)

$(CHROMIUM):
	@if [ "$$(id -u)" != 0 ]; then \
		echo "the browser tests need Debian's chromium: run 'apt-get install -y chromium chromium-driver fonts-ipafont-gothic' as root"; \
		exit 1; \
	fi
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver fonts-ipafont-gothic

browser: $(CHROMIUM)

run: $(STAMP) $(CONSOLE_BUILT)
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
run-postgres: $(STAMP) $(CONSOLE_BUILT) system-deps
	$(BIN)/python -m tests.pg_server var/postgres $(PG_PORT) -- $(BIN)/kimari serve

test: $(STAMP) $(CONSOLE_BUILT) $(CHROMIUM) $(CONTRACTS_STAMP) system-deps
	$(BIN)/ruff check engine tests bench
	$(BIN)/ruff format --check engine tests bench
	$(BIN)/kimari validate policies
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not serial"
	$(BIN)/python -m pytest -m serial

lint: $(STAMP)
	$(BIN)/ruff check engine tests bench
	$(BIN)/ruff format --check engine tests bench

format: $(STAMP)
	$(BIN)/ruff check --fix engine tests bench
	$(BIN)/ruff format engine tests bench

# The HTTP section's load generators: wrk (closed loop) and h2load (paced). Without them
# bench/run.py falls back to its Python clients, whose own CPU on 2 cores bends the figures
# (docs/benchmarks.md "How it is measured"): installed here when absent, as root.
bench-deps:
	@if ! command -v wrk >/dev/null || ! command -v h2load >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing wrk and nghttp2-client (Debian packages)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      wrk nghttp2-client >/dev/null; \
	  else \
	    echo "without wrk and h2load the HTTP figures come from Python clients:" \
	      "sudo apt-get install -y wrk nghttp2-client" >&2; \
	  fi; \
	fi

bench: $(STAMP) system-deps bench-deps
	$(BIN)/python bench/run.py --write

# What removing the front's hop would buy (issue 16): direct workers against kimari serve
bench-front: $(STAMP) bench-deps
	$(BIN)/python bench/front_ceiling.py

messages: $(STAMP)
	mkdir -p var
	$(BIN)/pybabel -q extract --no-default-keywords -k Msg --no-location --sort-output \
		--no-wrap --project kimari -o var/kimari.pot engine
	$(BIN)/pybabel -q update --no-wrap --ignore-obsolete --no-fuzzy-matching --init-missing --ignore-pot-creation-date \
		-i var/kimari.pot -d $(LOCALE) -D kimari -l ja
	$(BIN)/pybabel compile --statistics -d $(LOCALE) -D kimari -l ja

# the browser tests again, writing their screenshots into docs/console/ (docs/console.md)
screenshots: $(STAMP) $(CONSOLE_BUILT) $(CHROMIUM)
	KIMARI_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/console/test_browser.py \
		tests/console/test_editor_loop.py

# a wheel with the console built inside: pip users need no Node
wheel: $(STAMP) $(CONSOLE_BUILT)
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation -w dist .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis engine/console/static console/node_modules $(CONTRACTS)/node_modules
