"""Whether a study's best trial is better for real: paired tests over the shared repeats.

Trials of a study trained with ``repeats = K`` share their seeds repeat by repeat, so the best
trial and a runner-up are compared pair by pair (``mnist_models.stats.paired_test``) rather
than by their means alone: differences of a few hundredths of a point are real when every
pair agrees, and noise when they do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from mnist_models.stats import BETTER, TIED, PairedTest, Summary, paired_test, summarise
from sweeps.store.keys import REPEAT_SEEDS_ATTR, TEST_REPEATS_ATTR, VAL_REPEATS_ATTR

TOP_COUNT = 10  # trials in the study report's top-trials figure


def repeat_values(trial: FrozenTrial, attr: str = VAL_REPEATS_ATTR) -> dict[int, float]:
    """Each trained repeat's value by its seed (empty for a trial trained once)."""
    seeds = trial.user_attrs.get(REPEAT_SEEDS_ATTR) or []
    values = trial.user_attrs.get(attr) or []
    # A pruned trial trained fewer repeats than it has seeds: pair what was trained.
    return {int(seed): float(value) for seed, value in zip(seeds, values, strict=False)}


def trial_summary(trial: FrozenTrial, attr: str = VAL_REPEATS_ATTR) -> Summary | None:
    """The mean and 95% interval of a repeated trial's ``attr`` (validation accuracies).

    Returns:
        ``None`` for a trial trained once (no interval to give), and for repeats that are
        not a list of finite numbers: a report must never fail on one odd trial.
    """
    values = trial.user_attrs.get(attr)
    if not isinstance(values, (list, tuple)) or len(values) < 2:
        return None
    try:
        return summarise(values)
    except (TypeError, ValueError):
        return None


def param_text(value: Any) -> str:
    """A trial's param as every table shows it: a float to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def value_text(trial: FrozenTrial) -> str:
    """The trial's value as text: ``0.9801 ± 0.0009`` (mean ± 95% CI half-width) for a
    repeated trial, ``0.9801`` for one trained once, ``-`` for a trial without a value."""
    summary = trial_summary(trial)
    if summary is not None:
        return summary.text()
    return "-" if trial.value is None else f"{trial.value:.4f}"


def test_accuracy_text(trial: FrozenTrial) -> str:
    """The trial's test accuracy, with its ± when repeated."""
    summary = trial_summary(trial, TEST_REPEATS_ATTR)
    if summary is not None:
        return summary.text()
    return f"{trial.user_attrs.get('test_accuracy', float('nan')):.4f}"


def paired(a: FrozenTrial, b: FrozenTrial) -> PairedTest | None:
    """``a`` against ``b`` over the seeds both trained (``None`` with fewer than two)."""
    first, second = repeat_values(a), repeat_values(b)
    shared = [seed for seed in first if seed in second]
    if len(shared) < 2:
        return None
    return paired_test([first[s] for s in shared], [second[s] for s in shared])


@dataclass(frozen=True)
class Rival:
    """A completed trial set against the best one."""

    trial: FrozenTrial
    summary: Summary | None
    test: PairedTest | None  # None: intervals apart (clearly below), or not repeated


@dataclass(frozen=True)
class Ranking:
    """The best completed trial by mean, and how it stands against the others."""

    best: FrozenTrial
    summary: Summary | None
    rivals: list[Rival]

    @property
    def overlapping(self) -> list[Rival]:
        """Runners-up whose interval overlaps the best's: the ones a paired test must judge."""
        return [rival for rival in self.rivals if rival.test is not None]

    @property
    def beaten(self) -> list[int]:
        """Trials the best one is better than: by a paired test, or with disjoint intervals."""
        return [
            r.trial.number
            for r in self.rivals
            if (r.test is not None and r.test.verdict == BETTER)
            or (r.test is None and r.summary is not None and self._clearly_above(r.summary))
        ]

    @property
    def tied(self) -> list[int]:
        """Trials noise could explain the gap to."""
        return [r.trial.number for r in self.overlapping if r.test and r.test.verdict == TIED]

    def _clearly_above(self, other: Summary) -> bool:
        return self.summary is not None and not self.summary.overlaps(other)


def best_first(trials: Sequence[FrozenTrial], maximize: bool = True) -> list[FrozenTrial]:
    """The completed trials, best value (the mean over repeats) first; ties: lower number
    first."""
    completed = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    sign = -1.0 if maximize else 1.0
    return sorted(completed, key=lambda t: (sign * (t.value or 0.0), t.number))


def top_trials(study: optuna.Study, count: int = TOP_COUNT) -> list[FrozenTrial]:
    """The study's ``count`` best completed trials, best first, in its direction."""
    maximize = study.direction == StudyDirection.MAXIMIZE
    return best_first(study.get_trials(deepcopy=False), maximize)[:count]


def rank(trials: Sequence[FrozenTrial]) -> Ranking | None:
    """Ranks completed trials by their value (the mean over repeats); ``None`` if none."""
    ordered = best_first(trials)
    if not ordered:
        return None
    best, others = ordered[0], ordered[1:]
    summary = trial_summary(best)
    rivals = []
    for trial in others:
        theirs = trial_summary(trial)
        overlaps = summary is not None and theirs is not None and summary.overlaps(theirs)
        rivals.append(Rival(trial, theirs, paired(best, trial) if overlaps else None))
    return Ranking(best, summary, rivals)


def ranking_lines(ranking: Ranking) -> list[str]:
    """What ``best`` prints: the best trial's mean ± CI, each close rival's paired test, and
    a plain verdict. A study of single runs gets one line saying what it cannot tell."""
    best = ranking.best
    if ranking.summary is None:
        return [
            f"best: trial {best.number} val_accuracy {best.value:.4f} (a single run per trial: "
            "no interval; sweep with --repeats K to know which gaps are noise)"
        ]
    lines = [f"best: trial {best.number} val_accuracy {ranking.summary.interval_text()}"]
    for rival in ranking.overlapping:
        assert rival.test is not None  # overlapping rivals are the tested ones
        lines.append(
            f"  vs trial {rival.trial.number} ({value_text(rival.trial)}): difference "
            f"{rival.test.text()} -> {rival.test.verdict}"
        )
    parts = []
    if ranking.beaten:
        parts.append(f"better than {_trials(ranking.beaten)}")
    if ranking.tied:
        parts.append(f"not distinguishable from {_trials(ranking.tied)}")
    untested = [r.trial.number for r in ranking.rivals if r.summary is None]
    if untested:
        parts.append(f"not compared with {_trials(untested)} (trained once)")
    lines.append("verdict: " + ("; ".join(parts) if parts else "no other completed trial"))
    return lines


def _trials(numbers: list[int]) -> str:
    names = ", ".join(str(n) for n in numbers)
    return f"trial {names}" if len(numbers) == 1 else f"trials {names}"
