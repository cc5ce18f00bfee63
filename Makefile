# Two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test unit integration e2e bench lint format replay clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) (Python 3.11)"; exit 1; }
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip >/dev/null
	@$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	@$(BIN)/python deploy/run.py

test: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/python -m pytest -q tests

unit: $(STAMP)
	@$(BIN)/python -m pytest -q tests/unit

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
