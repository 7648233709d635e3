"""Builds the MLP, its loss and its optimizer from a :class:`TrainConfig`."""

from __future__ import annotations

import numpy as np

from mnist_models.choices import LOSSES, MLP_OPTIMIZERS
from mnist_models.config import TrainConfig
from mnist_models.fields import spelled_out
from mnist_models.mlp.layers import RNG, Dropout, Layer, Linear, Parameter, ReLU, Sequential
from mnist_models.mlp.losses import MSE, Loss, SoftmaxCrossEntropy
from mnist_models.mlp.optimizers import SGD, Adam, Optimizer


def build_mlp(
    config: TrainConfig, rng: RNG, n_inputs: int = 784, n_classes: int = 10
) -> Sequential:
    """``Linear → ReLU → Dropout`` per hidden width (no dropout at rate 0), then a ``Linear``.

    Weights and dropout masks come from two generators spawned from ``rng``, so the same
    ``rng`` state always yields the same weights whatever the dropout rate. A legacy
    ``RandomState`` (faithful mode, ``mlp.rng = "legacy"``) is one stream for everything:
    the weights layer by layer, then the dropout masks as training draws them.
    """
    mlp = config.mlp
    if isinstance(rng, np.random.RandomState):
        weight_rng: RNG = rng
        dropout_rng: RNG = rng
    else:
        weight_rng, dropout_rng = rng.spawn(2)
    layers: list[Layer] = []
    width = n_inputs
    for hidden in (*mlp.hidden_sizes, n_classes):
        if layers:  # every Linear but the first follows a hidden layer's activation
            layers.append(ReLU(mlp.relu_gate))
            if config.dropout > 0:
                layers.append(Dropout(config.dropout, dropout_rng, mlp.dropout_backward))
        layers.append(
            Linear(
                width,
                hidden,
                bias=mlp.bias,
                init=mlp.init,
                init_scale=mlp.init_scale,
                rng=weight_rng,
                dtype=mlp.dtype,
            )
        )
        width = hidden
    return Sequential(*layers)


def build_loss(config: TrainConfig) -> Loss:
    """``cross_entropy`` → :class:`SoftmaxCrossEntropy`, ``mse`` → :class:`MSE`."""
    if config.mlp.loss == "cross_entropy":
        return SoftmaxCrossEntropy()
    if config.mlp.loss == "mse":
        return MSE(config.mlp.mse_gradient)
    raise ValueError(f"{config.mlp.loss=} must be {spelled_out(LOSSES)}")


def build_optimizer(
    config: TrainConfig, params: list[Parameter], fold_lr: bool = False
) -> Optimizer:
    """``sgd`` → plain :class:`SGD`, ``momentum`` → SGD with momentum, ``adam`` → :class:`Adam`.

    Args:
        config: The run's config.
        params: The parameters to update.
        fold_lr: For a caller that scales the loss gradient by the optimizer's
            ``loss_scale`` (as :class:`~mnist_models.mlp.trainer.MLPTrainer` does): plain SGD
            in float32 then folds the learning rate into it (see :class:`SGD`). float64 keeps
            ``value += grad * -lr`` rounding, which faithful runs reproduce bit for bit.
    """
    name = config.mlp.optimizer
    if name == "sgd":
        return SGD(params, config.lr, fold_lr=fold_lr and config.mlp.dtype == "float32")
    if name == "momentum":
        return SGD(params, config.lr, momentum=config.mlp.momentum)
    if name == "adam":
        return Adam(params, config.lr)
    raise ValueError(f"{config.mlp.optimizer=} must be {spelled_out(MLP_OPTIMIZERS)}")
