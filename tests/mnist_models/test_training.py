"""The training loop on real MNIST slices: it learns, it is seeded, callbacks can stop it."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_models.callbacks import Callback, EpochResult, StopTraining
from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.errors import TrainingDiverged
from mnist_models.training import TrainResult, train


class Recorder(Callback):
    def __init__(self, stop_after: int | None = None) -> None:
        self.events: list[EpochResult] = []
        self.began = False
        self.ended: TrainResult | None = None
        self.stop_after = stop_after

    def on_train_begin(self, config: TrainConfig) -> None:
        self.began = True

    def on_epoch_end(self, result: EpochResult) -> None:
        self.events.append(result)
        if self.stop_after is not None and result.epoch >= self.stop_after:
            raise StopTraining(f"stop at {result.epoch}")

    def on_train_end(self, result: TrainResult) -> None:
        self.ended = result


def test_short_run_learns_far_above_chance(small_splits: Splits, tiny_config: TrainConfig) -> None:
    config = tiny_config.replace({"epochs": 4})
    recorder = Recorder()
    result = train(config, small_splits, [recorder])
    assert recorder.began and recorder.ended is result
    assert [e.epoch for e in recorder.events] == [1, 2, 3, 4]
    assert recorder.events[-1].train_loss < recorder.events[0].train_loss
    assert result.val_accuracy > 0.75
    assert result.test.accuracy > 0.75  # chance is 0.1
    assert result.test.confusion.sum() == len(small_splits.y_test)
    assert np.trace(result.test.confusion) == round(result.test.accuracy * len(small_splits.y_test))


def test_same_seed_same_numbers_and_other_seed_differs(
    small_splits: Splits, tiny_config: TrainConfig
) -> None:
    a = train(tiny_config, small_splits)
    b = train(tiny_config, small_splits)
    c = train(tiny_config.replace({"seed": 1}), small_splits)
    assert [e.train_loss for e in a.history] == [e.train_loss for e in b.history]
    np.testing.assert_array_equal(a.test.scores, b.test.scores)
    assert a.history[-1].train_loss != c.history[-1].train_loss


def test_a_callback_stops_training_cleanly(small_splits: Splits, tiny_config: TrainConfig) -> None:
    recorder = Recorder(stop_after=2)
    result = train(tiny_config.replace({"epochs": 5}), small_splits, [recorder])
    assert result.epochs_trained == 2 and result.stopped_early
    assert result.stop_reason == "stop at 2"
    assert recorder.ended is result and len(result.test.labels) == len(small_splits.y_test)


def test_divergence_is_a_trial_failure(small_splits: Splits, tiny_config: TrainConfig) -> None:
    config = tiny_config.replace({"lr": 1e6, "mlp.optimizer": "sgd", "mlp.loss": "mse"})
    with pytest.raises(TrainingDiverged, match="diverged at epoch 1"):
        train(config, small_splits)


@pytest.mark.parametrize(
    "overrides",
    [
        {"batch_size": 1, "epochs": 1},
        {"mlp.dtype": "float64"},
        {"augment": True},
        {"mlp.optimizer": "momentum", "lr": 0.05},
        {"mlp.optimizer": "sgd", "lr": 0.1, "mlp.init": "uniform"},
        {"mlp.loss": "mse", "mlp.hidden_sizes": [32, 16]},
        {"dropout": 0.0},
    ],
)
def test_every_option_trains(
    small_splits: Splits, tiny_config: TrainConfig, overrides: dict
) -> None:
    result = train(tiny_config.replace(overrides), small_splits)
    assert result.test.accuracy > 0.5
    assert np.isfinite([e.train_loss for e in result.history]).all()


def test_float32_end_to_end(small_splits: Splits, tiny_config: TrainConfig) -> None:
    result = train(tiny_config, small_splits)
    assert all(p.value.dtype == np.float32 for p in result.model.parameters())
    assert result.test.scores.dtype == np.float32


def test_augmentation_changes_training_not_initial_weights(
    small_splits: Splits, tiny_config: TrainConfig
) -> None:
    plain = train(tiny_config.replace({"epochs": 1}), small_splits)
    warped = train(tiny_config.replace({"epochs": 1, "augment": True}), small_splits)
    assert plain.history[0].train_loss != warped.history[0].train_loss


def test_cross_entropy_scores_are_probabilities(
    small_splits: Splits, tiny_config: TrainConfig
) -> None:
    scores = train(tiny_config, small_splits).test.scores
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    assert scores.min() >= 0.0
