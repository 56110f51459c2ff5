# The README's two commands: `sudo make demo` (set up, then the dashboard on the lab) and
# `sudo make test` (set up, then the whole test suite; lab tests need root). `sudo make check` is
# what CI runs: lint, format, strict types, the import contracts, then the tests.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test unit lint check bench clean-labs

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

# Everything but the tests: fast, no root needed.
lint: setup
	$(VENV)/bin/ruff check svcwatch tests benchmarks
	$(VENV)/bin/ruff format --check svcwatch tests benchmarks
	$(VENV)/bin/mypy --strict svcwatch
	$(VENV)/bin/mypy --strict --explicit-package-bases tests benchmarks
	$(VENV)/bin/lint-imports

check: lint test

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
