"""The numpy NUTS of ``sampler="clvmodels"``: right moments on targets with known answers,
divergences where NUTS must diverge, Stan's warm-up schedule, reproducible draws."""

from __future__ import annotations

import numpy as np
import pytest

from clvmodels.bayes._nuts import _windows, run_chain, sample_nuts


def standard_normal(x):
    return -0.5 * float(x @ x), -x


def correlated_normal():
    mean = np.array([1.0, -2.0, 0.5])
    sd = np.array([0.1, 3.0, 1.0])
    correlation = np.array([[1.0, 0.95, 0.3], [0.95, 1.0, 0.2], [0.3, 0.2, 1.0]])
    covariance = correlation * np.outer(sd, sd)
    precision = np.linalg.inv(covariance)

    def density(x):
        d = x - mean
        gradient = -(precision @ d)
        return 0.5 * float(d @ gradient), gradient

    return density, mean, covariance


def test_standard_normal_moments():
    result = sample_nuts(standard_normal, np.zeros((2, 3)), draws=3000, tune=500,
                         random_seed=11)  # fmt: skip
    draws = result.draws.reshape(-1, 3)
    # 6,000 draws of nearly independent samples: 5 standard errors
    np.testing.assert_allclose(draws.mean(axis=0), 0.0, atol=5 / np.sqrt(6000))
    np.testing.assert_allclose(draws.var(axis=0), 1.0, atol=0.1)
    assert not result.stats["diverging"].any()
    assert result.stats["acceptance_rate"].mean() > 0.7


def test_correlated_normal_from_the_identity_metric():
    """The dense metric learnt in warm-up recovers scales 30x apart and a correlation of
    0.95; the draws then have the right covariance."""
    density, mean, covariance = correlated_normal()
    result = sample_nuts(density, np.zeros((2, 3)), draws=3000, tune=1000, random_seed=3)
    draws = result.draws.reshape(-1, 3)
    sd = np.sqrt(np.diag(covariance))
    np.testing.assert_allclose((draws.mean(axis=0) - mean) / sd, 0.0, atol=0.1)
    np.testing.assert_allclose(np.cov(draws, rowvar=False) / np.outer(sd, sd),
                               covariance / np.outer(sd, sd), atol=0.08)  # fmt: skip
    # with the learnt metric the target is a standard normal: short trajectories
    assert result.stats["n_steps"].mean() < 8
    assert not result.stats["diverging"].any()


def test_a_skewed_target_on_the_log_scale():
    """Gamma(k, 1) parameters sampled as log(theta), Jacobian included: E theta = k and
    Var theta = k, for a shape well below 1 (strong skew) up to 8."""
    shape = np.array([0.5, 2.0, 8.0])

    def density(x):
        theta = np.exp(x)
        return float(np.sum(shape * x - theta)), shape - theta

    result = sample_nuts(density, np.zeros((2, 3)), draws=4000, tune=500, random_seed=5)
    theta = np.exp(result.draws.reshape(-1, 3))
    np.testing.assert_allclose(theta.mean(axis=0), shape, rtol=0.05)
    np.testing.assert_allclose(theta.var(axis=0), shape, rtol=0.15)


def test_the_funnel_diverges():
    """Neal's funnel without reparametrisation: NUTS cannot follow its neck and must
    report divergences rather than hide them."""

    def funnel(x):
        v, z = x[0], x[1:]
        scale2 = np.exp(v)
        value = -v * v / 18.0 - 0.5 * float(z @ z) / scale2 - 0.5 * z.size * v
        gradient = np.empty_like(x)
        gradient[0] = -v / 9.0 + 0.5 * float(z @ z) / scale2 - 0.5 * z.size
        gradient[1:] = -z / scale2
        return value, gradient

    result = sample_nuts(funnel, np.zeros((2, 3)), draws=500, tune=300, random_seed=2)
    assert result.stats["diverging"].sum() > 0


def test_same_seed_same_draws_whatever_the_processes():
    serial = sample_nuts(standard_normal, np.zeros((3, 2)), draws=50, tune=50,
                         random_seed=9, cores=1)  # fmt: skip
    forked = sample_nuts(standard_normal, np.zeros((3, 2)), draws=50, tune=50,
                         random_seed=9, cores=3)  # fmt: skip
    np.testing.assert_array_equal(serial.draws, forked.draws)
    other = sample_nuts(standard_normal, np.zeros((3, 2)), draws=50, tune=50, random_seed=10)
    assert not np.array_equal(serial.draws, other.draws)
    # chains differ from each other
    assert not np.array_equal(serial.draws[0], serial.draws[1])
    assert set(serial.stats) == {"diverging", "tree_depth", "n_steps", "acceptance_rate",
                                 "energy", "step_size", "lp"}  # fmt: skip
    assert serial.stats["diverging"].dtype == bool and serial.stats["lp"].shape == (3, 50)


def test_stan_warmup_windows():
    # Stan's defaults for 1000 warm-up iterations: buffers 75 / 50, windows 25, 50, 100,
    # 200 and the last stretched to the terminal buffer (Stan Reference Manual)
    assert _windows(1000) == (75, {99, 149, 249, 449, 949})
    # short warm-ups: 15 % / 10 % buffers and one window
    assert _windows(100) == (15, {89})
    assert _windows(10) == (10, set())
    # from a good starting metric: one window over the slow phase
    assert _windows(1000, informed=True) == (75, {949})
    assert _windows(100, informed=True) == (15, {89})


def test_a_start_outside_the_support_is_refused():
    def half_line(x):
        if x[0] <= 0:
            return -np.inf, np.zeros(1)
        return -float(x[0]), -np.ones(1)

    with pytest.raises(FloatingPointError, match="not finite at the start"):
        run_chain(half_line, np.array([-1.0]), draws=5, tune=5, seed=0, covariance=None,
                  target_accept=0.8, max_treedepth=10)  # fmt: skip
