"""Every choice list of the core, written once: a ``Literal`` type and its values as a tuple.

The config annotates its fields with these types and checks values against the tuples; the
layers, losses and data loaders check their arguments against the same tuples; the CLI offers
them as argparse ``choices``. A module of its own, importing nothing, because the config and the
layers it configures sit side by side (neither imports the other).
"""

from __future__ import annotations

from typing import Literal, get_args

# -- the run --------------------------------------------------------------------------------

Model = Literal["mlp", "cnn"]
MODELS: tuple[Model, ...] = get_args(Model)

Dtype = Literal["float32", "float64"]
DTYPES: tuple[Dtype, ...] = get_args(Dtype)

Augment = Literal["none", "affine", "elastic", "affine+elastic"]
AUGMENTS: tuple[Augment, ...] = get_args(Augment)

# -- data -----------------------------------------------------------------------------------

Dataset = Literal["auto", "mnist", "sample"]
DATASETS: tuple[Dataset, ...] = get_args(Dataset)

ValSplit = Literal["seeded", "sklearn"]
VAL_SPLITS: tuple[ValSplit, ...] = get_args(ValSplit)

# -- the numpy MLP --------------------------------------------------------------------------

Init = Literal["he", "uniform"]
INITS: tuple[Init, ...] = get_args(Init)

LossName = Literal["cross_entropy", "mse"]
LOSSES: tuple[LossName, ...] = get_args(LossName)

MLPOptimizer = Literal["sgd", "momentum", "adam"]
MLP_OPTIMIZERS: tuple[MLPOptimizer, ...] = get_args(MLPOptimizer)

RngKind = Literal["generator", "legacy"]
RNG_KINDS: tuple[RngKind, ...] = get_args(RngKind)

ReluGate = Literal["input", "output"]
RELU_GATES: tuple[ReluGate, ...] = get_args(ReluGate)

DropoutBackward = Literal["masked", "unmasked"]
DROPOUT_BACKWARDS: tuple[DropoutBackward, ...] = get_args(DropoutBackward)

MSEGradient = Literal["exact", "halved"]
MSE_GRADIENTS: tuple[MSEGradient, ...] = get_args(MSEGradient)

LRSchedule = Literal["constant", "step", "cosine", "plateau"]
LR_SCHEDULES: tuple[LRSchedule, ...] = get_args(LRSchedule)

TrainMetricsDivisor = Literal["seen", "train_size"]
TRAIN_METRICS_DIVISORS: tuple[TrainMetricsDivisor, ...] = get_args(TrainMetricsDivisor)

# -- the Keras CNN --------------------------------------------------------------------------

DropoutMode = Literal["scale", "set", "fixed"]
DROPOUT_MODES: tuple[DropoutMode, ...] = get_args(DropoutMode)

CNNOptimizer = Literal["rmsprop", "adam"]
CNN_OPTIMIZERS: tuple[CNNOptimizer, ...] = get_args(CNNOptimizer)

RMSpropEpsilon = Literal["inside_sqrt", "outside_sqrt"]
RMSPROP_EPSILONS: tuple[RMSpropEpsilon, ...] = get_args(RMSpropEpsilon)
