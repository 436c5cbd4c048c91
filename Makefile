# relforge: every target installs what it needs into .venv first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR ?= runs/demo
PYTEST_ARGS ?=

.PHONY: help install demo test lint compile bench-mine images clean

help:
	@echo "make demo      run the pipeline on the shipped ESCI-150 data with the packaged models"
	@echo "make test      run the test suite (starts SeaweedFS and vLLM itself)"
	@echo "make lint      ruff"
	@echo "make compile   compile the KFP pipeline to build/relforge.yaml"
	@echo "make bench-mine  mining benchmark (100k items, 10k queries)"

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned: the CPU build on disk; anything else would pull CUDA wheels.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/relforge demo --run-dir $(RUN_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src pipeline tests benchmarks

compile: $(STAMP)
	$(BIN)/python -m pipeline compile --out build/relforge.yaml

bench-mine: $(STAMP)
	$(BIN)/python benchmarks/bench_mine.py

clean:
	rm -rf $(VENV) build runs .pytest_cache
