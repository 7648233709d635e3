"""MNIST loaded once per process, and the splits of each (data settings, seed) kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnist_models.config import TrainConfig
from mnist_models.data import MnistData, Splits, load_mnist, make_splits


class SplitsCache:
    """Loads MNIST once and reuses splits between trials that share the data settings."""

    def __init__(self, data_dir: str | Path | None) -> None:
        self.data_dir = data_dir
        self._data: dict[str, MnistData] = {}
        self._splits: dict[tuple[Any, ...], Splits] = {}

    def __call__(self, config: TrainConfig) -> Splits:
        dataset = config.data.dataset
        if dataset not in self._data:
            self._data[dataset] = load_mnist(self.data_dir, dataset=dataset)
        key = (config.data, config.seed, config.dtype)
        if key not in self._splits:
            self._splits[key] = make_splits(
                self._data[dataset], config.data, config.seed, dtype=config.dtype
            )
        return self._splits[key]
