"""The numpy multilayer perceptron: layers, losses, optimizers and their builders."""

from mnist_models.mlp.layers import Dropout, Layer, Linear, Parameter, ReLU, Sequential
from mnist_models.mlp.losses import MSE, Loss, SoftmaxCrossEntropy
from mnist_models.mlp.model import build_loss, build_mlp, build_optimizer
from mnist_models.mlp.optimizers import SGD, Adam, Optimizer

__all__ = [
    "MSE",
    "SGD",
    "Adam",
    "Dropout",
    "Layer",
    "Linear",
    "Loss",
    "Optimizer",
    "Parameter",
    "ReLU",
    "Sequential",
    "SoftmaxCrossEntropy",
    "build_loss",
    "build_mlp",
    "build_optimizer",
]
