# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
# Jobs run `python`: make it the venv's, as an activated env would.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install demo test test-gpu test-gpu-here lint clean-demo

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of torch from this machine's wheel cache; on a GPU host pip keeps a CUDA build if present.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[workflow,dev]"
	touch $@

install: $(BIN)/snakemake

demo: install
	$(BIN)/snakemake --configfile config/demo.yaml --cores $(CORES) all
	$(BIN)/snakemake --configfile config/demo.yaml --report results/report.html all

test: install
	$(BIN)/pytest -q tests

# On a GPU host: the CUDA paths (graph capture, device: auto). CI has no GPU.
test-gpu: install
	$(BIN)/pytest -q gpu_tests

# The same suite in an environment that already has torch with CUDA and the project's dependencies, with no
# package index at hand (README, Development): the source and the CPU suite's helpers from the checkout.
test-gpu-here:
	PYTHONPATH="$(CURDIR)/src:$(CURDIR)/tests:$$PYTHONPATH" python3 -m pytest -q gpu_tests

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules
