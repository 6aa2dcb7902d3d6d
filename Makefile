# Every target builds .venv itself, so a fresh machine with only Python 3.11+ needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck pytest test-typescript examples-types bench bench-quick soak fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/agent-worker demo

test: lint typecheck pytest test-typescript

# The quick loop while developing: the unit and nats tiers (no process kills, no fault scenarios), under a minute.
# A test marked system inside a nats module (a fault scenario) is left out too.
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "(unit or nats) and not system"

lint: $(STAMP)
	$(BIN)/ruff check catalog worker testkit tests bench examples/python
	$(BIN)/ruff format --check catalog worker testkit tests bench examples/python

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

# The TypeScript example (examples/typescript) against a real worker: needs node and npm (the lockfile pins the
# rest); without them it says so and passes. One worker process serves the whole suite (tests/examples/stack.py).
TS := examples/typescript
HAVE_NODE := $(shell command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && echo yes)

$(TS)/node_modules/.installed: $(TS)/package-lock.json
	cd $(TS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

ifeq ($(HAVE_NODE),yes)
test-typescript: $(STAMP) $(TS)/node_modules/.installed
	$(BIN)/python -m tests.examples.stack --cwd $(TS) -- npm test --silent

# Regenerates examples/typescript/src/generated from `agent-worker schema` (a test fails while they differ).
examples-types: $(STAMP) $(TS)/node_modules/.installed
	cd $(TS) && AGENT_WORKER_PYTHON=$(abspath $(BIN)/python) npm run generate --silent
else
test-typescript examples-types:
	@echo "SKIPPED: $@ (examples/typescript) needs node and npm, which are not on PATH"
endif

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

soak: $(STAMP)
	AGENT_WORKER_SOAK=1 $(BIN)/pytest -q -m soak tests/reliability

# The hostile suite's properties (tests/hostile/test_properties.py) with thousands of examples, about ten minutes
# on two cores; `make test` runs the same with 40. The outcome table goes to fuzz-report.md.
FUZZ_EXAMPLES ?= 8000
fuzz: $(STAMP)
	AGENT_WORKER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) AGENT_WORKER_FUZZ_REPORT=fuzz-report.md \
		$(BIN)/pytest -q -s -p no:cacheprovider --timeout 3600 tests/hostile/test_properties.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache $(TS)/node_modules $(TS)/dist
