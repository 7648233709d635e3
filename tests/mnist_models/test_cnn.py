"""The Keras CNN on a few hundred real digits: it learns, it is seeded, augmentation stays in
training, callbacks stop it, and a saved model predicts identically after reloading."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from mnist_models.callbacks import Callback, EpochResult, StopTraining  # noqa: E402
from mnist_models.cnn import RandomAffine, build_cnn  # noqa: E402
from mnist_models.cnn.device import backend_requirements  # noqa: E402
from mnist_models.cnn.model import build_optimizer  # noqa: E402
from mnist_models.cnn.trainer import (  # noqa: E402
    CNNTrainer,
    release_traced_custom_gradients,
    schedule_callbacks,
)
from mnist_models.config import DataConfig, TrainConfig  # noqa: E402
from mnist_models.data import MnistData, Splits, make_splits  # noqa: E402
from mnist_models.training import TrainResult, train  # noqa: E402


@pytest.fixture(scope="module")
def cnn_splits(mnist: MnistData) -> Splits:
    return make_splits(mnist, DataConfig(train_size=600, val_fraction=0.2, test_size=300), 0)


@pytest.fixture(scope="module")
def trained(cnn_splits: Splits) -> TrainResult:
    return train(TrainConfig(model="cnn", epochs=1, batch_size=32), cnn_splits)


@pytest.mark.backend
def test_keras_runs_on_the_backend_it_was_asked_for() -> None:
    # tests/test_keras_backends.py runs the `backend` tests with KERAS_BACKEND=jax: they must
    # not quietly fall back to TensorFlow.
    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", keras.backend.backend())


@pytest.mark.backend
def test_runs_record_the_backend_and_device_and_models_require_the_backend() -> None:
    assert CNNTrainer.runs_on()["keras_backend"] == keras.backend.backend()
    device = CNNTrainer.runs_on()["device"]
    assert device == "cpu" or device.startswith(("gpu ", "tpu ")), device
    # A Keras file loads on any backend, but only where one is installed: the one it ran on.
    keras_pin, backend_pin = backend_requirements()
    assert keras_pin == f"keras=={keras.__version__}"
    name, version = backend_pin.split("==")
    assert name.startswith(keras.backend.backend()) and version


@pytest.mark.backend
def test_one_epoch_learns_above_chance(trained: TrainResult) -> None:
    (epoch,) = trained.history
    assert epoch.val_accuracy > 0.3 and trained.test.accuracy > 0.3  # chance is 0.1
    assert epoch.learning_rate == pytest.approx(0.001)
    np.testing.assert_allclose(trained.test.scores.sum(axis=1), 1.0, rtol=1e-4)


def test_same_seed_same_first_epoch(trained: TrainResult, cnn_splits: Splits) -> None:
    again = train(TrainConfig(model="cnn", epochs=1, batch_size=32), cnn_splits)
    assert again.history[0].train_loss == trained.history[0].train_loss
    assert again.history[0].val_accuracy == trained.history[0].val_accuracy
    np.testing.assert_array_equal(again.test.scores, trained.test.scores)


@pytest.mark.backend
def test_saved_model_reloads_and_predicts_identically(
    trained: TrainResult, cnn_splits: Splits, tmp_path: Path
) -> None:
    path = tmp_path / "cnn.keras"
    trained.model.save(path)
    reloaded = keras.models.load_model(path)
    images = cnn_splits.x_test[..., None]
    np.testing.assert_array_equal(
        reloaded.predict(images, batch_size=1024, verbose=0),
        trained.model.predict(images, batch_size=1024, verbose=0),
    )


@pytest.mark.backend
def test_augmentation_only_in_training(cnn_splits: Splits) -> None:
    layer = RandomAffine(10, 0.1, 0.1, seed=0)
    images = cnn_splits.x_train[:16, ..., None]
    warped = keras.ops.convert_to_numpy(layer(images, training=True))
    assert warped.shape == images.shape
    assert not np.allclose(warped, images)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)
    still = RandomAffine(0, 0, 0, seed=0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(still(images, training=True)), images, atol=1e-6
    )


def test_augmented_training_logs_a_plain_model(cnn_splits: Splits) -> None:
    result = train(TrainConfig(model="cnn", epochs=1, batch_size=32, augment=True), cnn_splits)
    assert not any(isinstance(layer, RandomAffine) for layer in result.model.layers)
    probs = result.model.predict(cnn_splits.x_test[..., None], batch_size=1024, verbose=0)
    np.testing.assert_array_equal(probs, result.test.scores)  # test images were not warped


def test_a_callback_stops_keras_fit(cnn_splits: Splits) -> None:
    class StopAtOne(Callback):
        def on_epoch_end(self, result: EpochResult) -> None:
            raise StopTraining("enough")

    result = train(TrainConfig(model="cnn", epochs=3, batch_size=64), cnn_splits, [StopAtOne()])
    assert result.epochs_trained == 1 and result.stop_reason == "enough"


@pytest.mark.parametrize(
    ("mode", "dropout", "expected"),
    [
        ("scale", 0.25, [0.25, 0.25, 0.5]),
        ("scale", 0.1, [0.1, 0.1, 0.2]),
        ("set", 0.3, [0.3, 0.3, 0.3]),
        ("fixed", 0.4, [0.25, 0.25, 0.5]),
    ],
)
def test_dropout_modes(mode: str, dropout: float, expected: list[float]) -> None:
    config = TrainConfig(model="cnn", dropout=dropout).replace({"cnn.dropout_mode": mode})
    model = build_cnn(config)
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates == pytest.approx(expected)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [32, 32, 64, 64]
    assert [c.kernel_size for c in convs] == [(5, 5), (5, 5), (3, 3), (3, 3)]


def test_augmentation_can_start_at_a_later_epoch_of_the_same_model(
    trained: TrainResult, cnn_splits: Splits
) -> None:
    plain = TrainConfig(model="cnn", epochs=2, batch_size=32)
    later = train(plain.replace({"augment": True, "cnn.augment_from_epoch": 2}), cnn_splits).history
    # Epoch 1 is the plain model's own first epoch, to the bit; epoch 2 trains on warped images.
    assert later[0].train_loss == trained.history[0].train_loss
    assert later[0].val_accuracy == trained.history[0].val_accuracy
    assert [e.epoch for e in later] == [1, 2]
    plain_second = train(plain, cnn_splits).history[1]
    assert later[1].train_loss != plain_second.train_loss
    assert later[1].train_loss > plain_second.train_loss, "warped images are harder to fit"


def test_legacy_rmsprop_adds_epsilon_after_the_square_root() -> None:
    from mnist_models.cnn.legacy_rmsprop import LegacyRMSprop

    grads = np.array([1e-6, 0.5], dtype=np.float32)  # a tiny and an ordinary gradient
    steps = {}
    for name, optimizer in (
        ("legacy", LegacyRMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-8)),
        ("keras3", keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-8)),
    ):
        weight = keras.Variable(np.zeros(2, np.float32))
        optimizer.apply([keras.ops.convert_to_tensor(grads)], [weight])
        steps[name] = -keras.ops.convert_to_numpy(weight)
    velocity = 0.1 * grads.astype(np.float64) ** 2
    np.testing.assert_allclose(
        steps["legacy"], 0.001 * grads / (np.sqrt(velocity) + 1e-8), rtol=1e-5
    )
    np.testing.assert_allclose(steps["keras3"], 0.001 * grads / np.sqrt(velocity + 1e-8), rtol=1e-5)
    assert steps["legacy"][0] > 30 * steps["keras3"][0], "tiny gradients: tf.keras 2 steps far more"
    assert steps["legacy"][1] == pytest.approx(steps["keras3"][1], rel=1e-4)
    with pytest.raises(ValueError, match="momentum"):
        LegacyRMSprop(momentum=0.9)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's own leak")
def test_each_model_releases_the_custom_gradients_of_the_one_before(cnn_splits: Splits) -> None:
    from tensorflow.python.framework import ops

    def registered() -> int:
        names = ops._gradient_registry.list()
        return sum(str(name).startswith("CustomGradient-") for name in names)

    config = TrainConfig(model="cnn", epochs=1, batch_size=32, data=DataConfig(train_size=600))
    train(config, cnn_splits)
    after_one = registered()
    assert after_one > 0  # TensorFlow still leaks them: the release below is still needed
    train(config.replace({"seed": 1}), cnn_splits)
    assert registered() == after_one  # not 2 * after_one: the first model's are gone
    assert release_traced_custom_gradients() == after_one
    assert registered() == 0


# -- the plateau schedule and early stopping, fed synthetic epoch logs ---------------------------


def _compiled_like_the_cnn(config: TrainConfig) -> keras.Model:
    """A tiny model compiled as the trainer compiles the CNN, its metrics built (as in fit)."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(
        optimizer=build_optimizer(config),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.evaluate(np.zeros((2, 2), np.float32), np.zeros(2, np.int64), verbose=0)
    return model


def _learning_rate(model: keras.Model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def _rates_after_each_epoch(config: TrainConfig, logs: list[tuple[float, float]]) -> list[float]:
    """Plays (val_accuracy, val_loss) per epoch into the config's real plateau callback."""
    (plateau,) = schedule_callbacks(config, has_val=True)
    model = _compiled_like_the_cnn(config)
    plateau.set_model(model)
    plateau.on_train_begin()
    rates = []
    for epoch, (val_accuracy, val_loss) in enumerate(logs):
        plateau.on_epoch_end(epoch, {"val_accuracy": val_accuracy, "val_loss": val_loss})
        rates.append(_learning_rate(model))
    return rates


@pytest.mark.parametrize("loss_step", [-0.01, 0.01], ids=["val_loss-improving", "val_loss-worse"])
def test_the_plateau_schedule_halves_the_rate_when_val_accuracy_stalls(loss_step: float) -> None:
    # The recipe's ReduceLROnPlateau (the default config, as in sweeps/cnn.toml): validation
    # accuracy flat for 3 epochs halves the rate, down to 1e-5; validation loss is not watched.
    config = TrainConfig(model="cnn", lr=0.001)
    stalled = [(0.9, 0.5 + loss_step * epoch) for epoch in range(24)]
    rates = _rates_after_each_epoch(config, stalled)
    # After epoch e (0-based) the rate was halved once per 3 epochs without a gain.
    expected = [max(0.001 * 0.5 ** (epoch // 3), 1e-5) for epoch in range(24)]
    assert rates == pytest.approx(expected, rel=1e-6)
    assert rates[:3] == pytest.approx([0.001] * 3) and rates[3] == pytest.approx(0.0005)
    assert rates[-1] == pytest.approx(1e-5)  # the floor holds


def test_the_plateau_schedule_keeps_the_rate_while_val_accuracy_improves() -> None:
    config = TrainConfig(model="cnn", lr=0.002).replace(
        {"cnn.plateau_patience": 1, "cnn.plateau_factor": 0.3}
    )
    improving = [(0.90 + 0.01 * epoch, 0.2 + 0.05 * epoch) for epoch in range(8)]  # loss worse
    assert _rates_after_each_epoch(config, improving) == pytest.approx([0.002] * 8)
    # The configured patience and factor, not the recipe's: one flat epoch costs 0.3x.
    flat_once = [*improving[:3], improving[2], (0.99, 0.1)]
    assert _rates_after_each_epoch(config, flat_once) == pytest.approx([0.002] * 3 + [0.0006] * 2)


def test_early_stopping_watches_val_accuracy_and_restores_the_best_weights() -> None:
    config = TrainConfig(model="cnn").replace(
        {"cnn.plateau_patience": 0, "cnn.early_stopping_patience": 2}
    )
    (stopping,) = schedule_callbacks(config, has_val=True)
    assert isinstance(stopping, keras.callbacks.EarlyStopping)
    model = _compiled_like_the_cnn(config)
    stopping.set_model(model)
    stopping.on_train_begin()
    weights_at: dict[int, list[np.ndarray]] = {}
    # Epoch 1 is the best by accuracy; the loss keeps improving all along (it is not watched).
    for epoch, val_accuracy in enumerate([0.5, 0.8, 0.7, 0.79]):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        weights_at[epoch] = model.get_weights()
        model.stop_training = False
        stopping.on_epoch_end(epoch, {"val_accuracy": val_accuracy, "val_loss": 1.0 - epoch / 10})
        assert model.stop_training == (epoch == 3), f"epoch {epoch}"
    stopping.on_train_end()
    for restored, best in zip(model.get_weights(), weights_at[1], strict=True):
        np.testing.assert_array_equal(restored, best)
    assert schedule_callbacks(config, has_val=False) == []  # nothing to watch


def test_training_runs_the_configured_plateau_schedule(mnist: MnistData) -> None:
    # A rate so small that nothing the model predicts changes: validation accuracy is flat from
    # the first epoch, so patience 2 cuts the rate by 0.3 for the fourth epoch, not before. The
    # rate logged for an epoch is the one it trained with.
    splits = make_splits(mnist, DataConfig(train_size=96, val_fraction=1 / 3, test_size=10), 0)
    config = TrainConfig(model="cnn", epochs=4, batch_size=32, lr=1e-9).replace(
        {"cnn.plateau_patience": 2, "cnn.plateau_factor": 0.3, "cnn.min_lr": 0.0}
    )
    history = train(config, splits).history
    assert len({event.val_accuracy for event in history}) == 1
    rates = [event.learning_rate for event in history]
    assert rates == pytest.approx([1e-9, 1e-9, 1e-9, 3e-10], rel=1e-6)
