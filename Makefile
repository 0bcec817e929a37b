# Run `make` (or `make help`) to list the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev

# Data overrides reach every command: make data CIFAR10_URL=file:///path/x.tar.gz CIFAR10_MD5=...
export CIFAR10_URL CIFAR10_MD5 A1_DATA_DIR A1_REPORTS_DIR

# make report QUICK=1 | SECTIONS='02 03' | PARAMS='-p n_epochs 10' | CONFIG=my.yaml | OUT=dir (papermill-style overrides)
REPORT_ARGS = $(if $(filter 1 yes true True,$(QUICK)),--quick) $(if $(SECTIONS),--sections $(SECTIONS)) \
	$(if $(CONFIG),-f $(CONFIG)) $(if $(OUT),--out $(OUT)) $(if $(PAPER),--paper $(PAPER)) $(PARAMS)

REPORTS := $(or $(A1_REPORTS_DIR),reports)
# JupyterLab refuses to run as root (containers, many cloud machines) unless told to
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: help setup test data report bench lab lint clean clean-runs

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

report: setup ## the full report: reports/report.html, .pdf, summary.json (10-20 min); QUICK=1 (~2 min), SECTIONS=, PARAMS=
	$(PY) -m assignment1.report $(REPORT_ARGS)

bench: ## time one epoch against PyTorch and a reference-style peer, the gradient check and the report -> reports/bench.json
	$(MAKE) setup EXTRAS=dev,bench
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

lab: ## JupyterLab on notebooks/00_explore.ipynb, to train live (installs it first); LAB_ARGS='--no-browser --port 8889'
	$(MAKE) setup EXTRAS=dev,lab
	@$(if $(ALLOW_ROOT),echo "running as root: adding --allow-root (JupyterLab needs it to start as root)")
	@echo "JupyterLab prints its address below (http://...?token=...): open it in a browser; Ctrl-C stops it"
	$(VENV)/bin/jupyter lab notebooks/00_explore.ipynb $(ALLOW_ROOT) $(LAB_ARGS)

lint: setup ## check style with ruff
	$(PY) -m ruff check assignment1 tests notebooks benchmarks docs

clean: ## remove generated reports and caches; keeps the stored runs (reports/runs/), data/ and .venv/
	@test ! -d $(REPORTS) || find $(REPORTS) -mindepth 1 -maxdepth 1 ! -name runs -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
	@if [ -x $(PY) ] && [ -d $(REPORTS)/runs ]; then $(PY) -m assignment1.experiments.store; fi

clean-runs: ## delete the stored training runs (reports/runs/); says how much training that throws away
	@if [ -x $(PY) ]; then $(PY) -m assignment1.experiments.store --remove; else rm -rf $(REPORTS)/runs; fi
