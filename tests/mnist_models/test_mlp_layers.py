"""The numpy MLP: gradients against finite differences, dtypes, inits, optimizers, builders."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from helpers.gradients import TOL, numerical_grad, rel_error

from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.mlp import (
    MSE,
    SGD,
    Adam,
    Dropout,
    Layer,
    Linear,
    Loss,
    Parameter,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    build_loss,
    build_mlp,
    build_optimizer,
)
from mnist_models.mlp.trainer import MLPTrainer


def check_layer(make: Callable[[], Layer], x: np.ndarray, training: bool = False) -> Layer:
    """Checks input and parameter gradients of ``sum(forward(x) * r)`` for a random ``r``.

    ``make`` is called before every forward so that stateful layers (dropout) can be rebuilt.
    """
    layer = make()
    r = np.random.default_rng(99).standard_normal(layer.forward(x, training).shape)
    layer = make()
    params = layer.parameters()

    def objective() -> float:
        fresh = make()
        for mine, theirs in zip(fresh.parameters(), params, strict=True):
            mine.value[...] = theirs.value
        return float(np.sum(fresh.forward(x, training) * r))

    layer.forward(x, training)
    grad_in = layer.backward(r)
    assert grad_in.shape == x.shape
    assert rel_error(grad_in, numerical_grad(objective, x)) < TOL
    for p in params:
        assert rel_error(p.grad, numerical_grad(objective, p.value)) < TOL
    return layer


def inputs(shape: tuple[int, ...], seed: int = 0, away_from_zero: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if away_from_zero:
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 1.0, size=shape)
    return rng.standard_normal(shape)


# -- gradient checks (float64) ---------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("init", ["he", "uniform"])
def test_linear_gradients(bias: bool, init: str) -> None:
    weights = Linear(5, 7, bias=bias, init=init, rng=np.random.default_rng(1), dtype="float64")
    if bias:
        assert weights.bias is not None
        weights.bias.value[...] = np.random.default_rng(2).standard_normal(7)

    def make() -> Linear:
        layer = Linear(5, 7, bias=bias, init=init, rng=np.random.default_rng(0), dtype="float64")
        for mine, theirs in zip(layer.parameters(), weights.parameters(), strict=True):
            mine.value[...] = theirs.value
        return layer

    layer = check_layer(make, inputs((4, 5)))
    assert len(layer.parameters()) == (2 if bias else 1)


@pytest.mark.parametrize("training", [False, True])
def test_relu_gradient(training: bool) -> None:
    check_layer(ReLU, inputs((4, 6), away_from_zero=True), training)


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.5])
def test_dropout_gradient_with_a_fixed_mask(rate: float) -> None:
    layer = check_layer(lambda: Dropout(rate, np.random.default_rng(5)), inputs((4, 6)), True)
    if rate > 0:
        assert np.count_nonzero(layer.forward(np.ones((4, 6)), training=True) == 0) > 0


@pytest.mark.parametrize("loss_type", [MSE, SoftmaxCrossEntropy])
def test_loss_gradients(loss_type: type[Loss]) -> None:
    output = inputs((4, 10), seed=3)
    labels = np.array([0, 3, 9, 3])
    loss = loss_type()
    loss.forward(output, labels)
    grad = loss.backward()
    assert grad.shape == output.shape
    numeric = numerical_grad(lambda: loss_type().forward(output, labels), output)
    assert rel_error(grad, numeric) < TOL


def test_loss_values() -> None:
    labels = np.array([1, 2])
    assert SoftmaxCrossEntropy().forward(np.zeros((2, 10)), labels) == pytest.approx(math.log(10))
    output = np.zeros((2, 10))
    output[0, 1] = 0.5  # (0.5 - 1)^2 for sample 0, (0 - 1)^2 for sample 1
    assert MSE().forward(output, labels) == pytest.approx((0.25 + 1.0) / 2)


def test_cross_entropy_is_stable_for_huge_logits() -> None:
    output = np.array([[1000.0, 0.0, -1000.0], [-1000.0, 0.0, 1000.0]], dtype=np.float32)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(output, np.array([0, 0]))
    assert value == pytest.approx(1000.0)
    grad = loss.backward()
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, np.array([[0.0, 0, 0], [-0.5, 0, 0.5]]), atol=1e-6)


@pytest.mark.parametrize("loss_type", [MSE, SoftmaxCrossEntropy])
def test_whole_network_gradients(loss_type: type[Loss]) -> None:
    rng = np.random.default_rng(0)
    net = Sequential(
        Linear(6, 7, rng=rng, dtype="float64"),
        ReLU(),
        Dropout(0.25, np.random.default_rng(11)),
        Linear(7, 5, rng=rng, dtype="float64"),
        ReLU(),
        Linear(5, 3, rng=rng, dtype="float64"),
    )
    for p in net.parameters():  # non-zero biases so that they matter
        p.value += 0.1 * rng.standard_normal(p.shape)
    drop = net[2]
    assert isinstance(drop, Dropout)
    x, labels = inputs((4, 6), seed=4), np.array([0, 2, 1, 2])

    def objective() -> float:
        drop.rng = np.random.default_rng(11)  # the same mask at every evaluation
        return loss_type().forward(net.forward(x, training=True), labels)

    loss = loss_type()
    drop.rng = np.random.default_rng(11)
    loss.forward(net.forward(x, training=True), labels)
    grad_in = net.backward(loss.backward())
    assert len(net.parameters()) == 6
    analytic = [p.grad.copy() for p in net.parameters()]
    for p, grad in zip(net.parameters(), analytic, strict=True):
        assert rel_error(grad, numerical_grad(objective, p.value)) < TOL
    assert rel_error(grad_in, numerical_grad(objective, x)) < TOL

    # The finite differences left other inputs in the layers: forward again, then backward
    # without the input gradient must give the same parameter gradients.
    drop.rng = np.random.default_rng(11)
    loss.forward(net.forward(x, training=True), labels)
    net.backward_params(loss.backward())
    for p, grad in zip(net.parameters(), analytic, strict=True):
        np.testing.assert_allclose(p.grad, grad, rtol=1e-12)


# -- dtypes ----------------------------------------------------------------------------------


def test_float32_stays_float32_end_to_end() -> None:
    rng = np.random.default_rng(0)
    f32 = np.float32
    for layer in (
        Linear(8, 6, rng=rng),
        Linear(8, 6, init="uniform", rng=rng),
        ReLU(),
        Dropout(0.5, rng),
        Sequential(Linear(8, 6, rng=rng), ReLU(), Dropout(0.2, rng), Linear(6, 8, rng=rng)),
    ):
        for training in (False, True):
            x = rng.standard_normal((5, 8), dtype=f32)
            out = layer.forward(x, training)
            assert out.dtype == f32, layer
            assert layer.backward(np.ones_like(out)).dtype == f32, layer
            assert all(p.value.dtype == f32 and p.grad.dtype == f32 for p in layer.parameters())

    # A float64 (or integer) input is cast to the layer's dtype, not the other way round.
    assert Linear(3, 2, rng=rng).forward(np.ones((1, 3))).dtype == f32
    assert Linear(3, 2, rng=rng).forward(np.ones((1, 3), dtype=np.uint8)).dtype == f32

    output, labels = rng.standard_normal((5, 10), dtype=f32), np.array([0, 1, 2, 3, 4])
    for loss in (MSE(), SoftmaxCrossEntropy()):
        assert isinstance(loss.forward(output, labels), float)
        assert loss.backward().dtype == f32

    params = Sequential(Linear(4, 3, rng=rng), Linear(3, 2, rng=rng)).parameters()
    for p in params:
        p.grad[...] = 0.5
    for optimizer in (SGD(params, 0.1), SGD(params, 0.1, momentum=0.9), Adam(params, 0.1)):
        optimizer.step()
        optimizer.step()
        state = [*getattr(optimizer, "velocities", []), *getattr(optimizer, "m", [])]
        state += getattr(optimizer, "v", [])
        assert all(s.dtype == f32 for s in state)
        assert all(p.value.dtype == f32 for p in params)
    assert all(p.dtype == np.float64 for p in Linear(2, 2, rng=rng, dtype="float64").parameters())


# -- dropout ---------------------------------------------------------------------------------


def test_dropout_is_identity_in_eval_and_at_rate_zero() -> None:
    x = np.random.default_rng(0).standard_normal((20, 30)).astype(np.float32)
    layer = Dropout(0.5, np.random.default_rng(0))
    assert layer.forward(x, training=False) is x
    assert layer.backward(x) is x
    assert Dropout(0.0, np.random.default_rng(0)).forward(x, training=True) is x


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_dropout_keeps_the_mean_and_drops_at_the_rate(rate: float) -> None:
    x = np.full((1000, 1000), 2.0, dtype=np.float32)
    layer = Dropout(rate, np.random.default_rng(0))
    out = layer.forward(x, training=True)
    assert np.mean(out == 0) == pytest.approx(rate, abs=0.003)
    assert float(out.mean()) == pytest.approx(2.0, rel=0.01)
    np.testing.assert_allclose(out[out != 0], 2.0 / (1 - rate), rtol=1e-6)
    grad = layer.backward(np.ones_like(x))  # the same mask, the same scale
    np.testing.assert_array_equal(grad * 2.0, out)
    assert not np.array_equal(layer.forward(x, training=True), out)  # a fresh mask each call


# -- initialisation --------------------------------------------------------------------------


def test_uniform_init_stays_within_the_scale() -> None:
    layer = Linear(300, 200, init="uniform", init_scale=0.1, rng=np.random.default_rng(0))
    weight = layer.weight.value
    assert np.abs(weight).max() <= 0.1
    assert weight.max() > 0.099 and weight.min() < -0.099
    assert float(weight.std()) == pytest.approx(0.2 / math.sqrt(12), rel=0.02)
    assert layer.bias is not None and not layer.bias.value.any()


@pytest.mark.parametrize("fan_in", [50, 784])
def test_he_init_std(fan_in: int) -> None:
    weight = Linear(fan_in, 400, rng=np.random.default_rng(0)).weight.value
    assert float(weight.std()) == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
    assert abs(float(weight.mean())) < 4 * math.sqrt(2 / fan_in / weight.size)


# -- optimizers ------------------------------------------------------------------------------


def gradient_stream(shape: tuple[int, ...], steps: int) -> list[np.ndarray]:
    rng = np.random.default_rng(42)
    return [rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 1) for _ in range(steps)]


@pytest.mark.parametrize("eps", [1e-8, 1e-2])
@pytest.mark.parametrize(("beta1", "beta2"), [(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)])
def test_adam_matches_the_textbook_update(beta1: float, beta2: float, eps: float) -> None:
    lr, start = 0.01, np.random.default_rng(0).standard_normal((3, 4))
    param = Parameter(start.copy())
    optimizer = Adam([param], lr, beta1=beta1, beta2=beta2, eps=eps)
    w, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for t, g in enumerate(gradient_stream(start.shape, 6), start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        param.grad[...] = g
        optimizer.step()
        np.testing.assert_allclose(param.value, w, rtol=1e-12, atol=1e-14)


def test_adam_first_step_moves_each_weight_by_about_lr() -> None:
    param = Parameter(np.zeros(4))
    param.grad[...] = [3.0, -0.5, 1e-3, 200.0]
    Adam([param], lr=0.1).step()
    np.testing.assert_allclose(param.value, [-0.1, 0.1, -0.1, -0.1], rtol=1e-4)


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_sgd_matches_the_textbook_update(momentum: float) -> None:
    lr, start = 0.05, np.random.default_rng(1).standard_normal((2, 5))
    param = Parameter(start.copy())
    optimizer = SGD([param], lr, momentum=momentum)
    w, velocity = start.copy(), np.zeros_like(start)
    for g in gradient_stream(start.shape, 5):
        velocity = momentum * velocity - lr * g
        w = w + velocity
        param.grad[...] = g
        optimizer.step()
        np.testing.assert_allclose(param.value, w, rtol=1e-12, atol=1e-14)
    if momentum == 0.0:
        assert optimizer.velocities == []


def test_folded_sgd_takes_the_step_the_trainer_scaled_into_the_gradient() -> None:
    start = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    folded, plain = Parameter(start.copy()), Parameter(start.copy())
    fold, textbook = SGD([folded], 0.05, fold_lr=True), SGD([plain], 0.05)
    assert fold.loss_scale == -0.05 and textbook.loss_scale == 1.0
    for g in gradient_stream(start.shape, 5):
        folded.grad[...] = g * fold.loss_scale  # what a gradient through a scaled loss holds
        plain.grad[...] = g
        fold.step()
        textbook.step()
        np.testing.assert_allclose(folded.value, plain.value, rtol=1e-6, atol=1e-6)
    assert not np.array_equal(folded.value, start)
    with pytest.raises(ValueError, match="fold_lr=True needs momentum=0"):
        SGD([plain], 0.05, momentum=0.9, fold_lr=True)


def test_the_trainer_folds_the_learning_rate_only_for_float32_sgd(
    small_splits: Splits, tiny_config: TrainConfig
) -> None:
    base = tiny_config.replace({"mlp.optimizer": "sgd", "lr": 0.05, "dropout": 0.0})
    trainer = MLPTrainer(base, small_splits)
    assert trainer._optimizer.loss_scale == -0.05
    # The folded run takes the same steps as the textbook update, up to float32 rounding.
    reference = MLPTrainer(base, small_splits)
    reference._optimizer = SGD(reference.model.parameters(), 0.05)
    for _ in range(2):
        (loss, accuracy), (ref_loss, ref_accuracy) = trainer.train_epoch(), reference.train_epoch()
        assert loss == pytest.approx(ref_loss, rel=1e-4)
        assert accuracy == pytest.approx(ref_accuracy, abs=2 / len(small_splits.y_train))
    for mine, theirs in zip(trainer.model.parameters(), reference.model.parameters(), strict=True):
        np.testing.assert_allclose(mine.value, theirs.value, rtol=1e-3, atol=1e-5)
    for overrides in (
        {"mlp.dtype": "float64"},
        {"mlp.optimizer": "momentum"},
        {"mlp.optimizer": "adam"},
    ):
        other = MLPTrainer(base.replace(overrides), small_splits)
        assert other._optimizer.loss_scale == 1.0, overrides
    assert build_optimizer(base, trainer.model.parameters()).loss_scale == 1.0  # opt-in only


def test_optimizers_leave_gradients_alone() -> None:
    param = Parameter(np.ones(3))
    param.grad[...] = [1.0, 2.0, 3.0]
    for optimizer in (SGD([param], 0.1), SGD([param], 0.1, momentum=0.9), Adam([param], 0.1)):
        optimizer.step()
        np.testing.assert_array_equal(param.grad, [1.0, 2.0, 3.0])


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda p: SGD(p, 0.0), "lr=0.0 must be > 0"),
        (lambda p: SGD(p, -1.0), "lr=-1.0 must be > 0"),
        (lambda p: SGD(p, 0.1, momentum=1.0), "momentum=1.0"),
        (lambda p: SGD(p, 0.1, momentum=-0.1), "momentum=-0.1"),
        (lambda p: SGD([], 0.1), "params=[]"),
        (lambda p: Adam(p, 0.0), "lr=0.0 must be > 0"),
        (lambda p: Adam(p, 0.1, beta1=1.0), "beta1=1.0"),
        (lambda p: Adam(p, 0.1, beta2=-0.5), "beta2=-0.5"),
        (lambda p: Adam(p, 0.1, eps=0.0), "eps=0.0"),
        (lambda p: Dropout(1.0, np.random.default_rng()), "rate=1.0 must be in [0, 1)"),
        (lambda p: Dropout(-0.1, np.random.default_rng()), "rate=-0.1"),
        (lambda p: Linear(0, 3, rng=np.random.default_rng()), "in_features=0"),
        (lambda p: Linear(3, 0, rng=np.random.default_rng()), "out_features=0"),
        (lambda p: Linear(3, 3, init="xavier", rng=np.random.default_rng()), "init='xavier'"),
        (lambda p: Linear(3, 3, init_scale=0, rng=np.random.default_rng()), "init_scale=0"),
        (lambda p: Linear(3, 3, rng=np.random.default_rng(), dtype="float16"), "dtype='float16'"),
        (lambda p: Sequential(ReLU(), "relu"), "is not a Layer"),  # type: ignore[arg-type]
    ],
)
def test_constructors_reject_bad_arguments(
    build: Callable[[list[Parameter]], object], message: str
) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        build([Parameter(np.zeros(2))])
    assert message in str(caught.value)


def test_backward_before_forward_and_bad_label_shapes_raise() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        Linear(2, 2, rng=np.random.default_rng()).backward(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="before forward"):
        SoftmaxCrossEntropy().backward()
    with pytest.raises(ValueError, match="must be"):
        MSE().forward(np.zeros((3, 10)), np.zeros(4, dtype=int))


# -- builders and training -------------------------------------------------------------------


def config(**mlp: object) -> TrainConfig:
    return TrainConfig().replace({f"mlp.{key}": value for key, value in mlp.items()})


def test_build_mlp_structure_and_determinism() -> None:
    cfg = config(hidden_sizes=[32, 16]).replace({"dropout": 0.3})
    net = build_mlp(cfg, np.random.default_rng(0))
    assert [type(layer) for layer in net] == [Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear]
    assert len(net) == 7
    assert [p.shape for p in net.parameters()] == [
        (784, 32), (32,), (32, 16), (16,), (16, 10), (10,)
    ]  # fmt: skip
    assert all(p.dtype == np.float32 for p in net.parameters())
    assert net.forward(np.zeros((3, 784), dtype=np.float32)).shape == (3, 10)

    again = build_mlp(cfg, np.random.default_rng(0))
    no_dropout = build_mlp(cfg.replace({"dropout": 0.0}), np.random.default_rng(0))
    assert [type(layer) for layer in no_dropout] == [Linear, ReLU, Linear, ReLU, Linear]
    for a, b, c in zip(net.parameters(), again.parameters(), no_dropout.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)
        np.testing.assert_array_equal(a.value, c.value)  # dropout draws from its own stream
    other = build_mlp(cfg, np.random.default_rng(1))
    assert not np.array_equal(other.parameters()[0].value, net.parameters()[0].value)

    x = np.random.default_rng(3).random((5, 784), dtype=np.float32)
    np.testing.assert_array_equal(net.forward(x, True), again.forward(x, True))


def test_build_mlp_options() -> None:
    net = build_mlp(
        config(hidden_sizes=[8], bias=False, init="uniform", init_scale=0.05, dtype="float64"),
        np.random.default_rng(0),
        n_inputs=4,
        n_classes=3,
    )
    assert [p.shape for p in net.parameters()] == [(4, 8), (8, 3)]
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert all(np.abs(p.value).max() <= 0.05 for p in net.parameters())


def test_build_loss_and_optimizer() -> None:
    assert isinstance(build_loss(config(loss="cross_entropy")), SoftmaxCrossEntropy)
    assert isinstance(build_loss(config(loss="mse")), MSE)
    params = [Parameter(np.zeros(2, dtype=np.float32))]
    sgd = build_optimizer(config(optimizer="sgd").replace({"lr": 0.3}), params)
    assert isinstance(sgd, SGD) and sgd.momentum == 0.0 and sgd.lr == 0.3
    momentum = build_optimizer(config(optimizer="momentum", momentum=0.8), params)
    assert isinstance(momentum, SGD) and momentum.momentum == 0.8
    adam = build_optimizer(config(optimizer="adam").replace({"lr": 0.002}), params)
    assert isinstance(adam, Adam) and adam.lr == 0.002


def blobs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    centers = np.array([[2.0, 0.0, 0.0, 0.0], [-1.0, 2.0, 0.0, 0.0], [-1.0, -2.0, 1.0, 0.0]])
    labels = rng.integers(0, 3, size=n)
    x = centers[labels] + 0.6 * rng.standard_normal((n, 4))
    return x.astype(np.float32), labels


@pytest.mark.parametrize(
    ("optimizer", "loss", "lr"),
    [("adam", "cross_entropy", 0.01), ("momentum", "mse", 0.02), ("sgd", "cross_entropy", 0.1)],
)
def test_tiny_model_learns_a_separable_problem(optimizer: str, loss: str, lr: float) -> None:
    cfg = config(hidden_sizes=[16], optimizer=optimizer, loss=loss).replace(
        {"lr": lr, "dropout": 0.1}
    )
    rng = np.random.default_rng(0)
    x, y = blobs(256, rng)
    net = build_mlp(cfg, rng, n_inputs=4, n_classes=3)
    criterion, opt = build_loss(cfg), build_optimizer(cfg, net.parameters())
    for step in range(300):
        batch = slice((step % 8) * 32, (step % 8 + 1) * 32)
        criterion.forward(net.forward(x[batch], training=True), y[batch])
        net.backward(criterion.backward())
        opt.step()
    x_test, y_test = blobs(500, rng)
    accuracy = float(np.mean(net.forward(x_test).argmax(axis=1) == y_test))
    assert accuracy >= 0.95
