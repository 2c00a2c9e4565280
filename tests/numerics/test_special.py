"""The shared special functions: rising factorials and their derivative against exact
sums, Beta expectations against closed forms and mpmath."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import gammaln, hyp2f1

from clvmodels.numerics.special import beta_expectation, digamma_difference, log_rising


def test_rising_factorials_against_exact_sums():
    for a in (1e-8, 0.3, 7.5, 99.99, 100.0, 3e3, 1e9):
        for m in (0, 1, 7, 250):
            exact = math.fsum(math.log(a + j) for j in range(m))
            assert log_rising(a, m) == pytest.approx(exact, rel=1e-13, abs=1e-13)
            exact_d = math.fsum(1 / (a + j) for j in range(m))
            assert digamma_difference(a, m) == pytest.approx(exact_d, rel=1e-12, abs=1e-300)


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
