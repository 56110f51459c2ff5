# The README's two commands: `sudo make demo` (set up, then the dashboard on the lab) and
# `sudo make test` (set up, then the whole test suite; lab tests need root).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test unit bench clean-labs

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	bash scripts/install-system-deps
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: setup
	$(VENV)/bin/svcwatch

test: setup
	$(PY) -m pytest -q

unit: setup
	$(PY) -m pytest -q tests/unit

bench: setup
	$(PY) benchmarks/lab.py
	$(PY) benchmarks/health.py
	$(PY) benchmarks/nft.py
	$(PY) benchmarks/capture.py
	$(PY) benchmarks/watch.py
	$(PY) benchmarks/record.py
	$(PY) benchmarks/ui.py

clean-labs: setup
	$(VENV)/bin/svcwatch lab down --all
