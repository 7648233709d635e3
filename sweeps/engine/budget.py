"""The trial budget shared by every worker of a study: N finished trials, never more.

``--trials N`` means N finished (complete or pruned) trials in the study in total. Optuna's
``MaxTrialsCallback`` checks only after a trial ends, so K workers each start another trial
while the last ones still run and the study overshoots. Here a worker stops when finished plus
running trials reach N; two workers asking for a trial in the same instant are told apart by
their trial numbers (assigned atomically by the storage): the later one is surplus and ends
before it trains or logs anything.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from mnist_models.errors import TrialFailed
from sweeps.store.keys import SURPLUS_ATTR

_TAKING = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


class SurplusTrial(TrialFailed):
    """A trial started after the study's budget was already taken; it does not train."""


class TrialBudget:
    """Stops ``study.optimize`` once the study's budget is taken (use it as a callback).

    Args:
        target: Finished trials the study should hold in total.
    """

    def __init__(self, target: int) -> None:
        if target < 1:
            raise ValueError(f"{target=} must be >= 1")
        self.target = target

    def taken(self, study: optuna.Study) -> int:
        """Finished trials plus trials running now (on any worker)."""
        return len(_counted(study.get_trials(deepcopy=False, states=_TAKING)))

    def remaining(self, study: optuna.Study) -> int:
        return max(0, self.target - self.taken(study))

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.taken(study) >= self.target:
            study.stop()

    def check(self, trial: optuna.Trial) -> None:
        """Raises :class:`SurplusTrial` if earlier-numbered trials already fill the budget."""
        earlier = [
            t
            for t in _counted(trial.study.get_trials(deepcopy=False, states=_TAKING))
            if t.number < trial.number
        ]
        if len(earlier) >= self.target:
            trial.set_user_attr(SURPLUS_ATTR, True)
            raise SurplusTrial(f"trial {trial.number}: the study's {self.target} trials are taken")


def _counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if not t.user_attrs.get(SURPLUS_ATTR)]
