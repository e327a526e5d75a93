# Two entry points: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.smfusion-installed

.PHONY: venv demo test test-all bench bench-speed hydrodl-venv clean

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

hydrodl-venv:
	bash benchmarks/setup_hydrodl_venv.sh

# smfusion vs hydroDL 0.1.5 time-to-R; hydroDL capped at 1 h (a lower bound if it has not reached R by then)
bench-speed: venv hydrodl-venv
	$(PY) benchmarks/train_speed.py --threads 2 --hydrodl-max-seconds 3600

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
