"""The seeds of repeated runs: common to every configuration, and fresh ones for confirmation.

Repeat *r* of every trial of a study (every variant of a comparison) trains with the same
seed, which sets the validation split, the initial weights, the data order, the dropout masks
and the augmentation; so the configurations are paired by repeat ("common random numbers")
and their differences carry far less noise than their values.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

_SEARCH, _CONFIRM = 0, 1  # independent streams of one base seed
_LIMIT = 2**31  # every seed is a valid config seed, legacy numpy RNG included (< 2**32)


def repeat_seeds(seed: int, repeats: int) -> list[int]:
    """The seed of each repeat: ``seed`` itself first, then seeds derived from it.

    Repeat 0 keeping the config's own seed makes ``repeats = 1`` today's single run, and the
    course report's runs start from their published seed.

    Raises:
        ValueError: For ``repeats < 1`` or a negative seed.
    """
    if repeats < 1:
        raise ValueError(f"{repeats=} must be >= 1")
    return _draw(seed, repeats, _SEARCH, avoid={seed}, first=(seed,))


def fresh_seeds(seed: int, count: int, used: Collection[int]) -> list[int]:
    """``count`` seeds from a stream of ``seed`` that no search draws from, none in ``used``.

    ``best --confirm`` retrains with these: values measured on the seeds the search selected
    on are biased upward by that selection; values on fresh seeds are not.
    """
    if count < 1:
        raise ValueError(f"{count=} must be >= 1")
    return _draw(seed, count, _CONFIRM, avoid=set(used))


def _draw(
    seed: int, count: int, stream: int, avoid: set[int], first: tuple[int, ...] = ()
) -> list[int]:
    if seed < 0:
        raise ValueError(f"{seed=} must be >= 0")
    seeds = list(first)
    taken = set(avoid) | set(seeds)
    index = 0
    while len(seeds) < count:
        index += 1
        # SeedSequence spreads (seed, stream, index) over the whole range, so nearby base
        # seeds (0, 1, 2 ...) never share derived seeds the way seed + index would.
        state = np.random.SeedSequence([seed, stream, index]).generate_state(1, np.uint64)
        candidate = int(state[0] % _LIMIT)
        if candidate not in taken:
            seeds.append(candidate)
            taken.add(candidate)
    return seeds
