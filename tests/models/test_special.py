"""The series fallback for 2F1 agrees with scipy where scipy is reliable."""

from __future__ import annotations

import numpy as np
from scipy.special import hyp2f1

from clvmodels.models._special import hyp2f1_series


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
