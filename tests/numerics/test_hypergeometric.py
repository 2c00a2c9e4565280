"""The compiled 2F1 series of Pareto/NBD against SciPy's hyp2f1 and finite differences
(the Pareto/NBD tests also compare it with the independent quadrature route)."""

from __future__ import annotations

import numpy as np
from scipy import special

from clvmodels.numerics.hypergeometric import log_hyp2f1_series


def _grid(n: int = 300, z_max: float = 0.5):
    rng = np.random.default_rng(5)
    m = 10 ** rng.uniform(-2, 3, n)
    a = (m + 1) * rng.uniform(0.01, 1.0, n)  # a <= m + 1: terms shrink
    return a, m, rng.uniform(0.0, z_max, n)


def test_values_equal_scipys_hyp2f1() -> None:
    a, m, z = _grid()
    (log_s,) = log_hyp2f1_series(a, m, z, False)
    np.testing.assert_allclose(log_s, np.log(special.hyp2f1(a, 1.0, m + 1.0, z)),
                               rtol=1e-13, atol=1e-14)  # fmt: skip


def test_derivatives_equal_central_differences() -> None:
    a, m, z = _grid(100, 0.45)
    _, d_a, d_m, d_z = log_hyp2f1_series(a, m, z, True)

    def log_f(a_, m_, z_):
        return np.log(special.hyp2f1(a_, 1.0, m_ + 1.0, z_))

    for got, step, shift in ((d_a, 1e-6 * a, (1, 0, 0)), (d_m, 1e-6 * m, (0, 1, 0)),
                             (d_z, np.full_like(z, 1e-7), (0, 0, 1))):  # fmt: skip
        up = log_f(a + shift[0] * step, m + shift[1] * step, z + shift[2] * step)
        down = log_f(a - shift[0] * step, m - shift[1] * step, z - shift[2] * step)
        numeric = (up - down) / (2 * step)
        np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8)


def test_up_to_z_085_and_nan_and_empty_input() -> None:
    a, m, z = _grid(50, 0.85)
    values = log_hyp2f1_series(a, m, z, True)
    assert all(np.all(np.isfinite(v)) for v in values)
    # the terms are positive: 2F1 >= 1, increasing in z
    assert np.all(values[0] >= 0) and np.all(values[3] >= 0)
    nan = log_hyp2f1_series(np.array([np.nan]), np.array([1.0]), np.array([0.3]), True)
    assert all(np.isnan(v[0]) for v in nan)
    empty = log_hyp2f1_series(np.array([]), np.array([]), np.array([]), True)
    assert all(v.size == 0 for v in empty)
