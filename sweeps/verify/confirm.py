"""``mnist-sweep best --confirm K``: retrain the top trials on fresh seeds and pick on those.

A search's best value is biased upward: of many configurations with noisy values, the one
picked is partly the one whose noise happened to be kindest. Retraining the top few on seeds
the search never used gives values free of that selection, and picking on them (with paired
tests, the fresh seeds being shared) gives a best configuration that is better for real.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from mnist_models.config import TrainConfig
from mnist_models.data.cache import SplitsCache
from mnist_models.errors import ConfigError
from mnist_models.seeds import fresh_seeds
from mnist_models.stats import PairedTest, Summary, paired_test
from sweeps.console import console
from sweeps.engine.progress import epoch_lines
from sweeps.store.keys import (
    CONFIG_ATTR,
    REPEAT_SEEDS_ATTR,
    STUDY_TAG,
    TRACKING_ATTR,
    TRIAL_CONFIG_ATTR,
    TRIAL_TAG,
)
from sweeps.store.ranking import top_trials
from tracking import Tracker, ended
from tracking.repeats import RepeatRecord, run_repeats, summaries
from tracking.tags import ROLE_TAG

CONFIRM_ROLE = "confirm"


@dataclass(frozen=True)
class Confirmed:
    """One top trial retrained on the fresh seeds."""

    trial: FrozenTrial
    config: TrainConfig
    records: list[RepeatRecord]
    run_id: str | None

    @property
    def val(self) -> Summary:
        return summaries(self.records)["val_accuracy"]

    @property
    def test(self) -> Summary | None:
        return summaries(self.records).get("test_accuracy")

    def values(self) -> list[float]:
        return [record.val_accuracy for record in self.records]


@dataclass(frozen=True)
class Confirmation:
    """The confirmed ranking: the winner first, each other with its paired test against it."""

    ranked: list[Confirmed]
    seeds: list[int]
    run_id: str | None

    @property
    def winner(self) -> Confirmed:
        return self.ranked[0]

    def against_winner(self) -> list[tuple[Confirmed, PairedTest]]:
        first = self.winner.values()
        return [(c, paired_test(first, c.values())) for c in self.ranked[1:]]


def search_seeds(study: optuna.Study) -> set[int]:
    """Every seed the study's trials trained with (the config seed of single-run trials)."""
    used: set[int] = set()
    for trial in study.get_trials(deepcopy=False):
        seeds = trial.user_attrs.get(REPEAT_SEEDS_ATTR)
        config = trial.user_attrs.get(TRIAL_CONFIG_ATTR) or {}
        if seeds:
            used.update(int(seed) for seed in seeds)
        else:
            used.add(int(config.get("seed", 0)))
    return used


def confirm(
    study: optuna.Study,
    repeats: int,
    top: int,
    data_dir: str | Path | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> Confirmation:
    """Retrains the ``top`` completed trials ``repeats`` times each on fresh seeds.

    Logs one parent run ``confirm-<study>`` in the study's experiment, a run per trial under
    it and the repeats under those.

    Raises:
        ConfigError: For ``repeats < 2`` or ``top < 1``, or a study without completed trials.
    """
    if repeats < 2:
        raise ConfigError(f"--confirm {repeats}: expected >= 2 fresh seeds (an interval needs 2)")
    if top < 1:
        raise ConfigError(f"--top {top}: expected >= 1")
    candidates = top_trials(study, top)
    if not candidates:
        raise ConfigError(f"--study {study.study_name!r}: no completed trial to confirm")
    configs = [_config(study.study_name, trial) for trial in candidates]
    base_seed = int(study.user_attrs.get(CONFIG_ATTR, {}).get("fixed", {}).get("seed", 0))
    seeds = fresh_seeds(base_seed, repeats, search_seeds(study))
    stored = study.user_attrs.get(TRACKING_ATTR) or {}
    tracker = Tracker(
        experiment or stored.get("experiment") or study.study_name,
        tracking_uri or stored.get("tracking_uri"),
    )
    splits_for = SplitsCache(data_dir)
    splits_for(configs[0])  # missing data fails before any run is created
    console.print(
        f"confirming the top {len(candidates)} trials of {study.study_name} on {repeats} fresh "
        f"seeds ({', '.join(map(str, seeds))}), none used by the search",
        markup=False,
    )
    parent = tracker.start_run(
        f"confirm-{study.study_name}",
        tags={STUDY_TAG: study.study_name, ROLE_TAG: CONFIRM_ROLE},
    )
    confirmed = []
    with ended(parent):
        parent.log_params({"confirm.repeats": repeats, "confirm.top": len(candidates)})
        parent.set_tags({"confirm.seeds": ",".join(map(str, seeds))})
        for trial, config in zip(candidates, configs, strict=True):
            name = f"confirm trial-{trial.number:03d}"
            run, records = run_repeats(
                tracker,
                name,
                config,
                seeds,
                splits_for,
                tags={
                    STUDY_TAG: study.study_name,
                    TRIAL_TAG: trial.number,
                    ROLE_TAG: "confirmed",
                    "search.value": f"{trial.value:.6f}",
                    "model": config.model,
                },
                parent_run_id=parent.run_id,
                repeat_tags={TRIAL_TAG: trial.number},
                callbacks_for=epoch_lines,
            )
            found = Confirmed(trial, config, records, run.run_id)
            run.rename(f"{name} {found.val.text()}")
            console.print(
                f"{name}: val acc {found.val.text()} on fresh seeds (search: {trial.value:.4f})",
                markup=False,
            )
            confirmed.append(found)
        ranked = sorted(confirmed, key=lambda c: -c.val.mean)
        parent.set_tags(
            {"confirmed.trial": ranked[0].trial.number, "confirmed.value": ranked[0].val.text()}
        )
    return Confirmation(ranked, seeds, parent.run_id)


def _config(study: str, trial: FrozenTrial) -> TrainConfig:
    stored = trial.user_attrs.get(TRIAL_CONFIG_ATTR)
    where = f"study {study!r} trial {trial.number}"
    if not isinstance(stored, dict):
        raise ConfigError(f"--study {study!r}: {where} has no 'config' user attr to retrain")
    return TrainConfig.from_dict(stored, source=where)


def confirmation_lines(result: Confirmation) -> list[str]:
    """The confirmed winner's figures, each candidate's search value against its confirmed
    one, the paired tests against the winner and a plain verdict."""
    winner = result.winner
    test = f"; test_accuracy {winner.test.interval_text()}" if winner.test else ""
    lines = [
        f"confirmed best: trial {winner.trial.number} val_accuracy "
        f"{winner.val.interval_text()} on {len(result.seeds)} fresh seeds{test}"
    ]
    by_search = sorted(result.ranked, key=lambda c: -(c.trial.value or 0.0))
    lines.append(
        "search value (its own seeds, biased upward by the selection) -> fresh seeds: "
        + "; ".join(
            f"trial {c.trial.number} {c.trial.value:.4f} -> {c.val.text()}" for c in by_search
        )
    )
    better: list[str] = []
    tied: list[str] = []
    for other, versus in result.against_winner():
        lines.append(
            f"  vs trial {other.trial.number} ({other.val.text()}): difference "
            f"{versus.text()} -> {versus.verdict}"
        )
        (better if versus.significant else tied).append(str(other.trial.number))
    parts = [f"better than trial(s) {', '.join(better)}"] if better else []
    parts += [f"not distinguishable from trial(s) {', '.join(tied)}"] if tied else []
    if parts:
        lines.append("verdict: " + "; ".join(parts))
    return lines
