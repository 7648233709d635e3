"""A study's best trial as a config file that ``mnist-sweep train --config FILE`` trains again."""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial

from mnist_models.config import TrainConfig
from mnist_models.errors import ConfigError
from sweeps.spec.sweep_file import OBJECTIVE
from sweeps.store.keys import TRIAL_CONFIG_ATTR
from sweeps.store.ranking import trial_summary, value_text
from sweeps.store.storage import redact_url


def best_toml(study: str, url: str, trial: FrozenTrial, confirmed: Sequence[str] = ()) -> str:
    """The trial's resolved config as TOML, under a comment header saying where it came from.

    Raises:
        ConfigError: If the trial has no valid ``config`` user attr (not run by mnist-sweep).
    """
    stored = trial.user_attrs.get(TRIAL_CONFIG_ATTR)
    where = f"study {study!r} trial {trial.number}"
    if not isinstance(stored, dict):
        raise ConfigError(f"--study {study!r}: {where} has no 'config' user attr to export")
    config = TrainConfig.from_dict(stored, source=where)
    header = [
        f"Best trial of Optuna study {study!r} in {redact_url(url)}",
        f"trial {trial.number}: {OBJECTIVE} = {trial.value!r}"
        + (f" (mean of its repeats: {value_text(trial)})" if trial_summary(trial) else ""),
        *confirmed,
        f"MLflow run: {trial.user_attrs.get('mlflow_run_id', 'unknown')}",
        "params: " + ", ".join(f"{k} = {v!r}" for k, v in trial.params.items()),
        "train it again: mnist-sweep train --config <this file>",
    ]
    comments = "".join(f"# {' '.join(line.split())}\n" for line in header)
    return comments + "\n" + config.to_toml()
