# Two entry points from a fresh clone: `make run` (the service) and `make test`.
# Each creates the virtualenv and installs what it needs on first use: `make run` only what running needs (the
# service, TensorFlow for Keras jobs, numba), `make test` that plus the test tools (the `dev` extra). Each has its
# own stamp, so `make run` after `make test` installs nothing more.
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_EXTRAS ?= keras,fast,plot
TEST_EXTRAS ?= dev,$(RUN_EXTRAS)

.PHONY: install install-run run test bench

install: $(VENV)/.installed-test

install-run: $(VENV)/.installed-run

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[$(RUN_EXTRAS)]'
	touch $@

# The test extras include the run extras: a test install serves `make run` too.
$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[$(TEST_EXTRAS)]'
	touch $@ $(VENV)/.installed-run

# `make run UP_ARGS="--port 8123"` passes options to `trainyard up` (see `trainyard up --help`).
run: install-run
	$(VENV)/bin/trainyard up $(UP_ARGS)

test: install
	$(PY) -m pytest -q

bench: install-run
	$(PY) bench/bench_engine.py
