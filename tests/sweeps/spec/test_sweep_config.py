"""Sweep files: the packaged default, strict validation, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.files import GOOD_SWEEP_TOML

from mnist_models.config import TrainConfig
from mnist_models.errors import ConfigError
from sweeps.spec.sweep_file import SweepConfig, parse_overrides

GOOD = GOOD_SWEEP_TOML


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_packaged_mlp_sweep_is_the_product_card_space() -> None:
    sweep = SweepConfig.for_model("mlp")
    space = sweep.space.to_dict()
    assert space["lr"] == {"type": "float", "low": 0.001, "high": 0.005, "log": True}
    assert space["batch_size"]["choices"] == [64, 100, 128]
    assert (space["dropout"]["low"], space["dropout"]["high"]) == (0.0, 0.5)
    assert space["augment"]["choices"] == [False, True]
    assert sweep.base.model == "mlp"


def test_round_trip_through_dict(tmp_path: Path) -> None:
    sweep = SweepConfig.from_file(write(tmp_path, GOOD))
    assert SweepConfig.from_dict(sweep.to_dict()) == sweep or (
        SweepConfig.from_dict(sweep.to_dict()).to_dict() == sweep.to_dict()
    )
    assert sweep.trials == 3 and sweep.base.epochs == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD + "[space.width]\ntype='int'\nlow=1\nhigh=3\n",
            "space.width: the model has no parameter 'width'",
        ),
        (
            GOOD + "[space.dropout]\ntype='float'\nlow=0.0\nhigh=1.0\n",
            "space.dropout: dropout=1.0: expected a rate in [0, 1)",
        ),
        (
            GOOD + "[space.batch_size]\ntype='categorical'\nchoices=[64, 0]\n",
            "space.batch_size: batch_size=0: expected >= 1",
        ),
        (
            GOOD + "[space.augment]\ntype='categorical'\nchoices=['yes']\n",
            "space.augment: augment='yes': expected true, false, 'none', 'affine'",
        ),
        (GOOD.replace("low = 0.001", "low = -1.0"), "space.lr: low=-1.0 must be > 0 when log"),
        (GOOD.replace("epochs = 2", "epochs = 0"), "fixed: epochs=0: expected >= 1"),
        (GOOD.replace("epochs = 2", "epoch = 2"), "fixed: unknown key 'epoch'"),
        (GOOD.replace("trials = 3", "trials = 0"), "sweep.trials=0: expected >= 1"),
        (GOOD.replace("trials = 3", "trials = '3'"), "sweep.trials='3': expected int"),
        (GOOD.replace("trials = 3", "trails = 3"), "unknown key 'sweep.trails'"),
        (GOOD + "[extra]\nx=1\n", "unknown section 'extra'"),
        (
            GOOD.replace("epochs = 2", "epochs = 2\n[fixed.data]\nval_fraction = 0.0"),
            "val_fraction=0.0: expected > 0",
        ),
        ("[sweep\n", "malformed TOML"),
    ],
)
def test_bad_files_fail_with_one_line_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        SweepConfig.from_file(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert expected in message, message
    assert "\n" not in message


def test_a_logged_config_toml_is_a_sweep_with_nothing_searched(tmp_path: Path) -> None:
    config = TrainConfig().replace({"lr": 0.0042, "epochs": 3})
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    sweep = SweepConfig.from_file(path)
    assert sweep.base == config and len(sweep.space) == 0


def test_set_on_a_searched_key_fixes_it() -> None:
    sweep = SweepConfig.for_model("mlp").with_overrides({"lr": 0.002, "epochs": 1})
    assert "lr" not in sweep.space.params
    assert sweep.base.lr == 0.002 and sweep.base.epochs == 1


def test_parse_overrides() -> None:
    assert parse_overrides(["lr=0.01", "mlp.hidden_sizes=[64, 32]", "mlp.optimizer=sgd"]) == {
        "lr": 0.01,
        "mlp.hidden_sizes": [64, 32],
        "mlp.optimizer": "sgd",
    }
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["lr"])
