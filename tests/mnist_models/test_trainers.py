"""The trainer registry: a model is one entry, found by name, its module imported on demand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_models.choices import MODELS
from mnist_models.mlp.trainer import MLPTrainer
from mnist_models.trainers import PACKAGED, Trainer, register_trainer, trainer_class

ROOT = Path(__file__).resolve().parents[2]


def test_every_model_a_config_accepts_has_a_packaged_trainer() -> None:
    assert set(PACKAGED) == set(MODELS)
    assert trainer_class("mlp") is MLPTrainer


def test_an_unknown_model_names_itself() -> None:
    with pytest.raises(ValueError, match="no trainer for model 'gru'"):
        trainer_class("gru")


class _Echo(Trainer):
    """The smallest trainer: scores every image as class 0."""

    def score(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        return 0.0, np.eye(10)[np.zeros(len(images), dtype=int)]

    @property
    def model(self) -> None:
        return None


def test_a_second_trainer_under_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="model 'mlp' already has a trainer"):
        register_trainer("mlp")(_Echo)
    assert trainer_class("mlp") is MLPTrainer


def test_a_trainer_from_outside_registers_itself_by_name() -> None:
    register_trainer("echo-test")(_Echo)
    assert trainer_class("echo-test") is _Echo
    register_trainer("echo-test")(_Echo)  # the same class again (a reloaded module) is fine


def test_the_cnn_trainer_module_is_imported_only_when_a_cnn_is_asked_for() -> None:
    code = (
        "import sys\n"
        "from mnist_models.trainers import trainer_class\n"
        "trainer_class('mlp')\n"
        "assert 'mnist_models.cnn.trainer' not in sys.modules\n"
        "assert not {'keras', 'tensorflow'} & set(sys.modules)\n"
        "trainer_class('cnn')\n"
        "assert 'mnist_models.cnn.trainer' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)
