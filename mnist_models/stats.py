"""Seed-to-seed uncertainty: intervals over repeats, and paired tests between configurations.

Pure functions over plain sequences of numbers (scipy.stats; no MLflow, no Optuna), so every
figure the product prints with an interval is computed, and tested, in one place.

Which test, and why (the README says the same):

* **Intervals** are Student-t intervals over the repeats: the repeats of one configuration
  are independent draws of its seed-to-seed spread, and K is small (3-10), where the normal
  approximation would be far too narrow.
* **Comparisons** are **paired**: repeat *r* of every configuration trains with the same seed
  (same validation split, initial weights, data order, dropout masks and augmentation), so the
  per-repeat differences cancel most of the seed noise. The p-value and the interval of the
  mean difference come from the paired t-test (``scipy.stats.ttest_rel``), the one test that
  can call a difference at the K a sweep can afford: with K = 3 to 5 the exact tests cannot
  go below p = 2 / 2**K (0.25 at K = 3, 0.0625 at K = 5) whatever the data. The exact
  sign-flip permutation test of the same mean difference (``scipy.stats.permutation_test``,
  no normality assumed) is computed beside it, so a reader sees when the two disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

CONFIDENCE = 0.95  # of every interval the product prints
ALPHA = 1.0 - CONFIDENCE  # a paired difference is called when p < ALPHA
BETTER, WORSE, TIED = "better", "worse", "not distinguishable"


@dataclass(frozen=True)
class Summary:
    """Mean and Student-t confidence interval of one configuration's repeats.

    Attributes:
        mean: Mean over the repeats.
        std: Sample standard deviation (ddof 1); NaN for a single repeat.
        n: Number of repeats.
        low: Lower end of the interval of the mean (NaN for a single repeat).
        high: Upper end.
        confidence: The interval's level.
    """

    mean: float
    std: float
    n: int
    low: float
    high: float
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float:
        """Half the interval's width (the ``±`` figure); NaN for a single repeat."""
        return (self.high - self.low) / 2

    @property
    def has_interval(self) -> bool:
        return self.n > 1

    def overlaps(self, other: Summary) -> bool:
        """Whether the two intervals share a value (single repeats overlap nothing)."""
        if not (self.has_interval and other.has_interval):
            return False
        return self.low <= other.high and other.low <= self.high

    def text(self, digits: int = 4) -> str:
        """``0.9791 ± 0.0021`` (a single repeat prints its value alone)."""
        if not self.has_interval:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"

    def interval_text(self, digits: int = 4) -> str:
        """``0.9791 ± 0.0021 (95% CI 0.9770-0.9812, n=3)``."""
        if not self.has_interval:
            return f"{self.mean:.{digits}f} (1 run: no interval)"
        level = f"{self.confidence:.0%}"
        return (
            f"{self.text(digits)} ({level} CI {self.low:.{digits}f}-{self.high:.{digits}f}, "
            f"n={self.n})"
        )


def summarise(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """The mean of ``values`` with its Student-t interval (``n - 1`` degrees of freedom).

    Raises:
        ValueError: For no values, a non-finite value or a confidence outside (0, 1).
    """
    from scipy import stats  # a second to import: only when a figure is summarised

    data = _finite(values, "values")
    _check_confidence(confidence)
    n, mean = len(data), float(np.mean(data))
    if n == 1:
        return Summary(mean, math.nan, 1, math.nan, math.nan, confidence)
    std = float(np.std(data, ddof=1))
    if std == 0.0:
        return Summary(mean, 0.0, n, mean, mean, confidence)
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=std / math.sqrt(n))
    return Summary(mean, std, n, float(low), float(high), confidence)


class Interval(NamedTuple):
    """A closed interval ``[low, high]``; NaN ends contain nothing."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval, ends included."""
        return self.low <= value <= self.high


def prediction_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Where one more run (a new seed) falls with probability ``confidence``.

    ``mean ± t(n-1) * sd * sqrt(1 + 1/n)``: wider than the interval of the mean, since it
    holds a single run; the question "could the published single run come from our runs'
    spread?" is this one. NaNs for fewer than two values.
    """
    from scipy import stats  # lazily, as in summarise()

    data = _finite(values, "values")
    _check_confidence(confidence)
    n = len(data)
    if n < 2:
        return Interval(math.nan, math.nan)
    mean, std = float(np.mean(data)), float(np.std(data, ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, df=n - 1)) * std * math.sqrt(1 + 1 / n)
    return Interval(mean - half, mean + half)


@dataclass(frozen=True)
class PairedTest:
    """``a`` against ``b`` over their shared repeats (repeat *r* of both used seed *r*).

    Attributes:
        difference: Mean of ``a - b``.
        low: Lower end of the confidence interval of that mean (paired t).
        high: Upper end.
        p_value: Two-sided p-value of the paired t-test (1 when every difference is 0).
        p_exact: Two-sided p-value of the exact sign-flip permutation test.
        n: Number of pairs.
        confidence: The interval's level; a difference is called when ``p_value < 1 - it``.
    """

    difference: float
    low: float
    high: float
    p_value: float
    p_exact: float
    n: int
    confidence: float = CONFIDENCE

    @property
    def significant(self) -> bool:
        return self.n > 1 and self.p_value < 1.0 - self.confidence

    @property
    def verdict(self) -> str:
        """``better`` or ``worse`` (``a`` against ``b``), or ``not distinguishable``."""
        if not self.significant:
            return TIED
        return BETTER if self.difference > 0 else WORSE

    def text(self, digits: int = 4) -> str:
        """``+0.0031 (95% CI +0.0012 to +0.0050), p = 0.012 (paired t, n=3)``."""
        if self.n < 2:
            return f"{self.difference:+.{digits}f} (1 pair: no test)"
        level = f"{self.confidence:.0%}"
        return (
            f"{self.difference:+.{digits}f} ({level} CI {self.low:+.{digits}f} to "
            f"{self.high:+.{digits}f}), p = {_p(self.p_value)} (paired t, n={self.n}; "
            f"exact sign-flip p = {_p(self.p_exact)})"
        )


def paired_test(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> PairedTest:
    """Paired t-test (and exact sign-flip test) of ``mean(a - b) == 0``.

    Raises:
        ValueError: When ``a`` and ``b`` differ in length, are empty or hold non-finite values.
    """
    from scipy import stats  # lazily, as in summarise()

    x, y = _finite(a, "a"), _finite(b, "b")
    if len(x) != len(y):
        raise ValueError(f"paired samples need equal lengths, got {len(x)} and {len(y)}")
    _check_confidence(confidence)
    d = x - y
    n, mean = len(d), float(np.mean(d))
    if n == 1:
        return PairedTest(mean, math.nan, math.nan, math.nan, math.nan, 1, confidence)
    std = float(np.std(d, ddof=1))
    if std == 0.0:
        # Identical differences: the t statistic is 0/0 or c/0. Every pair says the same.
        p = 1.0 if mean == 0.0 else 0.0
        return PairedTest(mean, mean, mean, p, _sign_flip_p(d), n, confidence)
    test = stats.ttest_rel(x, y)
    low, high = test.confidence_interval(confidence)
    return PairedTest(
        mean, float(low), float(high), float(test.pvalue), _sign_flip_p(d), n, confidence
    )


def _sign_flip_p(d: np.ndarray) -> float:
    """Exact two-sided p of the mean difference under random signs (all 2**n flips, n <= 16)."""
    from scipy import stats  # lazily, as in summarise()

    if not np.any(d):
        return 1.0
    result = stats.permutation_test(
        (d,),
        np.mean,
        permutation_type="samples",
        alternative="two-sided",
        n_resamples=2**16 if len(d) <= 16 else 9999,
    )
    return float(result.pvalue)


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def _finite(values: Sequence[float], name: str) -> np.ndarray:
    data = np.asarray(values, dtype=float).ravel()
    if data.size == 0:
        raise ValueError(f"{name} must hold at least one value")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{name} must be finite, got {list(data)}")
    return data


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"{confidence=} must be in (0, 1)")
