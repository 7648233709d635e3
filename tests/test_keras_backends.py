"""The CNN tests marked ``backend`` pass on JAX too, not only on TensorFlow.

Keras binds its backend when it is first imported, so they run again in a fresh pytest with
``KERAS_BACKEND=jax``: on JAX's CPU wheel here, on a GPU where ``.[gpu]`` is installed. They
are the tests a backend can break, on tiny slices (JAX compiles each new model for about 12 s on
two cores): a short train that learns, augmentation in training only, the elastic layer
against scipy, a saved model and a logged one reloading with the same predictions, and a
one-trial augmented CNN sweep in a fresh process (``--trial-process``), pruned over the pipe.

Without JAX the test skips, unless ``MNIST_SWEEPS_REQUIRE_JAX`` is set (``.ci/run`` sets it),
then it fails.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKEND_TESTS = (
    "tests/mnist_models/test_cnn.py",
    "tests/mnist_models/test_cnn_elastic.py",
    "tests/sweeps/engine/test_cnn_sweep.py",
)
# XLA's LLVM optimisation passes are most of each tiny test's time on two cores (a fresh
# model compiles in about 12 s, 6 s without them); the programs compute the same, only the
# machine code is less tuned. 100 s instead of 140 s for the pass.
FAST_COMPILE = os.environ.get(
    "XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
)
AT_LEAST = 12  # the `backend` tests of those files today; fewer means some stopped running


def test_the_backend_tests_pass_on_jax(tmp_path: Path) -> None:
    if importlib.util.find_spec("jax") is None:
        if os.environ.get("MNIST_SWEEPS_REQUIRE_JAX"):
            pytest.fail("jax is not installed: pip install -e '.[test]' brings its CPU wheel")
        pytest.skip("jax is not installed")
    report = tmp_path / "jax.xml"
    command = [
        *(sys.executable, "-m", "pytest", *BACKEND_TESTS, "-m", "backend", "-q"),
        *("-p", "no:cacheprovider", f"--basetemp={tmp_path / 'runs'}", f"--junitxml={report}"),
    ]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": FAST_COMPILE},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    suite = ElementTree.parse(report).getroot().find("testsuite")
    assert suite is not None
    counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
    assert counts["tests"] >= AT_LEAST, counts
    assert counts["failures"] == counts["errors"] == counts["skipped"] == 0, counts
