"""TrainConfig: one strict type, one TOML serialisation, dotted overrides."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnist_models.config import TrainConfig, config_keys, parse_value
from mnist_models.errors import ConfigError


def test_toml_round_trip_is_exact(tmp_path: Path) -> None:
    config = TrainConfig().replace(
        {"mlp.hidden_sizes": [64, 32], "data.train_size": 1000, "lr": 0.0031, "augment": True}
    )
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert TrainConfig.from_toml(path) == config
    assert config.flat()["mlp.hidden_sizes"] == [64, 32]


@pytest.mark.parametrize(
    ("value", "augment", "written"),
    [
        (False, "none", False),
        (True, "affine", True),
        ("none", "none", False),
        ("affine", "affine", True),
        ("elastic", "elastic", "elastic"),
        ("affine+elastic", "affine+elastic", "affine+elastic"),
    ],
)
def test_augment_is_a_choice_that_still_reads_and_writes_the_old_booleans(
    value: object, augment: str, written: object, tmp_path: Path
) -> None:
    """Configs logged before ``augment`` became a choice read back, and write, unchanged."""
    config = TrainConfig().replace({"augment": value})
    assert config.augment == augment
    assert config.to_dict()["augment"] == written
    assert TrainConfig(augment=value).augment == augment  # type: ignore[arg-type]
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert TrainConfig.from_toml(path) == config
    assert (config.augmented, config.affine, config.elastic) == (
        augment != "none",
        "affine" in augment,
        "elastic" in augment,
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"lr": 0}, "lr=0.0: expected > 0"),
        ({"lr": -1.0}, "lr=-1.0: expected > 0"),
        ({"batch_size": 0}, "batch_size=0: expected >= 1"),
        ({"batch_size": 1.5}, "batch_size=1.5: expected an integer"),
        ({"batch_size": True}, "batch_size=True: expected an integer"),
        ({"dropout": 1.0}, "dropout=1.0: expected a rate in [0, 1)"),
        ({"dropout": -0.1}, "dropout=-0.1: expected a rate in [0, 1)"),
        ({"epochs": 0}, "epochs=0: expected >= 1"),
        (
            {"augment": "yes"},
            "augment='yes': expected true, false, 'none', 'affine', 'elastic' or 'affine+elastic'",
        ),
        ({"model": "resnet"}, "model='resnet': expected one of"),
        ({"mlp.hidden_sizes": []}, "mlp.hidden_sizes=(): expected a non-empty list"),
        ({"mlp.hidden_sizes": 128}, "mlp.hidden_sizes=128: expected a list of int"),
        ({"mlp.optimizer": "rmsprop"}, "mlp.optimizer='rmsprop': expected"),
        ({"mlp.dtype": "float16"}, "mlp.dtype='float16': expected"),
        ({"data.val_fraction": 1.0}, "data.val_fraction=1.0: expected a value in [0, 1)"),
        ({"data.dataset": "cifar"}, "data.dataset='cifar': expected one of"),
        ({"augmentation.zoom": 2.0}, "augmentation.zoom=2.0: expected a fraction"),
        ({"augmentation.sigma": 0.0}, "augmentation.sigma=0.0: expected pixels in [0.1, 28]"),
        ({"augmentation.alpha": -1.0}, "augmentation.alpha=-1.0: expected pixels in [0, 1000]"),
        ({"augment": "elastic+affine"}, "augment='elastic+affine': expected true, false"),
        ({"mlp.weight_decay": -0.1}, "mlp.weight_decay=-0.1: expected a value in [0, 1)"),
        ({"mlp.lr_schedule": "linear"}, "mlp.lr_schedule='linear': expected 'constant'"),
        ({"mlp.lr_factor": 1.0}, "mlp.lr_factor=1.0: expected a value in (0, 1)"),
        ({"mlp.lr_step_epochs": 0}, "mlp.lr_step_epochs=0: expected >= 1"),
        ({"learning_rate": 0.1}, "unknown key 'learning_rate'"),
        ({"mlp.hiden_sizes": [1]}, "unknown key 'mlp.hiden_sizes'"),
        ({"lr.x": 1}, "'lr' is not a section"),
    ],
)
def test_bad_values_name_the_key_and_what_was_expected(overrides: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig().replace(overrides, source="my.toml")
    message = str(caught.value)
    assert message.startswith("my.toml: ")
    assert expected in message
    assert "\n" not in message


def test_unknown_key_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("lr = 0.01\n[mlp]\nwidth = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: unknown key 'mlp\.width'"):
        TrainConfig.from_toml(path)


def test_malformed_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("lr = = 3")
    with pytest.raises(ConfigError, match=r"broken\.toml: malformed TOML"):
        TrainConfig.from_toml(bad)
    with pytest.raises(ConfigError, match=r"nothere\.toml: file not found"):
        TrainConfig.from_toml(tmp_path / "nothere.toml")


def test_config_is_frozen() -> None:
    config = TrainConfig()
    with pytest.raises(AttributeError):
        config.lr = 0.5  # type: ignore[misc]


def test_parse_value_reads_toml_values_and_falls_back_to_text() -> None:
    assert parse_value("0.01") == 0.01
    assert parse_value("[512, 256]") == [512, 256]
    assert parse_value("true") is True
    assert parse_value("adam") == "adam"


def test_every_listed_key_is_settable() -> None:
    config = TrainConfig()
    for key in config_keys():
        value = functools.reduce(getattr, key.split("."), config)
        value = list(value) if isinstance(value, tuple) else value
        assert config.replace({key: value}) == config


def test_keys_whose_default_is_none_are_listed() -> None:
    # A serialised config leaves them out; they are still keys to set and search.
    assert {"data.train_size", "data.test_size", "data.split_seed"} <= set(config_keys())
    assert TrainConfig().replace({"data.split_seed": 7}).data.split_seed == 7
    assert len(config_keys()) == len(set(config_keys()))


@given(
    lr=st.floats(min_value=1e-6, max_value=1.0),
    batch=st.integers(min_value=1, max_value=4096),
    dropout=st.floats(min_value=0.0, max_value=0.99),
    hidden=st.lists(st.integers(min_value=1, max_value=2048), min_size=1, max_size=4),
)
def test_any_valid_config_survives_toml(
    lr: float, batch: int, dropout: float, hidden: list
) -> None:
    config = TrainConfig().replace(
        {"lr": lr, "batch_size": batch, "dropout": dropout, "mlp.hidden_sizes": hidden}
    )
    from mnist_models.config import tomllib

    assert TrainConfig.from_dict(tomllib.loads(config.to_toml())) == config
