"""The training loop on real MNIST slices: it learns, it is seeded, callbacks can stop it."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_models.callbacks import Callback, EpochResult, StopTraining
from mnist_models.config import DataConfig, TrainConfig
from mnist_models.data import MnistData, Splits, make_splits
from mnist_models.errors import TrainingDiverged
from mnist_models.metrics import evaluate_scores
from mnist_models.mlp import Layer, build_loss
from mnist_models.mlp.trainer import MLPTrainer
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


def test_validation_and_test_images_are_scored_unwarped_without_dropout(
    small_splits: Splits, tiny_config: TrainConfig
) -> None:
    # Augmentation and dropout belong to training batches only: every reported validation and
    # test figure is the trained network's inference pass over the images as they are.
    config = tiny_config.replace({"epochs": 1, "augment": True, "dropout": 0.5})
    result = train(config, small_splits)
    net, loss = result.model, build_loss(config)

    def inference(images: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        outputs = net.forward(images.reshape(len(images), -1), training=False)
        return loss.forward(outputs, labels), loss.scores(outputs)

    test_loss, test_scores = inference(small_splits.x_test, small_splits.y_test)
    np.testing.assert_array_equal(result.test.scores, test_scores)
    assert result.test.loss == pytest.approx(test_loss, rel=1e-6)
    val_loss, val_scores = inference(small_splits.x_val, small_splits.y_val)
    (epoch,) = result.history  # one epoch: validated with the final weights
    assert epoch.val_accuracy == np.mean(val_scores.argmax(axis=1) == small_splits.y_val)
    assert epoch.val_loss == pytest.approx(val_loss, rel=1e-6)
    # The check can fail: the training-mode pass (dropout on) scores differently.
    dropped = net.forward(small_splits.x_test.reshape(len(small_splits.x_test), -1), training=True)
    assert not np.allclose(loss.scores(dropped), test_scores)


def test_scoring_the_full_test_set_equals_scoring_its_halves(
    mnist: MnistData, tiny_config: TrainConfig
) -> None:
    # 10,000 images are scored in several chunks; each image's score and its share of the mean
    # loss must not depend on how the set is cut.
    splits = make_splits(mnist, DataConfig(train_size=500, val_fraction=0.0), 0)
    trainer = MLPTrainer(tiny_config, splits)
    trainer.train_epoch()
    images, labels = splits.x_test, splits.y_test
    loss, scores = trainer.score(images, labels)
    halves = [
        trainer.score(images[part], labels[part]) for part in (slice(5000), slice(5000, None))
    ]
    assert scores.shape == (10000, 10)
    np.testing.assert_allclose(scores, np.concatenate([s for _, s in halves]), rtol=1e-5, atol=1e-7)
    assert loss == pytest.approx((halves[0][0] + halves[1][0]) / 2, rel=1e-5)


def test_cross_entropy_scores_are_probabilities(
    small_splits: Splits, tiny_config: TrainConfig
) -> None:
    scores = train(tiny_config, small_splits).test.scores
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    assert scores.min() >= 0.0


class SeenImages(Layer):
    """An identity first layer that records which training images each epoch fed, in order."""

    def __init__(self, images: np.ndarray) -> None:
        self.index = {row.tobytes(): i for i, row in enumerate(images.reshape(len(images), -1))}
        assert len(self.index) == len(images), "the images must be told apart"
        self.seen: list[int] = []

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if training:
            self.seen += [self.index[row.tobytes()] for row in x]
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out


def epoch_orders(config: TrainConfig, splits: Splits, epochs: int = 2) -> list[list[int]]:
    """The training images, by index, in the order each of ``epochs`` epochs trained them."""
    trainer = MLPTrainer(config, splits)
    recorder = SeenImages(splits.x_train)
    trainer.model.layers.insert(0, recorder)
    orders = []
    for _ in range(epochs):
        recorder.seen = []
        trainer.train_epoch()
        orders.append(recorder.seen)
    return orders


def test_each_epoch_trains_every_image_once_in_a_new_seeded_order(
    small_splits: Splits, tiny_config: TrainConfig
) -> None:
    first, second = epoch_orders(tiny_config, small_splits)
    in_order = list(range(len(small_splits.y_train)))
    assert sorted(first) == sorted(second) == in_order
    assert first != in_order and second != first  # shuffled, and again each epoch
    assert epoch_orders(tiny_config, small_splits) == [first, second]  # drawn from the seed
    assert epoch_orders(tiny_config.replace({"seed": 1}), small_splits)[0] != first
    assert epoch_orders(tiny_config.replace({"mlp.shuffle": False}), small_splits) == [in_order] * 2


def test_the_reported_val_accuracy_is_the_last_epochs_not_the_best(small_splits: Splits) -> None:
    # The sweep objective: what the trained model scores now, not its best moment on the way.
    history = [
        EpochResult(epoch, 1.0, 0.9, 0.5, accuracy, 1e-3, 0.1)
        for epoch, accuracy in ((1, 0.90), (2, 0.95), (3, 0.93))
    ]
    scores = np.eye(10, dtype=np.float32)[small_splits.y_test]
    test = evaluate_scores(small_splits.y_test, scores, loss=0.0)
    result = TrainResult(TrainConfig(), small_splits, history, test, model=None, seconds=1.0)
    assert result.val_accuracy == 0.93 and result.epochs_trained == 3
    assert np.isnan(TrainResult(TrainConfig(), small_splits, [], test, None, 0.0).val_accuracy)
