# Run `make` (or `make help`) to list the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev

# Data overrides reach every command: make data CIFAR10_URL=file:///path/x.tar.gz CIFAR10_MD5=...
export CIFAR10_URL CIFAR10_MD5 A1_DATA_DIR A1_REPORTS_DIR

# make report QUICK=1 | PARAMS='-p n_epochs 10' | CONFIG=my.yaml (papermill-style overrides, all sections)
REPORT_ARGS = $(if $(filter 1 yes true True,$(QUICK)),--quick) $(if $(CONFIG),-f $(CONFIG)) $(PARAMS)

.PHONY: help setup test data report bench lab lint clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $@

setup: $(VENV)/.installed-$(EXTRAS) ## create .venv with the package installed editable (if missing)

test: setup ## run the test suite (no internet, no data download)
	$(PY) -m pytest $(PYTEST_ARGS)

data: setup ## download, verify and extract CIFAR-10 (overrides: CIFAR10_URL, CIFAR10_MD5, A1_DATA_DIR)
	$(PY) -m assignment1 fetch

report: setup ## run every section (papermill) into reports/report.html, .pdf and summary.json; QUICK=1, PARAMS=, CONFIG=
	$(PY) -m assignment1.report $(REPORT_ARGS)

bench: ## time one epoch against PyTorch and a reference-style peer, the gradient check and the report -> reports/bench.json
	$(MAKE) setup EXTRAS=dev,bench
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

lab: ## open the notebooks in JupyterLab (installs it into .venv first)
	$(MAKE) setup EXTRAS=dev,lab
	$(VENV)/bin/jupyter lab notebooks/

lint: setup ## check style with ruff
	$(PY) -m ruff check assignment1 tests notebooks benchmarks

clean: ## remove generated files (reports/, caches); keeps data/ and .venv/
	rm -rf reports .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
