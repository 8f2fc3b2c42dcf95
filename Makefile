# Two entry points from a fresh clone: `make run` (the service) and `make test`.
# Each creates the virtualenv and installs what it needs on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,keras,fast

.PHONY: install run test bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

run: install
	$(VENV)/bin/trainyard up

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) bench/bench_engine.py
