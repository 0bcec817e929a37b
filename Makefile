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
# the locked extras (requirements/<extra>.txt); bench's PyTorch is installed on top, unlocked
LOCKED_EXTRAS := dev lab browser dask postgres
comma := ,
UV_COMPILE = $(UV_VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes
LOCK_FILES := requirements/build.txt requirements/runtime.txt $(foreach e,$(LOCKED_EXTRAS),requirements/$(e).txt)
# JupyterLab refuses to run as root (containers, many cloud machines) unless told to
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: help setup lock test data report bench lab lint clean clean-runs

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed-$(EXTRAS): pyproject.toml $(LOCK_FILES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/build.txt
	$(PY) -m pip install --quiet --require-hashes -r requirements/runtime.txt \
		$(foreach e,$(subst $(comma), ,$(EXTRAS)),-r requirements/$(e).txt)
	@# setuptools' notice on every editable install (a folder named like the package may shadow it) is noise here
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

setup: $(VENV)/.installed-$(EXTRAS) ## create .venv: the locked versions of requirements/, then the package, editable

lock: ## resolve the dependencies anew, once (requirements/all.txt), and derive the pinned, hashed requirements/*.txt
	$(eval UV_VENV := $(shell mktemp -d))
	$(PYTHON) -m venv $(UV_VENV) && $(UV_VENV)/bin/pip install --quiet uv  # uv resolves; it stays out of .venv
	$(UV_COMPILE) pyproject.toml $(foreach e,$(LOCKED_EXTRAS),--extra $(e)) -o requirements/all.txt
	$(foreach f,runtime $(LOCKED_EXTRAS),$(UV_COMPILE) --no-header --no-annotate pyproject.toml \
		$(if $(filter-out runtime,$(f)),--extra $(f)) -c requirements/all.txt -o requirements/$(f).txt;)
	$(UV_COMPILE) --no-header requirements/build.in -o requirements/build.txt
	rm -r $(UV_VENV)

# TEST_JOBS: pytest-xdist workers (2: measured fastest on 2 cores; auto: one per core; 0: all in this process).
# The workers share one tiny report: the first to need it builds it (tests/conftest.py: tiny_report)
TEST_JOBS ?= 2
test: setup ## run the test suite (no internet, no data download); TEST_JOBS=0 runs it in one process
	$(PY) -m pytest -n $(TEST_JOBS) $(PYTEST_ARGS)

data: setup ## download, verify and extract CIFAR-10 (overrides: CIFAR10_URL, CIFAR10_MD5, A1_DATA_DIR)
	$(PY) -m assignment1 fetch

report: setup ## the full report: reports/report.html, .pdf, summary.json; QUICK=1 (a first try), SECTIONS=, PARAMS=
	$(PY) -m assignment1.report $(REPORT_ARGS)

# make bench REPORT=1: also the full report from an empty run store (6-15 min) and what it trained against its floor
bench: ## time an epoch against PyTorch peers, the gradient check and the quick report (REPORT=1: the full one too) -> reports/bench.json
	$(MAKE) setup VENV=.venv-bench EXTRAS=dev  # a venv of its own: PyTorch, the peer, is not locked
	PYTHONWARNINGS="ignore:Editable installation" .venv-bench/bin/python -m pip install --quiet -e '.[bench]'
	.venv-bench/bin/python benchmarks/bench.py $(if $(filter 1 yes true True,$(REPORT)),--full-report) $(BENCH_ARGS)

lab: ## JupyterLab on notebooks/00_explore.ipynb, to train live (installs it first); LAB_ARGS='--no-browser --port 8889'
	$(MAKE) setup EXTRAS=dev,lab
	@$(if $(ALLOW_ROOT),echo "running as root: adding --allow-root (JupyterLab needs it to start as root)")
	@echo "JupyterLab prints its address below (http://...?token=...): open it in a browser; Ctrl-C stops it"
	$(VENV)/bin/jupyter lab notebooks/00_explore.ipynb $(ALLOW_ROOT) $(LAB_ARGS)

lint: setup ## check style with ruff
	$(PY) -m ruff check assignment1 tests notebooks benchmarks docs

clean: ## remove reports and caches; keeps the stored runs and search (reports/runs/, search/), a report being written, data/, .venv/
	@# before make setup, plain python3 cleans (without numpy, it names the run store without counting its runs)
	@if [ -x $(PY) ]; then $(PY) -m assignment1.report.clean; else PYTHONPATH=. $(PYTHON) -m assignment1.report.clean; fi
	rm -rf .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

clean-runs: ## delete the stored training runs (reports/runs/); says how much training that throws away
	@if [ -x $(PY) ]; then $(PY) -m assignment1.experiments.store --remove; else rm -rf $(REPORTS)/runs; fi
