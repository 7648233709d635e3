"""Faithful-mode switches: each one does what its name says, and together they re-run the
course report's numpy notebook exactly (checked against a reference written from its spec)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnist_models.callbacks import EpochResult
from mnist_models.config import DataConfig, TrainConfig
from mnist_models.data import MnistData, Splits, make_splits
from mnist_models.errors import ConfigError
from mnist_models.metrics import evaluate_scores
from mnist_models.mlp import MSE, Dropout, Linear, ReLU, Sequential, build_mlp
from mnist_models.mlp.per_sample import applies
from mnist_models.mlp.trainer import MLPTrainer
from mnist_models.training import TrainResult
from sweeps.reported.formats import printed_figures

# The notebook's numpy cells, as the faithful switches spell them (sizes shrunk per test).
NOTEBOOK = {
    "seed": 1,
    "dropout": 0.5,
    "augment": False,
    "data.train_size": 1000,
    "data.val_fraction": 0.0,
    "mlp.init": "uniform",
    "mlp.init_scale": 0.1,
    "mlp.bias": False,
    "mlp.loss": "mse",
    "mlp.optimizer": "sgd",
    "mlp.dtype": "float64",
    "mlp.rng": "legacy",
    "mlp.relu_gate": "output",
    "mlp.dropout_backward": "unmasked",
    "mlp.mse_gradient": "halved",
    "mlp.shuffle": False,
    "mlp.drop_last": True,
    "mlp.train_metrics_divisor": "train_size",
}


def notebook_config(**overrides: object) -> TrainConfig:
    return TrainConfig().replace({**NOTEBOOK, **overrides})


# -- config ------------------------------------------------------------------------------


def test_defaults_are_the_ordinary_behaviour() -> None:
    mlp, data = TrainConfig().mlp, TrainConfig().data
    assert (mlp.rng, mlp.relu_gate, mlp.dropout_backward, mlp.mse_gradient) == (
        "generator",
        "input",
        "masked",
        "exact",
    )
    assert mlp.shuffle and not mlp.drop_last and mlp.train_metrics_divisor == "seen"
    assert not data.double_scale_train


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mlp.rng": "global"}, "mlp.rng='global'"),
        ({"mlp.relu_gate": "both"}, "mlp.relu_gate"),
        ({"mlp.dropout_backward": "scaled"}, "mlp.dropout_backward"),
        ({"mlp.mse_gradient": "double"}, "mlp.mse_gradient"),
        ({"mlp.mse_gradient": "halved", "mlp.loss": "cross_entropy"}, "unless mlp.loss"),
        ({"mlp.train_metrics_divisor": "batches"}, "mlp.train_metrics_divisor"),
        ({"mlp.rng": "legacy", "dropout": 0.3}, "0 or 0.5 with mlp.rng = 'legacy'"),
        ({"mlp.rng": "legacy", "dropout": 0.0, "seed": 2**32}, "< 2**32"),
        ({"mlp.shuffle": "no"}, "true or false"),
    ],
)
def test_bad_switch_values_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        TrainConfig().replace(overrides)
    assert message in str(caught.value)


# -- layers and loss ---------------------------------------------------------------------


def test_relu_output_gate_passes_gradient_through_negative_inputs() -> None:
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    for gate in ("input", "output"):
        relu = ReLU(gate)
        np.testing.assert_array_equal(relu.forward(x), [[0.0, 0.0, 0.0, 0.5, 3.0]])
        grad = relu.backward(np.full_like(x, 7.0))
        expected = [[0, 0, 0, 7, 7]] if gate == "input" else [[7, 7, 7, 7, 7]]
        np.testing.assert_array_equal(grad, expected)
    with pytest.raises(ValueError, match="gate='both'"):
        ReLU("both")


@pytest.mark.parametrize("rng_kind", ["generator", "legacy"])
def test_dropout_backward_unmasked_skips_the_mask_only(rng_kind: str) -> None:
    def rng() -> np.random.Generator | np.random.RandomState:
        return np.random.default_rng(5) if rng_kind == "generator" else np.random.RandomState(5)

    x = np.random.default_rng(0).standard_normal((6, 40))
    masked, unmasked = Dropout(0.5, rng()), Dropout(0.5, rng(), backward="unmasked")
    out = masked.forward(x, training=True)
    np.testing.assert_array_equal(unmasked.forward(x, training=True), out)  # same forward
    grad = np.ones_like(x)
    np.testing.assert_array_equal(unmasked.backward(grad), grad)
    np.testing.assert_array_equal(masked.backward(grad), np.where(out == 0, 0.0, 2.0))
    assert 0 < np.count_nonzero(out == 0) < x.size


def test_legacy_dropout_is_randint_two_times_two_and_blocks_equal_single_draws() -> None:
    layer = Dropout(0.5, np.random.RandomState(3))
    out = layer.forward(np.ones((2, 7)), training=True)
    np.testing.assert_array_equal(out, np.random.RandomState(3).randint(2, size=(2, 7)) * 2)
    assert layer.forward(np.ones((2, 7))).sum() == 14  # evaluation: no mask, no scaling
    with pytest.raises(ValueError, match=r"0 or 0\.5 with a legacy RandomState"):
        Dropout(0.3, np.random.RandomState(0))
    for make in (lambda: np.random.RandomState(9), lambda: np.random.default_rng(9)):
        for shape in ((1, 33), (4, 10)):  # odd sizes leave half a 64-bit word unused
            one_by_one = Dropout(0.5, make())
            singles = np.stack([one_by_one.keep_mask(shape) for _ in range(5)])
            np.testing.assert_array_equal(Dropout(0.5, make()).keep_masks(5, shape), singles)


def test_mse_halved_gradient_is_half_the_exact_one_with_the_same_value() -> None:
    output = np.random.default_rng(1).standard_normal((3, 10))
    labels = np.array([4, 0, 9])
    exact, halved = MSE(), MSE("halved")
    assert exact.forward(output, labels) == halved.forward(output, labels)
    diff = output - np.eye(10)[labels]
    np.testing.assert_array_equal(halved.backward(), diff / 3)  # a true division
    np.testing.assert_allclose(exact.backward(), 2 * halved.backward(), rtol=1e-15)
    with pytest.raises(ValueError, match="gradient='double'"):
        MSE("double")


def test_legacy_init_draws_like_old_numpy() -> None:
    uniform = Linear(784, 40, bias=False, init="uniform", rng=np.random.RandomState(1))
    uniform64 = Linear(
        784, 40, bias=False, init="uniform", rng=np.random.RandomState(1), dtype="float64"
    )
    expected = 0.2 * np.random.RandomState(1).random_sample((784, 40)) - 0.1
    np.testing.assert_array_equal(uniform64.weight.value, expected)
    np.testing.assert_array_equal(uniform.weight.value, expected.astype(np.float32))
    he = Linear(30, 5, rng=np.random.RandomState(2), dtype="float64")
    expected_he = np.random.RandomState(2).randn(30, 5) * math.sqrt(2 / 30)
    np.testing.assert_array_equal(he.weight.value, expected_he)


def test_legacy_stream_draws_w01_then_w12_then_the_masks() -> None:
    config = notebook_config(**{"mlp.hidden_sizes": [12]})
    net = build_mlp(config, np.random.RandomState(1))
    stream = np.random.RandomState(1)
    w01 = 0.2 * stream.random_sample((784, 12)) - 0.1
    w12 = 0.2 * stream.random_sample((12, 10)) - 0.1
    mask = stream.randint(2, size=(1, 12))
    assert [repr(layer) for layer in net] == [
        "Linear(784, 12, bias=False, dtype=float64)",
        "ReLU(gate='output')",
        "Dropout(0.5, backward='unmasked')",
        "Linear(12, 10, bias=False, dtype=float64)",
    ]
    np.testing.assert_array_equal(net.parameters()[0].value, w01)
    np.testing.assert_array_equal(net.parameters()[1].value, w12)
    dropout = net[2]
    assert isinstance(dropout, Dropout)
    np.testing.assert_array_equal(dropout.forward(np.ones((1, 12)), training=True), mask * 2)


def test_gradients_under_the_faithful_switches() -> None:
    """The default path is the true gradient; ``output`` gating and ``halved`` MSE are not."""
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((4, 6)), np.array([0, 2, 1, 2])

    def gradients(gate: str, loss: MSE) -> np.ndarray:
        net = Sequential(
            Linear(6, 5, bias=False, rng=np.random.default_rng(1), dtype="float64"),
            ReLU(gate),
            Linear(5, 3, bias=False, rng=np.random.default_rng(2), dtype="float64"),
        )
        loss.forward(net.forward(x), labels)
        net.backward(loss.backward())
        return net.parameters()[0].grad.copy()

    true = gradients("input", MSE())
    np.testing.assert_array_equal(gradients("input", MSE("halved")), true / 2)
    ungated = gradients("output", MSE())
    assert not np.allclose(ungated, true)  # some pre-activations are negative


# -- data and printing -------------------------------------------------------------------


def test_val_fraction_zero_keeps_the_first_images_in_order(mnist: MnistData) -> None:
    splits = make_splits(
        mnist, DataConfig(train_size=1000, val_fraction=0.0), seed=7, dtype="float64"
    )
    np.testing.assert_array_equal(splits.x_train, mnist.x_train[:1000] / 255)
    np.testing.assert_array_equal(splits.y_train, mnist.y_train[:1000])
    assert len(splits.y_val) == 0 and len(splits.y_test) == 10000


def test_double_scale_train_divides_training_images_twice(mnist: MnistData) -> None:
    config = DataConfig(train_size=100, val_fraction=0.2, double_scale_train=True)
    twice = make_splits(mnist, config, seed=0, dtype="float64")
    once = make_splits(mnist, DataConfig(train_size=100, val_fraction=0.2), 0, dtype="float64")
    np.testing.assert_array_equal(twice.x_train, once.x_train / 255)
    np.testing.assert_array_equal(twice.x_val, once.x_val / 255)
    np.testing.assert_array_equal(twice.x_test, once.x_test)  # test images scaled once
    assert twice.x_train.max() <= 1 / 255 and twice.digest == once.digest


def test_printed_figures_truncate_errors_and_print_accuracies_in_full() -> None:
    test = evaluate_scores(np.arange(10), np.eye(10), 0.65399)
    epoch = EpochResult(350, 0.10899, 1.0, float("nan"), float("nan"), 0.005, 1.0)
    result = TrainResult(TrainConfig(), None, [epoch], test, None, 1.0)  # type: ignore[arg-type]
    assert printed_figures(result) == {
        "train_error": "0.108",  # truncated, not rounded to 0.109
        "train_accuracy": "1.0",
        "test_error": "0.653",
        "test_accuracy": "1.0",
    }
    result.history[-1] = EpochResult(300, 0.7125, 0.46, 0.0, 0.0, 0.001, 1.0)
    assert printed_figures(result)["train_accuracy"] == "0.46"
    with pytest.raises(ValueError, match="no epoch"):
        printed_figures(TrainResult(TrainConfig(), None, [], test, None, 0.0))  # type: ignore[arg-type]


# -- the trainer against the notebook ----------------------------------------------------


def notebook_reference(
    x: np.ndarray, y: np.ndarray, hidden: int, lr: float, epochs: int, batch: int, dropout: bool
) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float]]]:
    """The spec of the notebook's cells (reported-runs.md), in plain numpy."""
    stream = np.random.RandomState(1)
    w01 = 0.2 * stream.random_sample((x.shape[1], hidden)) - 0.1
    w12 = 0.2 * stream.random_sample((hidden, 10)) - 0.1
    targets = np.eye(10)[y]
    history = []
    for _ in range(epochs):
        error, correct = 0.0, 0
        for b in range(len(x) // batch):
            rows = slice(b * batch, (b + 1) * batch)
            pre = x[rows] @ w01
            hidden_out = pre * (pre >= 0)
            if dropout:
                hidden_out = hidden_out * (stream.randint(2, size=hidden_out.shape) * 2)
            out = hidden_out @ w12
            error += float(np.sum((targets[rows] - out) ** 2))
            correct += int(np.sum(out.argmax(axis=1) == y[rows]))
            delta_out = (targets[rows] - out) / batch
            delta_hidden = (delta_out @ w12.T) * (hidden_out >= 0)  # the gate on the output
            w12 += lr * (hidden_out.T @ delta_out)
            w01 += lr * (x[rows].T @ delta_hidden)
        history.append((error / len(x), correct / len(x)))
    return w01, w12, history


def first_200(mnist: MnistData, dtype: str = "float64") -> Splits:
    return make_splits(mnist, DataConfig(train_size=200, val_fraction=0.0, test_size=10), 0, dtype)


@pytest.fixture(scope="module")
def slice_200(mnist: MnistData) -> Splits:
    return first_200(mnist)


@pytest.mark.parametrize(("batch", "dropout"), [(32, True), (40, False), (1, True), (1, False)])
def test_trainer_matches_the_notebook_bit_for_bit(
    slice_200: Splits, batch: int, dropout: bool
) -> None:
    epochs = 3 if batch > 1 else 2
    config = notebook_config(
        **{"mlp.hidden_sizes": [16], "lr": 0.01, "batch_size": batch, "epochs": epochs},
        dropout=0.5 if dropout else 0.0,
    )
    trainer = MLPTrainer(config, slice_200)
    assert (trainer._per_sample is not None) == (batch == 1)
    history = [trainer.train_epoch() for _ in range(epochs)]
    x = slice_200.x_train.reshape(200, -1)
    w01, w12, expected = notebook_reference(x, slice_200.y_train, 16, 0.01, epochs, batch, dropout)
    np.testing.assert_array_equal(trainer.model.parameters()[0].value, w01)
    np.testing.assert_array_equal(trainer.model.parameters()[1].value, w12)
    for (loss, accuracy), (error, correct) in zip(history, expected, strict=True):
        assert accuracy == correct  # 32 does not divide 200: still divided by 200
        assert loss == pytest.approx(error, rel=1e-13)  # summation order may differ
    corrected = MLPTrainer(config.replace({"mlp.relu_gate": "input"}), slice_200)
    corrected.train_epoch()
    assert not np.array_equal(corrected.model.parameters()[0].value, w01)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"mlp.relu_gate": "input", "mlp.dropout_backward": "masked"},
        {"mlp.rng": "generator", "dropout": 0.3, "mlp.hidden_sizes": [33], "mlp.shuffle": True},
        {"dropout": 0.0, "mlp.dtype": "float32", "mlp.mse_gradient": "exact"},
    ],
)
def test_per_sample_kernel_equals_the_generic_layers(mnist: MnistData, overrides: dict) -> None:
    config = notebook_config(**{"mlp.hidden_sizes": [20], "batch_size": 1, **overrides})
    splits = first_200(mnist, config.dtype)
    fast, generic = MLPTrainer(config, splits), MLPTrainer(config, splits, per_sample_kernel=False)
    assert fast._per_sample is not None and generic._per_sample is None
    for _ in range(2):
        assert fast.train_epoch() == generic.train_epoch()
    for mine, theirs in zip(fast.model.parameters(), generic.model.parameters(), strict=True):
        np.testing.assert_array_equal(mine.value, theirs.value)


def test_the_kernel_applies_only_where_it_computes_the_same_thing() -> None:
    assert applies(notebook_config(batch_size=1))
    for overrides in (
        {"batch_size": 2},
        {"augment": True},
        {"mlp.bias": True},
        {"mlp.hidden_sizes": [8, 8]},
        {"mlp.optimizer": "momentum"},
        {"mlp.loss": "cross_entropy", "mlp.mse_gradient": "exact"},
    ):
        assert not applies(notebook_config(batch_size=1).replace(overrides)), overrides


def test_shuffle_drop_last_and_the_divisor(slice_200: Splits) -> None:
    config = notebook_config(**{"mlp.hidden_sizes": [8], "batch_size": 64, "dropout": 0.0})
    faithful = MLPTrainer(config, slice_200).train_epoch()
    seen = MLPTrainer(config.replace({"mlp.train_metrics_divisor": "seen"}), slice_200)
    loss, accuracy = seen.train_epoch()
    assert loss * 192 == pytest.approx(faithful[0] * 200)  # 3 batches of 64, 8 images dropped
    assert round(accuracy * 192) == round(faithful[1] * 200)
    shuffled = MLPTrainer(config.replace({"mlp.shuffle": True}), slice_200).train_epoch()
    assert shuffled != faithful
    with pytest.raises(ConfigError, match="no batch would be trained"):
        MLPTrainer(config.replace({"batch_size": 256}), slice_200)
