# Two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test unit integration e2e bench lint format clean system-deps

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) (Python 3.11)"; exit 1; }
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip >/dev/null
	@$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	@$(BIN)/python deploy/run.py

# LibreOffice opens the exported .xlsx files in the tests; installed when we can (root
# with apt-get), otherwise those checks skip and say why.
system-deps:
	@command -v soffice >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  --no-install-recommends libreoffice-calc-nogui >/dev/null 2>&1 || echo "could not install LibreOffice") ; } || true

test: $(STAMP) system-deps
	@$(BIN)/ruff check .
	@EVENTLET_TESTS=1 $(BIN)/python -m pytest -q tests

unit: $(STAMP)
	@EVENTLET_TESTS=1 $(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	@$(BIN)/python -m pytest -q tests/integration

e2e: $(STAMP)
	@$(BIN)/python -m pytest -q tests/e2e

bench: $(STAMP)
	@$(BIN)/python -m pytest -q -m bench tests -s

lint: $(STAMP)
	@$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	@$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf var
