"""The statistics behind every ± the product prints, checked against scipy and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mnist_models.stats import (
    BETTER,
    TIED,
    WORSE,
    paired_test,
    prediction_interval,
    summarise,
)

VALUES = [0.9770, 0.9801, 0.9785, 0.9810, 0.9792]


def test_summary_is_the_student_t_interval_of_the_mean() -> None:
    summary = summarise(VALUES)
    sem = stats.sem(VALUES)
    low, high = stats.t.interval(0.95, df=4, loc=np.mean(VALUES), scale=sem)
    assert summary.mean == pytest.approx(np.mean(VALUES))
    assert summary.std == pytest.approx(np.std(VALUES, ddof=1))
    assert (summary.low, summary.high) == pytest.approx((low, high))
    assert summary.n == 5
    # By hand: t(0.975, 4) = 2.7764; sd 0.0015313 / sqrt(5) = 0.00068482.
    assert summary.half_width == pytest.approx(2.7764 * 0.0015313 / math.sqrt(5), rel=1e-3)
    assert summary.text() == f"{np.mean(VALUES):.4f} ± {(high - low) / 2:.4f}"


def test_a_single_run_pretends_to_no_interval() -> None:
    summary = summarise([0.98])
    assert not summary.has_interval
    assert math.isnan(summary.low) and math.isnan(summary.std)
    assert summary.text() == "0.9800"
    assert "±" not in summary.interval_text()
    assert not summary.overlaps(summarise(VALUES))


def test_identical_values_have_a_zero_width_interval() -> None:
    summary = summarise([0.5, 0.5, 0.5])
    assert (summary.low, summary.high, summary.std) == (0.5, 0.5, 0.0)


def test_prediction_interval_holds_one_more_run() -> None:
    low, high = prediction_interval(VALUES)
    half = stats.t.ppf(0.975, 4) * np.std(VALUES, ddof=1) * math.sqrt(1 + 1 / 5)
    assert (low, high) == pytest.approx((np.mean(VALUES) - half, np.mean(VALUES) + half))
    mean_low, mean_high = summarise(VALUES).low, summarise(VALUES).high
    assert low < mean_low and high > mean_high  # one run spreads more than a mean of five
    assert all(math.isnan(v) for v in prediction_interval([0.9]))


def test_an_interval_contains_its_ends_and_nothing_when_undefined() -> None:
    interval = prediction_interval(VALUES)
    assert interval.contains(interval.low) and interval.contains(interval.high)
    assert not interval.contains(interval.high + 1e-9)
    assert not prediction_interval([0.9]).contains(0.9)  # NaN ends: one run has no spread


def test_paired_test_matches_scipy_ttest_rel() -> None:
    a = [0.9812, 0.9790, 0.9825, 0.9801]
    b = [0.9800, 0.9771, 0.9819, 0.9790]
    result = paired_test(a, b)
    expected = stats.ttest_rel(a, b)
    low, high = expected.confidence_interval(0.95)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert (result.low, result.high) == pytest.approx((low, high))
    assert result.difference == pytest.approx(np.mean(np.subtract(a, b)))
    assert result.significant and result.verdict == BETTER
    assert paired_test(b, a).verdict == WORSE
    # All four differences are positive: the exact sign-flip p is 2 / 2**4.
    assert result.p_exact == pytest.approx(2 / 16)


def test_pairing_finds_what_the_unpaired_spread_hides() -> None:
    seed_effect = np.array([0.970, 0.985, 0.975, 0.990, 0.980])  # what each seed does
    jitter = np.array([0.0004, -0.0003, 0.0002, 0.0, -0.0001])
    a, b = seed_effect + 0.002, seed_effect + jitter
    assert summarise(a).overlaps(summarise(b))  # as two clouds of values: no telling
    assert paired_test(a, b).significant  # pair by pair: every seed agrees


def test_identical_configs_are_never_called_different() -> None:
    same = paired_test(VALUES, VALUES)
    assert (same.difference, same.p_value, same.p_exact) == (0.0, 1.0, 1.0)
    assert same.verdict == TIED


def test_a_constant_nonzero_difference_is_significant() -> None:
    shifted = paired_test([v + 0.01 for v in VALUES], VALUES)
    assert shifted.p_value == 0.0 and shifted.verdict == BETTER
    assert shifted.low == pytest.approx(0.01) and shifted.high == pytest.approx(0.01)


def test_false_alarms_stay_near_five_percent_and_real_gaps_are_found() -> None:
    rng = np.random.default_rng(0)
    trials = 2000
    noise = rng.normal(0.98, 0.0015, size=(trials, 2, 5))
    alarms = sum(paired_test(x[0], x[1]).significant for x in noise)
    assert 0.03 < alarms / trials < 0.07
    found = sum(paired_test(x[0] + 0.004, x[1]).significant for x in noise[:200])
    assert found / 200 > 0.8  # a gap of ~2 sd with 5 pairs: power about 0.9


def test_bad_input_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        summarise([])
    with pytest.raises(ValueError, match="finite"):
        summarise([0.9, float("nan")])
    with pytest.raises(ValueError, match="equal lengths"):
        paired_test([0.9, 0.8], [0.9])
    with pytest.raises(ValueError, match=r"confidence=1\.5"):
        summarise(VALUES, confidence=1.5)
