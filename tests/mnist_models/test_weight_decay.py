"""L2 weight decay of the numpy MLP: which parameters it reaches, its penalty and gradient, the
gradient the trainer hands the optimizer against finite differences, and its effect."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.gradients import TOL, numerical_grad, rel_error

from mnist_models.config import DataConfig, TrainConfig
from mnist_models.data import MnistData, Splits, make_splits
from mnist_models.mlp import SGD, Linear, Parameter, build_mlp
from mnist_models.mlp.regularization import add_l2_gradient, decayed_parameters, l2_penalty
from mnist_models.mlp.trainer import MLPTrainer
from mnist_models.training import train


def config(**overrides: object) -> TrainConfig:
    return TrainConfig().replace(overrides)


# -- the penalty and its gradient ------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_only_the_weight_matrices_are_decayed(bias: bool) -> None:
    net = build_mlp(
        config(dropout=0.2, **{"mlp.hidden_sizes": [8, 4], "mlp.bias": bias}),
        np.random.default_rng(0),
    )
    decayed = decayed_parameters(net)
    weights = [layer.weight for layer in net if isinstance(layer, Linear)]
    assert [id(p) for p in decayed] == [id(p) for p in weights]
    assert [p.shape for p in decayed] == [(784, 8), (8, 4), (4, 10)]
    assert len(net.parameters()) == (6 if bias else 3)
    assert decayed_parameters(net[1]) == []  # a ReLU has nothing to decay


def test_penalty_and_gradient_values() -> None:
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal((3, 4))), Parameter(rng.standard_normal((4, 2)))]
    squares = sum(float(np.sum(p.value**2)) for p in params)
    assert l2_penalty(params, 0.1) == pytest.approx(0.05 * squares, rel=1e-12)
    assert l2_penalty(params, 0.0) == 0.0
    grads = [rng.standard_normal(p.shape) for p in params]
    for p, g in zip(params, grads, strict=True):
        p.grad[...] = g
    add_l2_gradient(params, 0.1, scale=-0.5)
    for p, g in zip(params, grads, strict=True):
        np.testing.assert_allclose(p.grad, g - 0.05 * p.value, rtol=1e-12, atol=1e-15)
        p.grad[...] = g
    add_l2_gradient(params, 0.0, scale=-0.5)
    for p, g in zip(params, grads, strict=True):
        np.testing.assert_array_equal(p.grad, g)
    # The gradient is that of the penalty.
    for p in params:
        p.grad[...] = 0.0
    add_l2_gradient(params, 0.3)
    for p in params:
        numeric = numerical_grad(lambda: l2_penalty(params, 0.3), p.value)
        assert rel_error(p.grad, numeric) < TOL


def test_float32_stays_float32() -> None:
    param = Parameter(np.ones((2, 3), dtype=np.float32))
    add_l2_gradient([param], 1e-4, scale=-0.01)
    assert param.grad.dtype == np.float32
    np.testing.assert_array_equal(param.grad, np.float32(-1e-6))
    assert isinstance(l2_penalty([param], 0.5), float)


# -- the trainer -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def splits_20(mnist: MnistData) -> Splits:
    """20 real training images in float64: one full batch for gradient checks."""
    return make_splits(
        mnist, DataConfig(train_size=20, val_fraction=0.0, test_size=10), 0, "float64"
    )


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("optimizer", ["sgd", "folded_sgd", "adam"])
def test_the_trainer_hands_the_optimizer_the_gradient_of_loss_plus_penalty(
    splits_20: Splits, optimizer: str, loss: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    weight_decay, lr = 0.1, 0.05
    trainer = MLPTrainer(
        config(
            lr=lr,
            dropout=0.0,
            batch_size=20,
            **{
                "mlp.dtype": "float64",
                "mlp.hidden_sizes": [6, 5],
                "mlp.optimizer": "adam" if optimizer == "adam" else "sgd",
                "mlp.loss": loss,
                "mlp.weight_decay": weight_decay,
                "mlp.shuffle": False,
            },
        ),
        splits_20,
    )
    params = trainer.model.parameters()
    if optimizer == "folded_sgd":  # float64 SGD does not fold by itself: fold it here
        trainer._optimizer = SGD(params, lr, fold_lr=True)
    handed: list[list[np.ndarray]] = []
    monkeypatch.setattr(  # record the gradients, leave the weights where they are
        trainer._optimizer, "step", lambda: handed.append([p.grad.copy() for p in params])
    )
    reported_loss, _ = trainer.train_epoch()
    (grads,) = handed  # one full batch
    scale = trainer._optimizer.loss_scale
    assert scale == (-lr if optimizer == "folded_sgd" else 1.0)

    net, criterion = trainer.model, trainer._loss
    x, y = splits_20.x_train.reshape(20, -1), splits_20.y_train
    decayed = decayed_parameters(net)

    def data_loss() -> float:
        return criterion.forward(net.forward(x, training=True), y)

    def objective() -> float:
        return data_loss() + l2_penalty(decayed, weight_decay)

    for p, grad in zip(params, grads, strict=True):
        assert rel_error(grad / scale, numerical_grad(objective, p.value)) < TOL
    # The loss an epoch reports is the data loss alone, without the penalty.
    assert reported_loss == pytest.approx(data_loss(), rel=1e-12)
    assert l2_penalty(decayed, weight_decay) > 0.01 * reported_loss  # so the check can tell


@pytest.fixture(scope="module")
def tiny_splits(mnist: MnistData) -> Splits:
    return make_splits(mnist, DataConfig(train_size=300, val_fraction=0.2, test_size=100), 0)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_weight_decay_keeps_the_weights_smaller(tiny_splits: Splits, optimizer: str) -> None:
    base = config(
        epochs=3,
        lr=0.3 if optimizer == "sgd" else 0.01,
        batch_size=32,
        **{"mlp.hidden_sizes": [16], "mlp.optimizer": optimizer},
    )

    def weight_norm(weight_decay: float) -> float:
        result = train(base.replace({"mlp.weight_decay": weight_decay}), tiny_splits)
        assert result.val_accuracy > 0.4  # still learns (chance is 0.1)
        return sum(float(np.sum(p.value**2)) for p in decayed_parameters(result.model))

    free, decayed = weight_norm(0.0), weight_norm(0.05)
    assert decayed < 0.75 * free


def test_no_decay_no_decayed_parameters(tiny_splits: Splits) -> None:
    assert MLPTrainer(config(), tiny_splits)._decayed == []
    assert len(MLPTrainer(config(**{"mlp.weight_decay": 1e-4}), tiny_splits)._decayed) == 2


# -- subnormals ------------------------------------------------------------------------------


def test_flush_subnormals_zeroes_values_on_their_way_below_the_normal_floats() -> None:
    from mnist_models.mlp import Adam

    param = Parameter(np.zeros(5, dtype=np.float32))
    adam = Adam([param], lr=0.01)
    param.value[:] = [1e-39, -3e-32, 1e-29, 0.5, -0.0]
    adam.m[0][:] = [1e-40, 1e-31, 1e-3, 0.0, -2e-33]
    adam.v[0][:] = [1e-25, 1e-35, 0.0, 0.0, 1e-44]
    adam.flush_subnormals()
    np.testing.assert_array_equal(param.value, np.float32([0.0, 0.0, 1e-29, 0.5, 0.0]))
    np.testing.assert_array_equal(adam.m[0], np.float32([0.0, 0.0, 1e-3, 0.0, 0.0]))
    np.testing.assert_array_equal(adam.v[0], np.float32([1e-25, 0.0, 0.0, 0.0, 0.0]))


@pytest.mark.parametrize("flush", [True, False])
def test_training_with_weight_decay_leaves_no_subnormal_weights(
    mnist: MnistData, flush: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pixel 0 is 0 in every MNIST image, so its first-layer weights get no data gradient: a
    subnormal planted there stays (slowing every later product) unless the trainer flushes."""
    if not flush:
        monkeypatch.setattr(
            "mnist_models.mlp.optimizers.Optimizer.flush_subnormals", lambda _: None
        )
    splits = make_splits(mnist, DataConfig(train_size=20, val_fraction=0.0, test_size=10), 0)
    run = config(**{"mlp.optimizer": "adam", "mlp.weight_decay": 0.01, "batch_size": 20})
    trainer = MLPTrainer(run, splits)
    assert not splits.x_train.reshape(20, -1)[:, 0].any()
    first = trainer.model.parameters()[0].value
    assert first.dtype == np.float32
    first[0, :3] = 1e-39  # subnormal in float32
    trainer.train_epoch()
    arrays = [p.value for p in trainer.model.parameters()] + trainer._optimizer.state()
    subnormal = sum(int(np.count_nonzero((a != 0) & (np.abs(a) < 1.2e-38))) for a in arrays)
    assert (subnormal == 0) == flush
