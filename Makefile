# Every target builds .venv on first use and reinstalls when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: reports test lint lab bench clean-reports

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name fer-kit --display-name "Python (fer-kit)"
	@touch $(STAMP)

reports: $(STAMP)  ## render every notebook to reports/<name>.html plus reports/index.html
	$(BIN)/fer-kit report

test: $(STAMP) lint  ## lint, then the whole test suite with the notebooks
	$(BIN)/fer-kit data samples
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

lab: $(STAMP)  ## JupyterLab on the notebooks with the kit's kernel
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)  ## benchmarks: figures and ratios in benchmarks/results/
	$(BIN)/fer-kit bench --out benchmarks/results

clean-reports:  ## delete the rendered reports and every run folder the report run made
	rm -rf reports/*.html reports/*.ipynb reports/runs
