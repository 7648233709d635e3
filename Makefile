# Shortcuts; each target only calls the project's own commands.
PY ?= .venv/bin/python

.PHONY: setup test test-all lint bench bench-quick bench-gpu bench-quality

setup:
	python3 -m venv .venv && $(PY) -m pip install -e '.[test]'

test:
	$(PY) -m pytest

test-all:
	$(PY) -m pytest -m ''

lint:
	$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m mypy mnist_models tracking sweeps \
		&& $(dir $(PY))lint-imports

bench:
	$(PY) bench/overhead.py
	$(PY) bench/mlp_throughput.py
	$(PY) bench/augment_cost.py
	$(PY) bench/faithful.py
	$(PY) bench/workers.py
	$(PY) bench/pruning.py
	$(PY) bench/cnn_epoch.py
	$(PY) bench/memory.py
	$(PY) bench/startup.py
	$(PY) bench/scale.py

bench-quick:
	$(PY) bench/overhead.py --quick
	$(PY) bench/mlp_throughput.py --quick
	$(PY) bench/augment_cost.py --quick
	$(PY) bench/faithful.py --quick
	$(PY) bench/workers.py --quick
	$(PY) bench/pruning.py --quick
	$(PY) bench/cnn_epoch.py --quick
	$(PY) bench/gpu_cnn.py --quick
	$(PY) bench/memory.py --quick
	$(PY) bench/startup.py --quick
	$(PY) bench/scale.py --quick

# The CNN epoch at full size on the accelerator it finds (KERAS_BACKEND=jax on a GPU); not in
# `bench`: on two CPU cores it takes about an hour with TensorFlow, several with JAX.
bench-gpu:
	$(PY) bench/gpu_cnn.py

# Test accuracy of the packaged configs, 3 seeds each (an hour or more on two CPU cores).
bench-quality:
	$(PY) bench/quality.py
