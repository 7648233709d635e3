"""Seeds of repeats: common to every configuration; fresh ones never used by a search."""

from __future__ import annotations

import pytest

from mnist_models.seeds import fresh_seeds, repeat_seeds


def test_the_first_repeat_keeps_the_config_seed() -> None:
    assert repeat_seeds(7, 1) == [7]
    assert repeat_seeds(1, 4)[0] == 1  # a course-report run starts from its published seed


def test_repeat_seeds_are_deterministic_distinct_and_valid_everywhere() -> None:
    seeds = repeat_seeds(0, 50)
    assert seeds == repeat_seeds(0, 50)
    assert len(set(seeds)) == 50
    assert all(0 <= s < 2**31 for s in seeds)  # the legacy numpy RNG takes < 2**32
    assert repeat_seeds(0, 3) == seeds[:3]  # more repeats extend, never reshuffle


def test_nearby_base_seeds_share_no_derived_seed() -> None:
    assert not set(repeat_seeds(0, 20)[1:]) & set(repeat_seeds(1, 20)[1:])


def test_fresh_seeds_avoid_every_seed_the_search_used() -> None:
    used = set(repeat_seeds(0, 10)) | {5, 6}
    fresh = fresh_seeds(0, 10, used)
    assert len(set(fresh)) == 10 and not set(fresh) & used
    assert fresh == fresh_seeds(0, 10, used)


def test_fresh_seeds_skip_a_used_seed_they_would_have_drawn() -> None:
    natural = fresh_seeds(3, 3, used=())
    shifted = fresh_seeds(3, 3, used={natural[0]})
    assert natural[0] not in shifted and shifted[:2] == natural[1:]


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="repeats=0"):
        repeat_seeds(0, 0)
    with pytest.raises(ValueError, match="seed=-1"):
        repeat_seeds(-1, 2)
    with pytest.raises(ValueError, match="count=0"):
        fresh_seeds(0, 0, ())
