"""Samplers that make a study reproducible by trial: each draw has a seed of its own.

Optuna seeds a sampler once, when it is built. Every process of a study builds its own, so
a resumed sweep (a new process, the same seed) replays the random start-up draws of the
first one and proposes configurations the study already holds; two workers started with one
seed propose the same ones side by side.

Here each fresh draw gets its own seed, derived from the study seed and the draw's index:
the number of earlier trials in the study that were not retries of an interrupted one. Two
consequences:

* **No duplicates from seeding, across processes and hosts.** Trial numbers are unique in a
  study and a trial sees every trial numbered before it, so two fresh draws never share an
  index, whichever process makes them.
* **Reproducible by trial.** With one worker, a draw depends only on the study seed, its
  index and the trials before it; a sweep interrupted, retried and resumed proposes the same
  sequence as one that ran through (the retry repeats the interrupted draw's params).

The sampler behind each draw is one of Optuna's, built fresh for it. They keep whatever
state they need in the study itself (TPE reads the trials, CMA-ES and QMC store theirs in
the storage), so a new instance per draw loses nothing.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from sweeps.spec.space import SearchSpace
from sweeps.spec.sweep_file import SAMPLERS, Sampler  # SAMPLERS re-exported for the CLI
from sweeps.store.keys import RETRY_OF_ATTR


def make_sampler(name: Sampler, seed: int, space: SearchSpace) -> DrawSeededSampler:
    """The study's sampler ``name`` (one of :data:`SAMPLERS`), seeded per draw.

    Args:
        name: ``tpe`` (Optuna's default, with ``constant_liar`` so parallel workers spread
            out), ``random``, ``qmc`` (scrambled Sobol), ``cmaes`` or ``grid`` (every point of
            :meth:`SearchSpace.grid`, each once).
        seed: The study seed.
        space: What is searched (the grid sampler needs its values up front).

    Raises:
        ValueError: An unknown ``name``.
        ConfigError: ``grid`` on a space without grid values.
    """
    if name not in SAMPLERS:
        raise ValueError(f"{name=} must be one of {SAMPLERS}")
    grid = space.grid() if name == "grid" else {}

    def build(draw_seed: int) -> BaseSampler:
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=draw_seed, constant_liar=True)
        if name == "qmc":
            # One sequence for the whole study: the scramble takes the study seed, and Optuna
            # keeps the sequence's position in the storage. Only params the sequence does not
            # cover fall back to the independent sampler, seeded per draw.
            with warnings.catch_warnings():  # "experimental" since Optuna 3.0
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.samplers.QMCSampler(
                    scramble=True,
                    seed=seed,
                    independent_sampler=optuna.samplers.RandomSampler(seed=draw_seed),
                    warn_independent_sampling=False,
                )
        if name == "cmaes":
            # CMA-ES searches the numeric params; categorical ones are drawn at random.
            return optuna.samplers.CmaEsSampler(
                seed=draw_seed,
                independent_sampler=optuna.samplers.RandomSampler(seed=draw_seed),
                warn_independent_sampling=False,
            )
        if name == "grid":
            # The study seed: it shuffles the grid's order, which must be the same for every
            # draw (Optuna numbers grid points in that order).
            return optuna.samplers.GridSampler(grid, seed=seed)
        return optuna.samplers.RandomSampler(seed=draw_seed)

    return DrawSeededSampler(build, seed, name)


def grid_trials_left(study: optuna.Study, space: SearchSpace) -> int:
    """Trials a grid search still has to run: queued retries, and points no trial holds.

    A point is held by a trial in any state (a failed point is not drawn again, as in
    Optuna's ``GridSampler``; an interrupted one is re-queued as a retry).
    """
    grid = space.grid()
    trials = study.get_trials(deepcopy=False)
    held = {tuple(trial.params.get(name) for name in grid) for trial in trials}
    free = sum(1 for point in itertools.product(*grid.values()) if point not in held)
    return free + sum(trial.state == TrialState.WAITING for trial in trials)


def draw_seed(seed: int, index: int) -> int:
    """The seed of draw ``index`` of a study seeded ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def draw_index(study: optuna.Study, number: int) -> int:
    """How many trials before trial ``number`` drew their params (retries did not)."""
    return sum(
        1
        for trial in study.get_trials(deepcopy=False)
        if trial.number < number and RETRY_OF_ATTR not in trial.user_attrs
    )


class DrawSeededSampler(BaseSampler):
    """Hands each trial to a fresh sampler seeded from the study seed and its draw index.

    Args:
        build: Makes the sampler of one draw from that draw's seed.
        seed: The study seed.
        name: The sampler's name in sweep files (``tpe``, ``grid``, ...).
    """

    def __init__(self, build: Callable[[int], BaseSampler], seed: int, name: str) -> None:
        if seed < 0:
            raise ValueError(f"{seed=} must be >= 0")
        self.name = name
        self.seed = seed
        self._build = build
        self._by_trial: dict[int, BaseSampler] = {}

    @property
    def optuna_name(self) -> str:
        """The class name of the Optuna sampler behind the draws (``TPESampler``, ...)."""
        return type(self._build(self.seed)).__name__

    def _sampler(self, study: optuna.Study, trial: FrozenTrial) -> BaseSampler:
        sampler = self._by_trial.get(trial.number)
        if sampler is None:
            sampler = self._build(draw_seed(self.seed, draw_index(study, trial.number)))
            self._by_trial[trial.number] = sampler
        return sampler

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler(study, trial).before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._sampler(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        sampler = self._sampler(study, trial)
        return sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        sampler = self._sampler(study, trial)
        self._by_trial.pop(trial.number, None)
        sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to do: every draw is seeded by its index, never by a shared stream."""
