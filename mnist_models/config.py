"""The one config type: a frozen :class:`TrainConfig` and its single TOML serialisation.

Everything a run needs to be re-run lives here. It is logged with every run, stored on every
study, exported by ``best`` and read back by ``reproduce``. Sections are nested dataclasses;
users address fields with dotted keys (``lr``, ``mlp.hidden_sizes``, ``data.train_size``).
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import tomli_w

from mnist_models import fields
from mnist_models.choices import (
    AUGMENTS,
    CNN_OPTIMIZERS,
    DATASETS,
    DROPOUT_BACKWARDS,
    DROPOUT_MODES,
    DTYPES,
    INITS,
    LOSSES,
    LR_SCHEDULES,
    MLP_OPTIMIZERS,
    MODELS,
    MSE_GRADIENTS,
    RELU_GATES,
    RMSPROP_EPSILONS,
    RNG_KINDS,
    TRAIN_METRICS_DIVISORS,
    VAL_SPLITS,
    Augment,
    CNNOptimizer,
    Dataset,
    DropoutBackward,
    DropoutMode,
    Dtype,
    Init,
    LossName,
    LRSchedule,
    MLPOptimizer,
    Model,
    MSEGradient,
    ReluGate,
    RMSpropEpsilon,
    RngKind,
    TrainMetricsDivisor,
    ValSplit,
)
from mnist_models.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "DATASETS",
    "MODELS",
    "AugmentationConfig",
    "CNNConfig",
    "DataConfig",
    "MLPConfig",
    "TrainConfig",
    "config_keys",
    "parse_value",
    "read_toml",
    "set_dotted",
]

_C = TypeVar("_C", bound="_Section")


class _Section:
    """Shared strict (de)serialisation for the config dataclasses."""

    _prefix: ClassVar[str] = ""

    def _name(self, field_name: str) -> str:
        return f"{self._prefix}{field_name}"

    def _require(self, ok: bool, field_name: str, expected: str) -> None:
        if not ok:
            fields.fail(self._name(field_name), getattr(self, field_name), expected)

    def _choice(self, field_name: str, choices: tuple[str, ...], listed: bool = False) -> None:
        """The field must be one of ``choices``: the message spells them out (``'a' or 'b'``),
        or with ``listed`` shows the tuple (``one of ('a', 'b')``)."""
        expected = f"one of {choices}" if listed else fields.spelled_out(choices)
        fields.as_choice(
            self._name(field_name), getattr(self, field_name), choices, expected=expected
        )


@dataclass(frozen=True)
class DataConfig(_Section):
    """Which images to use.

    Attributes:
        dataset: ``auto`` (full MNIST, falling back with a warning to the bundled 5,000-digit
            sample), ``mnist`` (full MNIST, never falls back) or ``sample`` (the bundled sample).
        train_size: Use only the first N training images (the course report used 1,000).
        val_fraction: Share of those images held out, at random by the seed, for validation.
        test_size: Use only the first N test images (``None``: all of them).
        val_split: How the validation images are drawn: ``seeded`` (a permutation from
            ``np.random.default_rng(seed)``) or ``sklearn`` (scikit-learn's
            ``train_test_split(test_size=val_fraction, random_state=seed)``, as the Kaggle
            CNN recipe and the course report did).
        split_seed: Seed of the validation draw (``None``: the training seed).
        double_scale_train: Divide the training (and validation) images by 255 a second
            time, leaving them in [0, 1/255] while the test images stay in [0, 1]. Off by
            default; a faithful-mode switch for the course report's class-based run, whose
            training inputs were scaled twice by mistake.
    """

    _prefix: ClassVar[str] = "data."
    dataset: Dataset = "auto"
    train_size: int | None = None
    val_fraction: float = 0.1
    test_size: int | None = None
    val_split: ValSplit = "seeded"
    split_seed: int | None = None
    double_scale_train: bool = False

    def __post_init__(self) -> None:
        self._choice("dataset", DATASETS, listed=True)
        self._require(self.train_size is None or self.train_size >= 2, "train_size", ">= 2")
        self._require(0.0 <= self.val_fraction < 1.0, "val_fraction", "a value in [0, 1)")
        self._require(self.test_size is None or self.test_size >= 1, "test_size", ">= 1")
        self._choice("val_split", VAL_SPLITS)
        self._require(self.split_seed is None or self.split_seed >= 0, "split_seed", ">= 0")


@dataclass(frozen=True)
class AugmentationConfig(_Section):
    """How training images are distorted when ``augment`` asks for it (never test images).

    ``affine`` draws a random rotation, zoom and shift per image; ``elastic`` is the elastic
    distortion of Simard, Steinkraus & Platt (2003): a displacement field of independent
    U(-1, 1) values per pixel and axis, smoothed by a Gaussian of width ``sigma`` and scaled by
    ``alpha`` (both in pixels). Their values for MNIST were alpha = 34, sigma = 4; a small
    sigma gives random noise, a large one an almost rigid shift.

    Attributes:
        rotation: Maximum rotation in degrees (uniform in ±rotation).
        zoom: Maximum relative zoom (scale uniform in 1 ± zoom).
        shift: Maximum shift as a fraction of the image side, per axis.
        alpha: Scale of the elastic displacement field, in pixels.
        sigma: Width (standard deviation) of the Gaussian smoothing it, in pixels.
    """

    _prefix: ClassVar[str] = "augmentation."
    rotation: float = 10.0
    zoom: float = 0.1
    shift: float = 0.1
    alpha: float = 34.0
    sigma: float = 4.0

    def __post_init__(self) -> None:
        self._require(0.0 <= self.rotation <= 180.0, "rotation", "degrees in [0, 180]")
        self._require(0.0 <= self.zoom < 1.0, "zoom", "a fraction in [0, 1)")
        self._require(0.0 <= self.shift < 1.0, "shift", "a fraction in [0, 1)")
        self._require(0.0 <= self.alpha <= 1000.0, "alpha", "pixels in [0, 1000]")
        self._require(0.1 <= self.sigma <= 28.0, "sigma", "pixels in [0.1, 28]")


@dataclass(frozen=True)
class MLPConfig(_Section):
    """The numpy multilayer perceptron.

    The fields from ``rng`` on are faithful-mode switches, off by default: they re-create the
    numpy code of the course report (chapter 8 of *Grokking Deep Learning*), bugs included.

    Attributes:
        hidden_sizes: Width of each hidden layer (one or more).
        init: ``he`` (normal, std sqrt(2 / fan_in)) or ``uniform`` (U(-init_scale, init_scale),
            the course report's ±0.1).
        init_scale: Half-width of the uniform init.
        bias: Whether linear layers have a bias.
        loss: ``cross_entropy`` (softmax) or ``mse``.
        optimizer: ``sgd``, ``momentum`` or ``adam``.
        momentum: Momentum coefficient of the ``momentum`` optimizer.
        dtype: ``float32`` or ``float64``, kept end to end.
        weight_decay: L2 penalty ``weight_decay / 2 * sum(W**2)`` over the weight matrices
            (not the biases), added to the loss the optimizer descends (0: none).
        lr_schedule: How the learning rate moves from epoch to epoch: ``constant``; ``step``
            (times ``lr_factor`` every ``lr_step_epochs``); ``cosine`` (from ``lr`` down to
            ``min_lr`` along half a cosine over ``epochs``); ``plateau`` (times ``lr_factor``
            after ``lr_patience`` epochs without a better validation accuracy, as the CNN's
            ``ReduceLROnPlateau``). Never below ``min_lr``.
        lr_step_epochs: Epochs between two steps of the ``step`` schedule.
        lr_factor: Learning-rate factor of the ``step`` and ``plateau`` schedules.
        lr_patience: Epochs without improvement before the ``plateau`` schedule cuts.
        min_lr: Floor of every schedule.
        rng: Where weights and dropout masks come from: ``generator`` (separate
            ``np.random.default_rng`` streams spawned from the seed) or ``legacy`` (one
            ``np.random.RandomState(seed)``, the stream ``np.random.seed(seed)`` sets up:
            the weights layer by layer, then one dropout mask per training step drawn as
            ``randint(2)``, so only dropout 0 or 0.5 can be expressed). Shuffling and
            augmentation keep their own generators either way.
        relu_gate: Where the ReLU backward pass takes its gate: ``input`` (pre-activation
            > 0, the true derivative) or ``output`` (activation >= 0, which always holds, so
            the hidden gradient is never gated).
        dropout_backward: ``masked`` (the gradient is masked and scaled like the forward
            pass) or ``unmasked`` (the gradient passes through dropout untouched).
        mse_gradient: Gradient of the ``mse`` loss: ``exact`` (``2 (output - target) / N``)
            or ``halved`` (``(output - target) / N``, the delta of the textbook's
            ``target - output`` convention); the loss value is the same either way.
        shuffle: Whether each epoch visits the training images in a fresh random order
            (off: the same original order every epoch).
        drop_last: Whether to skip a last batch smaller than ``batch_size``.
        train_metrics_divisor: What an epoch's summed training loss and correct count are
            divided by: ``seen`` (the images trained on in that epoch) or ``train_size``
            (all training images, even those ``drop_last`` skipped).
    """

    _prefix: ClassVar[str] = "mlp."
    hidden_sizes: tuple[int, ...] = (256,)
    init: Init = "he"
    init_scale: float = 0.1
    bias: bool = True
    loss: LossName = "cross_entropy"
    optimizer: MLPOptimizer = "adam"
    momentum: float = 0.9
    dtype: Dtype = "float32"
    weight_decay: float = 0.0
    lr_schedule: LRSchedule = "constant"
    lr_step_epochs: int = 10
    lr_factor: float = 0.5
    lr_patience: int = 3
    min_lr: float = 0.0
    rng: RngKind = "generator"
    relu_gate: ReluGate = "input"
    dropout_backward: DropoutBackward = "masked"
    mse_gradient: MSEGradient = "exact"
    shuffle: bool = True
    drop_last: bool = False
    train_metrics_divisor: TrainMetricsDivisor = "seen"

    def __post_init__(self) -> None:
        self._require(
            len(self.hidden_sizes) >= 1 and all(h >= 1 for h in self.hidden_sizes),
            "hidden_sizes",
            "a non-empty list of positive widths",
        )
        self._choice("init", INITS)
        self._require(self.init_scale > 0, "init_scale", "> 0")
        self._choice("loss", LOSSES)
        self._choice("optimizer", MLP_OPTIMIZERS)
        self._require(0.0 <= self.momentum < 1.0, "momentum", "a value in [0, 1)")
        self._choice("dtype", DTYPES)
        self._require(0.0 <= self.weight_decay < 1.0, "weight_decay", "a value in [0, 1)")
        self._choice("lr_schedule", LR_SCHEDULES)
        self._require(self.lr_step_epochs >= 1, "lr_step_epochs", ">= 1")
        self._require(0.0 < self.lr_factor < 1.0, "lr_factor", "a value in (0, 1)")
        self._require(self.lr_patience >= 1, "lr_patience", ">= 1")
        self._require(self.min_lr >= 0, "min_lr", ">= 0")
        self._choice("rng", RNG_KINDS)
        self._choice("relu_gate", RELU_GATES)
        self._choice("dropout_backward", DROPOUT_BACKWARDS)
        self._choice("mse_gradient", MSE_GRADIENTS)
        self._require(
            self.mse_gradient == "exact" or self.loss == "mse",
            "mse_gradient",
            "'exact' unless mlp.loss is 'mse'",
        )
        self._choice("train_metrics_divisor", TRAIN_METRICS_DIVISORS)


@dataclass(frozen=True)
class CNNConfig(_Section):
    """The Keras CNN of the well-known Kaggle MNIST recipe.

    ``[[Conv(f1, 5x5) relu] x2 -> MaxPool -> Dropout] -> [[Conv(f2, 3x3) relu] x2 -> MaxPool
    -> Dropout] -> Dense(dense_units, relu) -> Dropout -> Dense(10, softmax)``.

    Attributes:
        filters: Filters of the two convolution blocks.
        dense_units: Width of the dense layer.
        dropout_rates: The three dropout rates of the recipe (after each block, after dense).
        dropout_mode: How the top-level ``dropout`` applies: ``scale`` (each rate times
            ``dropout / 0.25``, so 0.25 gives the recipe's rates), ``set`` (all three equal
            ``dropout``) or ``fixed`` (``dropout_rates`` as written).
        optimizer: ``rmsprop`` (rho, epsilon below) or ``adam``.
        rho: RMSprop's discounting factor.
        epsilon: The optimizer's epsilon.
        plateau_patience: Epochs without ``val_accuracy`` improvement before the learning rate
            is multiplied by ``plateau_factor`` (0: no schedule).
        plateau_factor: Learning-rate factor of the plateau schedule.
        min_lr: Floor of the plateau schedule.
        early_stopping_patience: Epochs without improvement before stopping (0: never).
        rmsprop_epsilon: Where RMSprop adds ``epsilon``: ``inside_sqrt`` (Keras 3,
            ``sqrt(v + eps)``) or ``outside_sqrt`` (tf.keras 2, ``sqrt(v) + eps``; what the
            course report's TensorFlow 2 run used).
        augment_from_epoch: With ``augment``, the first augmented epoch; earlier epochs train
            the same model, with the same optimizer state, on plain images (the course report's
            "augmented" figure was a second, augmented epoch of its already trained model).
    """

    _prefix: ClassVar[str] = "cnn."
    filters: tuple[int, ...] = (32, 64)
    dense_units: int = 256
    dropout_rates: tuple[float, ...] = (0.25, 0.25, 0.5)
    dropout_mode: DropoutMode = "scale"
    optimizer: CNNOptimizer = "rmsprop"
    rho: float = 0.9
    epsilon: float = 1e-8
    plateau_patience: int = 3
    plateau_factor: float = 0.5
    min_lr: float = 1e-5
    early_stopping_patience: int = 0
    augment_from_epoch: int = 1
    rmsprop_epsilon: RMSpropEpsilon = "inside_sqrt"

    def __post_init__(self) -> None:
        self._require(
            len(self.filters) == 2 and all(f >= 1 for f in self.filters),
            "filters",
            "two positive filter counts",
        )
        self._require(self.dense_units >= 1, "dense_units", ">= 1")
        self._require(
            len(self.dropout_rates) == 3 and all(0 <= r < 1 for r in self.dropout_rates),
            "dropout_rates",
            "three rates in [0, 1)",
        )
        self._choice("dropout_mode", DROPOUT_MODES)
        self._choice("optimizer", CNN_OPTIMIZERS)
        self._require(0.0 <= self.rho < 1.0, "rho", "a value in [0, 1)")
        self._require(self.epsilon > 0, "epsilon", "> 0")
        self._require(self.plateau_patience >= 0, "plateau_patience", ">= 0")
        self._require(0.0 < self.plateau_factor < 1.0, "plateau_factor", "a value in (0, 1)")
        self._require(self.min_lr >= 0, "min_lr", ">= 0")
        self._require(self.early_stopping_patience >= 0, "early_stopping_patience", ">= 0")
        self._require(self.augment_from_epoch >= 1, "augment_from_epoch", ">= 1")
        self._choice("rmsprop_epsilon", RMSPROP_EPSILONS)

    def effective_dropout_rates(self, dropout: float) -> tuple[float, float, float]:
        """The three rates after applying the top-level ``dropout`` as ``dropout_mode`` says."""
        a, b, c = self.dropout_rates
        if self.dropout_mode == "set":
            return (dropout, dropout, dropout)
        if self.dropout_mode == "scale":
            factor = dropout / 0.25
            return tuple(min(0.95, rate * factor) for rate in (a, b, c))  # type: ignore[return-value]
        return (a, b, c)


@dataclass(frozen=True)
class TrainConfig(_Section):
    """Everything needed to train (and re-train) one model.

    Attributes:
        model: Which model to train (``mlp``).
        lr: Learning rate.
        batch_size: Minibatch size (1 trains per sample).
        epochs: Passes over the training images.
        dropout: Dropout rate after each hidden layer, in [0, 1).
        augment: Which distortions training images get (ranges in ``augmentation``):
            ``none``, ``affine``, ``elastic`` or ``affine+elastic`` (one warp: each output
            pixel reads the affine image of its position, displaced by the elastic field).
            ``false`` and ``true`` still mean ``none`` and ``affine``, and those two are
            written as ``false`` and ``true``, so a config saved before the choice existed
            reads and writes back unchanged.
        seed: Seeds weights, dropout masks, shuffling, augmentation and the validation split.
    """

    model: Model = "mlp"
    lr: float = 0.001
    batch_size: int = 128
    epochs: int = 10
    dropout: float = 0.2
    augment: Augment = "none"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)
    cnn: CNNConfig = field(default_factory=CNNConfig)

    # Choices that were booleans before: ``false``/``true`` still read as these values.
    _BOOLEAN_CHOICES: ClassVar[dict[str, tuple[str, str]]] = {"augment": ("none", "affine")}

    def __post_init__(self) -> None:
        self._choice("model", MODELS, listed=True)
        for key, (off, on) in self._BOOLEAN_CHOICES.items():  # augment=True, as before
            if isinstance(getattr(self, key), bool):
                object.__setattr__(self, key, on if getattr(self, key) else off)
        fields.as_choice(
            "augment",
            self.augment,
            AUGMENTS,
            expected=f"true, false, {fields.spelled_out(AUGMENTS)}",
        )
        self._require(self.lr > 0, "lr", "> 0")
        self._require(self.batch_size >= 1, "batch_size", ">= 1")
        self._require(self.epochs >= 1, "epochs", ">= 1")
        self._require(0.0 <= self.dropout < 1.0, "dropout", "a rate in [0, 1)")
        self._require(self.seed >= 0, "seed", ">= 0")
        if self.model == "mlp" and self.mlp.min_lr > self.lr:  # a floor above the start
            fields.fail("mlp.min_lr", self.mlp.min_lr, f"<= lr ({self.lr})")
        if self.model == "mlp" and self.mlp.rng == "legacy":
            # The legacy stream draws masks as randint(2): it can only keep half of the units.
            self._require(self.dropout in (0.0, 0.5), "dropout", "0 or 0.5 with mlp.rng = 'legacy'")
            self._require(self.seed < 2**32, "seed", "< 2**32 with mlp.rng = 'legacy'")

    @property
    def augmented(self) -> bool:
        """Whether training images are distorted at all."""
        return self.augment != "none"

    @property
    def affine(self) -> bool:
        """Whether training images get the random affine warp."""
        return "affine" in self.augment.split("+")

    @property
    def elastic(self) -> bool:
        """Whether training images get the elastic distortion."""
        return "elastic" in self.augment.split("+")

    @property
    def dtype(self) -> Dtype:
        """Floating dtype of the input images (the CNN always trains in float32)."""
        return self.mlp.dtype if self.model == "mlp" else "float32"

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists, no ``None``): the TOML document."""
        out = _to_dict(self)
        for key, (off, on) in self._BOOLEAN_CHOICES.items():
            if out[key] in (off, on):
                out[key] = out[key] == on
        return out

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def flat(self) -> dict[str, Any]:
        """Dotted keys to values, e.g. ``{"lr": 0.001, "mlp.hidden_sizes": [256], ...}``."""
        return _flatten(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> TrainConfig:
        """Builds a config strictly: unknown keys, wrong types and bad values raise.

        Raises:
            ConfigError: One line naming ``source``, the key and what was expected.
        """
        try:
            return _from_dict(cls, data, "")
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_toml(path), source=str(path))

    def replace(self, overrides: Mapping[str, Any], source: str = "override") -> TrainConfig:
        """Returns a copy with dotted-key overrides applied (validated like a file)."""
        merged = self.to_dict()
        for key, value in overrides.items():
            set_dotted(merged, key, value, source)
        return TrainConfig.from_dict(merged, source=source)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Reads a TOML file, turning every failure into a one-line :class:`ConfigError`."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except ValueError as exc:  # TOMLDecodeError, bytes that are not UTF-8, a 5,000-digit integer
        raise ConfigError(f"{path}: malformed TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None


def parse_value(text: str) -> Any:
    """Parses a ``--set`` value as TOML (``0.01``, ``[512, 256]``, ``true``), else as text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_dotted(tree: dict[str, Any], key: str, value: Any, source: str = "override") -> None:
    """Sets ``tree["a"]["b"] = value`` for ``key="a.b"``, refusing keys the config lacks."""
    parts = key.split(".")
    node = tree
    for depth, part in enumerate(parts):
        known = _known_keys(parts[:depth])
        if part not in known:
            where = ".".join(parts[:depth]) or "the top level"
            raise ConfigError(
                f"{source}: unknown key {key!r} (expected one of {sorted(known)} at {where})"
            )
        if depth == len(parts) - 1:
            node[part] = value
        else:
            if not _is_section(parts[: depth + 1]):  # e.g. 'lr.x', or 'data.train_size.x'
                raise ConfigError(f"{source}: {'.'.join(parts[: depth + 1])!r} is not a section")
            node = node.setdefault(part, {})


def config_keys() -> list[str]:
    """Every dotted key a config accepts, those whose default is ``None`` included.

    Read from the dataclass fields, not from ``TrainConfig().to_dict()``: a serialised config
    leaves out ``None`` values (``data.train_size``, ``data.split_seed``), yet they can be set,
    overridden and searched like any other key.
    """
    return sorted(_field_keys(TrainConfig, ""))


# -- helpers ---------------------------------------------------------------------------------


def _section_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(path: list[str]) -> bool:
    cls: Any = TrainConfig
    for part in path:
        cls = _section_types(cls)[part]
    return isinstance(cls, type) and dataclasses.is_dataclass(cls)


def _field_keys(cls: type, prefix: str) -> list[str]:
    hints = _section_types(cls)
    keys = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            keys += _field_keys(kind, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _known_keys(path: list[str]) -> set[str]:
    cls: type = TrainConfig
    for part in path:
        cls = _section_types(cls)[part]
    return {f.name for f in dataclasses.fields(cls)}


def _to_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = _to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        elif value is not None:  # TOML has no null: an absent key means the default None
            out[f.name] = value
    return out


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _from_dict(cls: type[_C], data: Mapping[str, Any], prefix: str) -> _C:
    name = prefix.rstrip(".")
    fields.as_table(name, data, shown=name, expected=f"a table, got {data!r}")
    hints = _section_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in names:
            raise ConfigError(f"unknown key '{prefix}{key}' (expected one of {sorted(names)})")
    kwargs: dict[str, Any] = {}
    booleans: dict[str, tuple[str, str]] = getattr(cls, "_BOOLEAN_CHOICES", {})
    for key, value in data.items():
        kind = hints[key]
        if key in booleans:  # a bool or a choice: __post_init__ maps the one, checks the other
            kwargs[key] = value
        elif isinstance(kind, type) and dataclasses.is_dataclass(kind):
            kwargs[key] = _from_dict(kind, value, f"{prefix}{key}.")  # type: ignore[type-var]
        else:
            kwargs[key] = _coerce(f"{prefix}{key}", value, kind)
    return cls(**kwargs)


_COERCE: dict[type, Callable[[str, Any], Any]] = {
    bool: fields.as_bool,
    int: fields.as_int,
    float: fields.as_float,
    str: fields.as_str,  # a choice field too: __post_init__ checks it is one of the choices
}


def _coerce(name: str, value: Any, kind: Any) -> Any:
    """Checks ``value`` against a field's annotation with the strict rules of
    :mod:`mnist_models.fields` (a bool is never an int, a float always finite)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner)
    if typing.get_origin(kind) is tuple:
        items = fields.as_list(name, value, tuples=True, expected=f"a list of {args[0].__name__}")
        return tuple(_coerce(f"{name}[{i}]", v, args[0]) for i, v in enumerate(items))
    if typing.get_origin(kind) is typing.Literal:  # a choice: a string here, checked against
        return fields.as_str(name, value)  # its choices (with their message) in __post_init__
    if kind in _COERCE:
        return _COERCE[kind](name, value)
    raise TypeError(f"unsupported config annotation {kind!r} for {name}")  # programming error
