"""The packaged default config keeps the product's accuracy promise on full MNIST."""

from __future__ import annotations

from pathlib import Path

from mnist_models.training import train
from sweeps.spec.sweep_file import SweepConfig


def test_default_config_reaches_97_percent_on_full_mnist(mnist_dir: Path) -> None:
    """The product's promise for `mnist-sweep train --model mlp` (about 10 s on two cores)."""
    config = SweepConfig.for_model("mlp").base
    result = train(config, data_dir=mnist_dir)
    assert len(result.splits.y_train) == 54000 and len(result.splits.y_test) == 10000
    assert result.test.accuracy >= 0.97
