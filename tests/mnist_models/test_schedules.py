"""Learning-rate schedules of the numpy MLP: their rates, the plateau rule against Keras's,
optimizers whose rate changes between steps, and the trainer that drives them per epoch."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest

from mnist_models.config import DataConfig, TrainConfig
from mnist_models.data import MnistData, Splits, make_splits
from mnist_models.errors import ConfigError
from mnist_models.mlp import SGD, Adam, Optimizer, Parameter
from mnist_models.mlp.per_sample import applies
from mnist_models.mlp.schedules import (
    ConstantLR,
    CosineLR,
    LRSchedule,
    PlateauLR,
    StepLR,
    build_schedule,
)
from mnist_models.mlp.trainer import MLPTrainer
from mnist_models.training import train


def rates(schedule: LRSchedule, epochs: int) -> list[float]:
    return [schedule.rate(epoch) for epoch in range(1, epochs + 1)]


def plateau_rates(schedule: LRSchedule, accuracies: list[float]) -> list[float]:
    """The rate of each epoch, telling the schedule each epoch's accuracy after it."""
    seen = []
    for epoch, accuracy in enumerate(accuracies, start=1):
        seen.append(schedule.rate(epoch))
        schedule.update(epoch, accuracy)
    return seen


# -- the schedules ---------------------------------------------------------------------------


def test_constant() -> None:
    assert rates(ConstantLR(0.03), 4) == [0.03] * 4
    assert rates(ConstantLR(0.03, min_lr=0.03), 2) == [0.03] * 2


def test_step_cuts_every_step_epochs_down_to_the_floor() -> None:
    assert rates(StepLR(0.8, step_epochs=1, factor=0.5), 4) == [0.8, 0.4, 0.2, 0.1]
    assert rates(StepLR(0.8, step_epochs=2, factor=0.5), 5) == [0.8, 0.8, 0.4, 0.4, 0.2]
    floored = StepLR(1.0, step_epochs=1, factor=0.1, min_lr=0.005)
    assert rates(floored, 5) == pytest.approx([1.0, 0.1, 0.01, 0.005, 0.005], rel=1e-12)
    assert floored.rate(100) == 0.005


@pytest.mark.parametrize("min_lr", [0.0, 0.001])
def test_cosine_runs_half_a_cosine_from_lr_towards_min_lr(min_lr: float) -> None:
    lr, epochs = 0.1, 8
    seen = rates(CosineLR(lr, epochs, min_lr), epochs)
    expected = [
        min_lr + (lr - min_lr) * (1 + math.cos(math.pi * (e - 1) / epochs)) / 2
        for e in range(1, epochs + 1)
    ]
    assert seen == pytest.approx(expected, rel=1e-12)
    assert seen[0] == lr  # the first epoch at full rate
    assert seen[epochs // 2] == pytest.approx((lr + min_lr) / 2, rel=1e-12)  # halfway
    assert all(a > b for a, b in itertools.pairwise(seen))
    assert seen[-1] > min_lr
    assert CosineLR(lr, epochs, min_lr).rate(epochs + 1) == pytest.approx(min_lr, abs=1e-15)
    assert CosineLR(lr, epochs, min_lr).rate(epochs + 5) == pytest.approx(min_lr, abs=1e-15)
    assert rates(CosineLR(lr, 1, min_lr), 1) == [lr]


def test_plateau_by_hand() -> None:
    # patience 2, factor 0.5: two epochs without a better accuracy cut the rate once.
    accuracies = [0.50, 0.60, 0.60, 0.55, 0.70, 0.69, 0.68, 0.67, 0.66, 0.71, 0.70]
    expected = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    #  epoch     1    2    3    4    5    6    7    8     9     10     11
    # 0.60 ties at epoch 3 (not better), epoch 4 is the 2nd miss: epoch 5 trains at 0.5;
    # 0.70 resets; misses at 6, 7 cut (epoch 8), misses at 8, 9 cut again (epoch 10).
    assert plateau_rates(PlateauLR(1.0, factor=0.5, patience=2), accuracies) == expected


def test_plateau_stops_at_the_floor() -> None:
    schedule = PlateauLR(1.0, factor=0.3, patience=1, min_lr=0.0625)
    seen = plateau_rates(schedule, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert seen == pytest.approx([1.0, 1.0, 0.3, 0.09, 0.0625, 0.0625], rel=1e-12)


def test_plateau_without_validation_keeps_the_rate() -> None:
    schedule = PlateauLR(0.1, factor=0.5, patience=1)
    assert plateau_rates(schedule, [math.nan] * 6) == [0.1] * 6
    # NaN epochs neither count as misses nor become the best.
    assert plateau_rates(PlateauLR(0.1, 0.5, 2), [0.5, math.nan, 0.4, math.nan, 0.3, 0.3]) == (
        pytest.approx([0.1, 0.1, 0.1, 0.1, 0.1, 0.05])
    )


def keras_plateau_rates(
    accuracies: list[float], lr: float, factor: float, patience: int, min_lr: float
) -> list[float]:
    """The rate of each epoch under Keras's own ReduceLROnPlateau, driving it with a dummy
    model whose optimizer holds the rate as a python float."""
    keras = pytest.importorskip("keras")
    callback = keras.callbacks.ReduceLROnPlateau(
        monitor="val_accuracy",
        mode="max",
        factor=factor,
        patience=patience,
        min_lr=min_lr,
        min_delta=0,
        cooldown=0,
    )
    model = SimpleNamespace(optimizer=SimpleNamespace(learning_rate=lr))
    callback.set_model(model)
    callback.on_train_begin()
    seen = []
    for index, accuracy in enumerate(accuracies):
        seen.append(float(model.optimizer.learning_rate))
        callback.on_epoch_end(index, {"val_accuracy": accuracy})  # Keras counts from 0
    return seen


@pytest.mark.parametrize(
    ("factor", "patience", "min_lr"), [(0.5, 1, 0.0), (0.5, 2, 0.0625), (0.3, 3, 0.015625)]
)
def test_plateau_follows_keras_reduce_lr_on_plateau(
    factor: float, patience: int, min_lr: float
) -> None:
    rng = np.random.default_rng(patience)
    for _ in range(5):
        # A rising, noisy accuracy in steps of 1/50, so ties and long plateaus happen.
        walk = np.cumsum(rng.integers(-1, 3, size=30)) / 50
        accuracies = [float(a) for a in np.clip(0.5 + walk, 0, 1)]
        mine = plateau_rates(PlateauLR(1.0, factor, patience, min_lr), accuracies)
        assert mine == keras_plateau_rates(accuracies, 1.0, factor, patience, min_lr)
        assert min(mine) < 1.0  # the sequences do exercise the cuts


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ConstantLR(0.0), "lr=0.0 must be > 0"),
        (lambda: ConstantLR(-1.0), "lr=-1.0 must be > 0"),
        (lambda: ConstantLR(0.1, min_lr=-0.1), "min_lr=-0.1 must be in [0, lr=0.1]"),
        (lambda: ConstantLR(0.1, min_lr=0.2), "min_lr=0.2 must be in [0, lr=0.1]"),
        (lambda: StepLR(0.1, 0, 0.5), "step_epochs=0 must be an integer >= 1"),
        (lambda: StepLR(0.1, 1, 1.0), "factor=1.0 must be in (0, 1)"),
        (lambda: StepLR(0.1, 1, 0.0), "factor=0.0 must be in (0, 1)"),
        (lambda: CosineLR(0.1, 0), "epochs=0 must be an integer >= 1"),
        (lambda: PlateauLR(0.1, 0.5, 0), "patience=0 must be an integer >= 1"),
        (lambda: PlateauLR(0.1, 1.5, 2), "factor=1.5 must be in (0, 1)"),
        (lambda: ConstantLR(0.1).rate(0), "epoch=0 must be an integer >= 1"),
    ],
)
def test_bad_arguments_raise(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        build()
    assert message in str(caught.value)


def mlp_config(**overrides: object) -> TrainConfig:
    return TrainConfig().replace(overrides)


def test_build_schedule_reads_the_config() -> None:
    assert isinstance(build_schedule(mlp_config()), ConstantLR)
    step = build_schedule(
        mlp_config(lr=0.4, **{"mlp.lr_schedule": "step", "mlp.lr_step_epochs": 3})
    )
    assert isinstance(step, StepLR) and (step.lr, step.step_epochs, step.factor) == (0.4, 3, 0.5)
    cosine = build_schedule(
        mlp_config(epochs=7, **{"mlp.lr_schedule": "cosine", "mlp.min_lr": 1e-4})
    )
    assert isinstance(cosine, CosineLR) and (cosine.epochs, cosine.min_lr) == (7, 1e-4)
    plateau = build_schedule(
        mlp_config(**{"mlp.lr_schedule": "plateau", "mlp.lr_factor": 0.2, "mlp.lr_patience": 5})
    )
    assert isinstance(plateau, PlateauLR) and (plateau.factor, plateau.patience) == (0.2, 5)
    with pytest.raises(ValueError, match=r"min_lr=0\.1"):
        build_schedule(mlp_config(lr=0.01, **{"mlp.min_lr": 0.1}))


# -- optimizers whose rate changes -----------------------------------------------------------


def make_optimizer(kind: str, params: list[Parameter], lr: float) -> Optimizer:
    if kind == "sgd":
        return SGD(params, lr)
    if kind == "folded":
        return SGD(params, lr, fold_lr=True)
    if kind == "momentum":
        return SGD(params, lr, momentum=0.9)
    return Adam(params, lr)


def set_grad(param: Parameter, optimizer: Optimizer, g: np.ndarray) -> None:
    """What a trainer leaves in ``grad``: the gradient times the optimizer's loss scale."""
    param.grad[...] = g * optimizer.loss_scale


KINDS = ["sgd", "folded", "momentum", "adam"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_rate_steps_like_a_fresh_optimizer_at_that_rate(kind: str) -> None:
    start = np.random.default_rng(0).standard_normal((3, 4))
    g = np.random.default_rng(1).standard_normal((3, 4))
    changed, fresh = Parameter(start.copy()), Parameter(start.copy())
    moved = make_optimizer(kind, [changed], 0.5)
    moved.lr = 0.02
    reference = make_optimizer(kind, [fresh], 0.02)
    assert moved.lr == 0.02 and moved.loss_scale == reference.loss_scale
    for optimizer, param in ((moved, changed), (reference, fresh)):
        set_grad(param, optimizer, g)
        optimizer.step()
    np.testing.assert_array_equal(changed.value, fresh.value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_rate_changed_mid_run_keeps_the_state_and_applies_from_the_next_step(
    kind: str,
) -> None:
    start = np.random.default_rng(2).standard_normal((2, 5))
    grads = [np.random.default_rng(3 + i).standard_normal((2, 5)) for i in range(6)]
    lrs = [0.1, 0.1, 0.1, 0.03, 0.03, 0.2]
    param = Parameter(start.copy())
    optimizer = make_optimizer(kind, [param], lrs[0])
    w, velocity, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start), 0.0 * start
    for t, (lr, g) in enumerate(zip(lrs, grads, strict=True), start=1):
        optimizer.lr = lr
        set_grad(param, optimizer, g)
        optimizer.step()
        if kind == "momentum":  # Keras's SGD: a new rate scales only the new gradient
            velocity = 0.9 * velocity - lr * g
            w = w + velocity
        elif kind == "adam":  # the moments carry on; the step takes the new rate
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            w = w - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        else:
            w = w - lr * g
        np.testing.assert_allclose(param.value, w, rtol=1e-12, atol=1e-14)


def test_the_folded_loss_scale_follows_the_rate_and_bad_rates_raise() -> None:
    params = [Parameter(np.zeros(2, dtype=np.float32))]
    folded, plain = SGD(params, 0.1, fold_lr=True), SGD(params, 0.1)
    folded.lr, plain.lr = 0.025, 0.025
    assert folded.loss_scale == -0.025 and plain.loss_scale == 1.0
    for optimizer in (folded, Adam(params, 0.1)):
        for bad in (0.0, -0.1, math.nan):
            with pytest.raises(ValueError, match="must be > 0"):
                optimizer.lr = bad
        assert optimizer.lr in (0.025, 0.1)  # unchanged


# -- the trainer -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_splits(mnist: MnistData) -> Splits:
    return make_splits(mnist, DataConfig(train_size=300, val_fraction=0.2, test_size=100), 0)


def tiny(**overrides: object) -> TrainConfig:
    base = {"epochs": 3, "mlp.hidden_sizes": [16], "batch_size": 32, "dropout": 0.0}
    return TrainConfig().replace({**base, **overrides})


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_training_reports_the_step_schedule_per_epoch(tiny_splits: Splits, optimizer: str) -> None:
    config = tiny(
        lr=0.04,
        **{
            "mlp.optimizer": optimizer,
            "mlp.lr_schedule": "step",
            "mlp.lr_step_epochs": 1,
            "mlp.lr_factor": 0.5,
        },
    )
    result = train(config, tiny_splits)
    assert [e.learning_rate for e in result.history] == [0.04, 0.02, 0.01]


def test_each_epoch_trains_at_the_rate_it_reports(tiny_splits: Splits) -> None:
    config = tiny(epochs=4, lr=0.1, **{"mlp.optimizer": "sgd", "mlp.lr_schedule": "cosine"})
    trainer = MLPTrainer(config, tiny_splits)
    used: list[float] = []
    step = trainer._optimizer.step

    def record() -> None:
        used.append(trainer._optimizer.lr)
        assert trainer._optimizer.loss_scale == -trainer._optimizer.lr  # folded float32 SGD
        step()

    trainer._optimizer.step = record  # type: ignore[method-assign]
    reported: list[float] = []
    trainer.fit(4, lambda epoch, *metrics: reported.append(metrics[-1]) or False)
    assert reported == pytest.approx(rates(CosineLR(0.1, 4), 4), rel=1e-12)
    per_epoch = np.array(used).reshape(4, -1)  # 240 images in batches of 32: 8 steps an epoch
    assert per_epoch.shape == (4, 8)
    np.testing.assert_array_equal(per_epoch, np.repeat(np.array(reported)[:, None], 8, axis=1))


def test_the_plateau_schedule_hears_validation_accuracy(
    tiny_splits: Splits, mnist: MnistData
) -> None:
    config = tiny(
        lr=0.1, **{"mlp.optimizer": "sgd", "mlp.lr_schedule": "plateau", "mlp.lr_patience": 1}
    )
    trainer = MLPTrainer(config, tiny_splits)
    assert trainer.learning_rate == 0.1
    seen = []
    for accuracy in (0.5, 0.6, 0.4, 0.3):  # told by hand, as fit() does after validating
        trainer.train_epoch()
        trainer.end_of_epoch(accuracy)
        seen.append(trainer.learning_rate)
    assert seen == [0.1, 0.1, 0.05, 0.025]
    # Without a validation set the rate never moves.
    no_val = make_splits(mnist, DataConfig(train_size=100, val_fraction=0.0, test_size=50), 0)
    result = train(config, no_val)
    assert [e.learning_rate for e in result.history] == [0.1, 0.1, 0.1]
    assert all(math.isnan(e.val_accuracy) for e in result.history)


def test_min_lr_above_lr_is_a_config_error_before_any_training() -> None:
    with pytest.raises(ConfigError, match=r"mlp.min_lr=0.5: expected <= lr \(0.1\)"):
        tiny(lr=0.1, **{"mlp.min_lr": 0.5})


def test_the_per_sample_kernel_steps_aside_for_schedules_and_decay() -> None:
    per_sample = TrainConfig().replace(
        {
            "batch_size": 1,
            "mlp.bias": False,
            "mlp.loss": "mse",
            "mlp.optimizer": "sgd",
        }
    )
    assert applies(per_sample)
    for overrides in (
        {"mlp.lr_schedule": "step"},
        {"mlp.lr_schedule": "cosine"},
        {"mlp.lr_schedule": "plateau"},
        {"mlp.weight_decay": 1e-4},
    ):
        assert not applies(per_sample.replace(overrides)), overrides
