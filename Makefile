# Two commands on a fresh clone: `make run` and `make test`. Each sets up what it needs:
# a virtual environment in .venv with Python 3.12 and the pinned packages (constraints.txt).
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Python 3.12: the repo's .python-version makes pyenv's python3.12 resolve here
PYTHON ?= $(shell command -v python3.12 2>/dev/null || echo "$$(pyenv prefix 3.12 2>/dev/null)/bin/python3")
SEED ?= 1

.PHONY: run test test-all mutants app assets bench lock clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12 or newer is needed (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.12")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[viz,dev]'
	@touch $(STAMP)

run: $(STAMP)  ## the baseline scenario for a year, headless; results in results/baseline
	$(BIN)/fourpl run --scenario baseline --days 365 --seed $(SEED) --out results/baseline --overwrite

test: $(STAMP)  ## the test suite without the year-long scenario runs (two workers, a few minutes)
	$(BIN)/pytest -n 2 --dist loadfile -m "not slow"

test-all: $(STAMP)  ## every test, with the year-long whole-scenario runs marked slow (two workers)
	$(BIN)/pytest -n 2 --dist loadfile

assets: $(STAMP)  ## Solara's browser assets into .cache/solara-assets (from the npm registry, ~200 MB)
	$(BIN)/python -m viz.assets

mutants: $(STAMP)  ## mutation testing (mutmut) of the mechanisms, customs rules, ledger and parcel flow (~1 h on 2 cores)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results

app: $(STAMP) assets  ## the Solara app on http://127.0.0.1:8765
	$(BIN)/fourpl app --host 127.0.0.1 --port 8765

bench: $(STAMP)  ## speed and memory: engine, market mechanisms, the app, sweeps (medians of repeats)
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_engine.py --cases market-1pct --repeats 1   # a 1% sample of the China-US/EU market, a year
	$(BIN)/python benchmarks/bench_market.py
	$(BIN)/python benchmarks/bench_viz.py
	$(BIN)/python benchmarks/bench_sweep.py

lock:  ## re-pin constraints.txt from the current environment
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) results .pytest_cache test-artifacts mutants
