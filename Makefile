# Shortcuts; each target only calls the project's own commands.
PY ?= .venv/bin/python

.PHONY: setup test test-all lint bench

setup:
	python3 -m venv .venv && $(PY) -m pip install -e '.[test]'

test:
	$(PY) -m pytest

test-all:
	$(PY) -m pytest -m ''

lint:
	$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m mypy mnist_models tracking sweeps

bench:
	$(PY) bench/mlp_throughput.py
	$(PY) bench/cnn_epoch.py
