"""The oldest versions ``pyproject.toml`` allows really work: the floor is tested, not guessed.

``optuna>=4.9`` because ``sweeps.store.storage`` passes ``heartbeat_stale_trial_callback`` to
``RDBStorage`` (new in Optuna 4.9.0; before, ``failed_trial_callback``). This test installs
exactly that version into a folder of its own (``pip install --no-deps --target``) and runs,
with that folder first on ``PYTHONPATH`` so the old Optuna shadows the installed one, the
Optuna-facing tests below and one real sweep through the command line.

Without the package index the test skips, unless ``MNIST_SWEEPS_REQUIRE_MIN_VERSIONS`` is set
(``.ci/run`` sets it), then it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPTUNA_FLOOR = "4.9.0"  # keep equal to the floor of `optuna>=` in pyproject.toml
# The Optuna-facing tests run again on the floor version: storages, heartbeats and the
# recovery of dead trials, studies and resuming them, trial logging, reports and exports.
# Extend freely; on two cores these take about 100 s.
FLOOR_TESTS = (
    "tests/sweeps/store/test_storage.py",
    "tests/sweeps/cli/test_storage_proxy.py",
    "tests/sweeps/engine/test_study.py",
    "tests/sweeps/engine/test_resume.py",
    "tests/sweeps/spec/test_space.py",
    "tests/sweeps/engine/test_samplers.py",
    "tests/sweeps/engine/test_progress.py",
    "tests/sweeps/results/test_export.py",
    "tests/sweeps/results/test_report.py",
    "tests/sweeps/results/test_report_html.py",
)
_CHECK_VERSION = (
    "import optuna, sys; "
    "assert optuna.__version__ == {version!r}, f'imported optuna {{optuna.__version__}}'; "
)


def test_pyproject_states_the_tested_floor() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    floor = ".".join(OPTUNA_FLOOR.split(".")[:2])
    assert f'"optuna>={floor}"' in text


@pytest.fixture(scope="module")
def old_optuna(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only Optuna at the floor version (its dependencies are ours)."""
    target = tmp_path_factory.mktemp(f"optuna-{OPTUNA_FLOOR}")
    command = [
        *(sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target)),
        *("--quiet", "--disable-pip-version-check", "--timeout", "20", "--retries", "1"),
        f"optuna=={OPTUNA_FLOOR}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        reason = f"cannot install optuna=={OPTUNA_FLOOR}: {done.stderr.strip()[-500:]}"
        if os.environ.get("MNIST_SWEEPS_REQUIRE_MIN_VERSIONS"):
            pytest.fail(f"{reason} (and MNIST_SWEEPS_REQUIRE_MIN_VERSIONS is set)")
        pytest.skip(reason)
    return target


def _env(old_optuna: Path, mnist_dir: Path) -> dict[str, str]:
    # The old Optuna first, then this checkout (not whatever copy pip installed in editable
    # mode); the tests' own child processes inherit both.
    path = [str(old_optuna), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path),
        "MNIST_DIR": str(mnist_dir),  # the autouse fixture took it out of os.environ
        "MPLBACKEND": "Agg",
    }


def _on_the_floor(
    code: str, args: list[str], cwd: Path, old_optuna: Path, mnist_dir: Path
) -> subprocess.CompletedProcess[str]:
    """Runs ``python -c code args`` with the floor Optuna imported (checked first)."""
    return subprocess.run(
        [sys.executable, "-c", _CHECK_VERSION.format(version=OPTUNA_FLOOR) + code, *args],
        cwd=cwd,
        env=_env(old_optuna, mnist_dir),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow  # minutes on two cores: CI runs it in its `pytest -m slow` pass
def test_the_optuna_facing_tests_pass_on_the_oldest_optuna(
    old_optuna: Path, mnist_dir: Path
) -> None:
    code = "import pytest; sys.exit(pytest.main(sys.argv[1:]))"
    args = ["-q", "-p", "no:cacheprovider", "-x", *FLOOR_TESTS]
    done = _on_the_floor(code, args, ROOT, old_optuna, mnist_dir)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    assert " passed" in done.stdout


@pytest.mark.slow  # minutes on two cores: CI runs it in its `pytest -m slow` pass
def test_a_real_sweep_runs_on_the_oldest_optuna(
    old_optuna: Path, mnist_dir: Path, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    sweep = [
        *("sweep", "--model", "mlp", "--study", "floor", "--trials", "2", "--epochs", "1"),
        *("--train-size", "500", "--set", "data.test_size=200", "--storage", storage),
        *("--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"),
    ]
    code = (
        "from sweeps.cli import main; "
        "assert main(sys.argv[1:-1]) == 0; "
        "study = optuna.load_study(study_name='floor', storage=sys.argv[-1]); "
        "states = [t.state.name for t in study.trials]; "
        "assert states == ['COMPLETE', 'COMPLETE'], states"
    )
    done = _on_the_floor(code, [*sweep, storage], tmp_path, old_optuna, mnist_dir)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
