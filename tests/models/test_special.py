"""The special-function helpers: the series fallback for 2F1 agrees with scipy where
scipy is reliable and its stopping rule bounds the whole tail; the Beta expectations
agree with closed forms and with mpmath."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammaln, hyp2f1

from clvmodels.models._special import beta_expectation, hyp2f1_series
from clvmodels.models.bgbb import log_rising


def test_series_is_hyp2f1() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(0.05, 10, 50)
    b = rng.uniform(-3, 20, 50)
    c = a + rng.uniform(0.05, 30, 50)
    w = rng.uniform(0, 0.99, 50)
    np.testing.assert_allclose(hyp2f1_series(a, b, c, w), hyp2f1(a, b, c, w), rtol=1e-11)


def test_series_where_scipy_fails() -> None:
    assert np.isnan(hyp2f1(0.001, 1000.0, 1000.001, 0.909))
    value = float(hyp2f1_series(0.001, 1000.0, 1000.001, 0.909))
    # 2F1(a, b; b + eps; w) ~ (1 - w)^(-a) for eps -> 0
    assert value == np.float64(value) and abs(value - (1 - 0.909) ** -0.001) < 1e-5


# ------------------------------------------------------------- the stopping rule


@pytest.mark.parametrize(
    "a, b, c",
    [(1.0, 1.0, 1.5), (2.0, 3.0, 4.5), (0.5, 0.3, 0.9), (1.0, 2.5, 3.0), (3.0, 0.7, 2.0)],
)
def test_series_near_one_is_accurate_to_rtol(a, b, c) -> None:
    # Near w = 1 the terms fall off like w^n: once a term is below rtol times the sum,
    # the rest can still be 1 / (1 - w) = 1000 times larger. The stopping rule bounds the
    # whole rest, so the result is within (about) rtol. scipy is reliable here.
    w = 0.999
    for rtol in (1e-8, 1e-10, 1e-13):
        value = float(hyp2f1_series(a, b, c, w, rtol=rtol))
        assert value == pytest.approx(float(hyp2f1(a, b, c, w)), rel=3 * rtol)


def test_series_does_not_overflow_with_a_prefactor() -> None:
    # 2F1(a, b; b; w) = (1 - w)^-a = 2^2000 here: beyond double range, but times
    # (1 - w)^a it is 1.
    a, w = 2000.0, 0.5
    value = hyp2f1_series(a, 1.5, 1.5, w, log_scale=a * np.log1p(-w))
    assert float(value) == pytest.approx(1.0, rel=1e-12)


def test_series_reports_cancellation_as_nan() -> None:
    # 2F1(-1000.5, 1; 1; 0.9) = 0.1^1000.5: alternating terms of size 1e400 cancel; no
    # digit of the result survives, and the series says so rather than return noise.
    assert np.isnan(hyp2f1_series(-1000.5, 1.0, 1.0, 0.9))
    # a mild cancellation is fine
    value = float(hyp2f1_series(-3.5, 1.0, 1.0, 0.9))
    assert value == pytest.approx(0.1**3.5, rel=1e-9)


# -------------------------------------------------------- expectations over a Beta

EXTREMES = [1e-8, 1e-3, 0.05, 0.7, 1.0, 2.5, 40.0, 1e3, 1e5, 1e8]


def test_beta_expectation_of_polynomials() -> None:
    # g = (1 + p)^k and (2 - p)^k (positive, |d log g / dp| <= k) against the binomial
    # sums of the Beta moments E[p^j] = (a)_j / (a + b)_j, E[(1 - p)^j] = (b)_j / (a + b)_j
    a, b = (v.ravel() for v in np.meshgrid(EXTREMES, EXTREMES))
    mass = beta_expectation(lambda p, q: np.zeros_like(p), a, b, scale=0.0)
    np.testing.assert_allclose(mass, 1.0, rtol=1e-12)
    for k in (1, 5, 50):
        j = np.arange(k + 1)[:, None]
        binomial = np.exp(gammaln(k + 1) - gammaln(j + 1) - gammaln(k - j + 1))
        up = beta_expectation(lambda p, q, k=k: k * np.log1p(p), a, b, scale=k)
        moments = np.exp(log_rising(a, j) - log_rising(a + b, j))
        np.testing.assert_allclose(up, (binomial * moments).sum(axis=0), rtol=1e-12)
        down = beta_expectation(lambda p, q, k=k: k * np.log1p(q), a, b, scale=k)
        moments = np.exp(log_rising(b, j) - log_rising(a + b, j))
        np.testing.assert_allclose(down, (binomial * moments).sum(axis=0), rtol=1e-12)


def test_beta_expectation_next_to_a_pole() -> None:
    # E[1 / (p + d)] = 2F1(1, a; a + b; -1/d) / d: its integrand has a pole at p = -d,
    # next to the Beta's mass near 0 when d is small. Against scipy where it is reliable,
    # and against values from mpmath (30 digits) where it returns NaN.
    a, b, d = (v.ravel() for v in np.meshgrid([0.3, 0.7, 2.5], [0.5, 1.2, 8.0], [0.01, 0.5]))
    ours = beta_expectation(lambda p, q, d: -np.log(p + d), a, b, scale=1 / d, args=(d,))
    np.testing.assert_allclose(ours, hyp2f1(1.0, a, a + b, -1 / d) / d, rtol=1e-12)
    mpmath = {  # (a, b, d): E[1 / (p + d)]
        (2.0, 1000.0, 1e-9): 1000.9867479519888,
        (1e-3, 1e3, 1e-9): 986849250.8300089,
        (0.05, 1e-8, 1e-12): 50445.90922024322,
        (1e-8, 1e6, 1e-5): 99999.99990843666,
        (1e8, 1e8, 0.01): 1.9607843231487136,
        (1e8, 1e6, 0.1): 0.9173478656516754,
    }
    for (a, b, d), expected in mpmath.items():
        value = beta_expectation(lambda p, q, d: -np.log(p + d), a, b, scale=1 / d, args=(d,))
        assert float(value) == pytest.approx(expected, rel=1e-12), (a, b, d)


@pytest.mark.parametrize("a, b", [(1e12, 3e12), (5e15, 1e14), (1e20, 1e20), (3e30, 1e30)])
def test_beta_expectation_of_very_concentrated_weights(a: float, b: float) -> None:
    # beyond a + b ~ 1e26 the weight is a point mass; below, the fine grid must still keep
    # its total mass at 1 and its mean at a / (a + b)
    mass = beta_expectation(lambda p, q: np.zeros_like(p), a, b, scale=0.0)
    mean = beta_expectation(lambda p, q: np.log(p), a, b, scale=1e40)
    assert float(mass) == pytest.approx(1.0, rel=1e-10)
    assert float(mean) == pytest.approx(a / (a + b), rel=1e-10)
