"""Shared fixtures: real MNIST, isolation from the user's caches, and tiny configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mnist_models.config import DataConfig, TrainConfig
from mnist_models.data import MnistData, Splits, load_from_folder, make_splits

ROOT = Path(__file__).resolve().parents[1]


def _find_mnist() -> Path | None:
    for candidate in (os.environ.get("MNIST_DIR"), ROOT.parent / "shared" / "data" / "mnist"):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate).resolve()
    return None


@pytest.fixture(autouse=True)
def isolated_data_sources(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test touches the user's cache, Keras folder or the internet."""
    # Tests name MNIST explicitly (the ``mnist_dir`` fixture, read once per session before this
    # runs); the ambient $MNIST_DIR must not leak into tests of the lookup order.
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("MNIST_SWEEPS_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras")))
    monkeypatch.setenv("MNIST_MIRRORS", "http://127.0.0.1:9/")  # closed port: fails at once
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder of the four real MNIST files ($MNIST_DIR or ../shared/data/mnist)."""
    found = _find_mnist()
    if found is None:
        pytest.skip("full MNIST not available (set MNIST_DIR)")
    return found


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> MnistData:
    data = load_from_folder(mnist_dir)
    assert data is not None
    return data


@pytest.fixture(scope="session")
def small_splits(mnist: MnistData) -> Splits:
    """2,500 real training images (500 of them validation) and 1,000 test images."""
    return make_splits(mnist, DataConfig(train_size=2500, val_fraction=0.2, test_size=1000), 0)


@pytest.fixture
def tiny_config() -> TrainConfig:
    """Shrinks the default config to a second or two of training."""
    return shrink(TrainConfig())


def shrink(config: TrainConfig) -> TrainConfig:
    """Any config, made small: 2 epochs of a 32-wide MLP on the small slice."""
    return config.replace(
        {"epochs": 2, "mlp.hidden_sizes": [32], "batch_size": 64, "lr": 0.003, "dropout": 0.1}
    )
