# Every target builds .venv on first use and reinstalls when pyproject.toml or
# requirements.lock changes: first the exact versions of the lock (on the platform it is
# for), then the kit, whose ranges in pyproject.toml add only what a stale lock lacks.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# uv installs the wheels in parallel and byte-compiles them: without the bytecode, a machine
# with PYTHONDONTWRITEBYTECODE set (common in containers) compiles TensorFlow again in every
# process, 9 s an import rather than 4. pip stays in .venv for anything installed by hand.
UV_VERSION := 0.13.9
INSTALL := $(BIN)/python -m uv pip install --quiet --python $(BIN)/python --compile-bytecode
STAMP := $(VENV)/.installed-stamp
# One worker per core. --dist loadgroup hands out single tests, except that each notebook's
# cells, and the tests of a module marked xdist_group, stay together on one worker, in order.
PYTEST := $(BIN)/python -m pytest -n auto --dist loadgroup

.PHONY: reports test test-fast lint lab bench clean-reports environment lock

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(INSTALL) -r requirements.lock
	$(INSTALL) -e '.[cpu,dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name fer-kit --display-name "Python (fer-kit)"
	@touch $(STAMP)

reports: $(STAMP)  ## render every notebook to reports/<name>.html plus reports/index.html
	$(BIN)/fer-kit report

test: $(STAMP) lint  ## lint, then the whole test suite with the notebooks, on every core
	$(BIN)/fer-kit data samples
	$(PYTEST)

test-fast: $(STAMP)  ## the quick tests only (no notebooks, nothing marked slow)
	$(BIN)/fer-kit data samples
	$(PYTEST) -m "not slow" tests

lint: $(STAMP)
	$(BIN)/ruff check .

lab: $(STAMP)  ## JupyterLab on the notebooks with the kit's kernel
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)  ## benchmarks: figures and ratios in benchmarks/results/
	$(BIN)/fer-kit bench

environment: $(STAMP)  ## environment.yml from the requirements in pyproject.toml
	$(BIN)/python tools/requirements.py environment

lock: $(STAMP)  ## requirements.lock: the exact versions pip resolves from pyproject.toml today
	$(BIN)/python tools/requirements.py lock

clean-reports:  ## delete the rendered reports and every run folder the report run made
	rm -rf reports/*.html reports/*.ipynb reports/runs
