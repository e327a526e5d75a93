# Two entry points: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.smfusion-installed

.PHONY: venv demo test test-all bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build of torch first, so the torch requirement installs nothing more.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: venv
	$(VENV)/bin/smfusion demo

test: venv
	$(PY) -m pytest -m "not slow" -q

test-all: venv
	$(PY) -m pytest -q

bench: venv
	$(PY) benchmarks/conus_temporal.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
