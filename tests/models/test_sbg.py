"""Tests of the shifted-beta-geometric model (Fader & Hardie 2007, 2010).

Checks: the published estimates on the two retention curves of FH 2007 and the
projection of years 8-12; DEL and DERL against their defining sums; identities between
survival, churn and retention; the gradient against finite differences; parameter
recovery from simulated cohorts; numerical stability; error messages.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import pytest

from clvmodels.datasets import load_sbg_retention
from clvmodels.exceptions import InvalidDataError
from clvmodels.models import sbg
from clvmodels.models.sbg import (
    ShiftedBetaGeometric,
    discounted_expected_lifetime,
    discounted_expected_residual_lifetime,
    log_likelihood,
)
from clvmodels.numerics.special import log_rising
from clvmodels.simulate import sbg_lost_per_period, simulate_sbg

SBG = ShiftedBetaGeometric

# FH 2007 fit years 1-7 of cohorts of 1,000 customers and report three decimals:
# regular alpha = 0.704, beta = 1.182; high end alpha = 0.668, beta = 3.806. (The
# regular segment loses 36.9% in year 1, the high-end one 13.1%: mean churn
# alpha / (alpha + beta) = 0.373 and 0.149.)
PAPER = {
    "regular_pct_alive": (0.704, 1.182),
    "highend_pct_alive": (0.668, 3.806),
}
# Largest gap (percentage points) between the model's and the actual survival. Years
# 8-12 (projection): the regular segment is within 0.31 points, the high-end one runs
# low by up to 1.6 points (year 12). Years 1-7 (fitted): within 0.61 and 1.83 points.
PROJECTION_TOLERANCE = {"regular_pct_alive": 0.5, "highend_pct_alive": 2.0}
IN_SAMPLE_TOLERANCE = {"regular_pct_alive": 0.7, "highend_pct_alive": 2.0}


@pytest.fixture(scope="module")
def retention() -> pd.DataFrame:
    return load_sbg_retention().set_index("year")


def _cohort(retention, column, last_year=7):
    counts = (retention.loc[:last_year, column] * 10).round().astype(int)
    return SBG.data_from_counts(counts)


@pytest.fixture(scope="module")
def models(retention) -> dict[str, SBG]:
    return {column: SBG().fit(_cohort(retention, column)) for column in PAPER}


# --------------------------------------------------------------------- the paper


@pytest.mark.parametrize("column", list(PAPER))
def test_estimates_match_the_paper(models, column):
    model = models[column]
    alpha, beta = PAPER[column]
    # three decimals published: agree to half a unit in the last place
    assert abs(model.params_["alpha"] - alpha) <= 5e-4
    assert abs(model.params_["beta"] - beta) <= 5e-4
    assert model.n_customers_ == 1000
    assert model.converged_


@pytest.mark.parametrize("column", list(PAPER))
def test_projection_of_years_8_to_12(models, retention, column):
    projected = models[column].survival(list(range(8, 13))) * 100
    actual = retention.loc[8:12, column]
    gap = projected.to_numpy() - actual.to_numpy()
    assert np.max(np.abs(gap)) < PROJECTION_TOLERANCE[column]
    # and the fitted years are reproduced closely
    fitted = models[column].survival(list(range(1, 8))) * 100
    in_sample = fitted.to_numpy() - retention.loc[1:7, column].to_numpy()
    assert np.max(np.abs(in_sample)) < IN_SAMPLE_TOLERANCE[column]


def test_data_from_counts():
    frame = SBG.data_from_counts([1000, 631, 468, 382])
    assert list(frame.columns) == ["lifetime", "censored", "weight"]
    assert frame["lifetime"].tolist() == [1, 2, 3, 3]
    assert frame["censored"].tolist() == [False, False, False, True]
    assert frame["weight"].tolist() == [369, 163, 86, 382]
    assert frame["weight"].dtype == np.int64
    shares = SBG.data_from_counts(np.array([1.0, 0.631, 0.468]))
    np.testing.assert_allclose(shares["weight"], [0.369, 0.163, 0.468])
    # the fit does not depend on the scale of the counts
    a = SBG().fit(SBG.data_from_counts([1000, 631, 468, 382])).params_
    b = SBG().fit(SBG.data_from_counts([100.0, 63.1, 46.8, 38.2])).params_
    np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize(
    ("active", "pattern"),
    [
        ([1000, 1100], "must not increase: 1100 customers after period 1"),
        ([1000], "at least one period"),
        ([1000, -1], "finite and >= 0"),
        ([0, 0], "no customers"),
        ([[1000, 600]], "at least one period"),
        (["a", "b"], "sequence of numbers"),
    ],
)
def test_data_from_counts_errors(active, pattern):
    with pytest.raises(InvalidDataError, match=pattern):
        SBG.data_from_counts(active)


# ------------------------------------------------------------------ predictions


def test_survival_churn_and_retention_are_consistent(models):
    model = models["regular_pct_alive"]
    t = list(range(1, 30))
    survival = model.survival([0, *t]).to_numpy()
    churn = model.probability_churn(t).to_numpy()
    retention = model.retention_rate(t).to_numpy()
    assert survival[0] == 1.0
    np.testing.assert_allclose(churn, survival[:-1] - survival[1:], rtol=1e-12)
    np.testing.assert_allclose(retention, survival[1:] / survival[:-1], rtol=1e-12)
    assert np.all(np.diff(retention) > 0)  # heterogeneity: retention rises with tenure
    alpha, beta = model.params_
    assert model.retention_rate(1) == pytest.approx(beta / (alpha + beta))
    assert model.probability_churn(1) == pytest.approx(alpha / (alpha + beta))
    assert model.survival(3) == pytest.approx(float(survival[3]))


def test_return_shapes_and_intervals(models):
    model = models["highend_pct_alive"]
    curve = model.survival([1, 2, 3])
    assert isinstance(curve, pd.Series) and curve.index.name == "t"
    assert list(curve.index) == [1, 2, 3]
    table = model.survival([1, 5, 10], interval=0.9, n_draws=500)
    assert list(table.columns) == ["estimate", "lower", "upper"]
    assert ((table["lower"] < table["estimate"]) & (table["estimate"] < table["upper"])).all()
    single = model.retention_rate(4, interval=0.9, n_draws=500)
    assert list(single.index) == ["estimate", "lower", "upper"]
    assert single["lower"] < single["estimate"] < single["upper"]
    derl = model.discounted_expected_residual_lifetime(0.1, n_renewals=[0, 4], interval=0.8)
    assert list(derl.index) == [0, 4] and derl.index.name == "n_renewals"
    assert (derl["lower"] < derl["upper"]).all()
    same = model.discounted_expected_residual_lifetime(0.1, n_renewals=[0, 4], interval=0.8)
    pd.testing.assert_frame_equal(derl, same)
    d = model.discounted_expected_lifetime(0.1, interval=0.9)
    assert d["lower"] < d["estimate"] < d["upper"]


def test_expected_lifetime(models):
    # both segments have alpha < 1: E[1/theta] diverges
    assert models["regular_pct_alive"].expected_lifetime() == math.inf
    interval = models["regular_pct_alive"].expected_lifetime(interval=0.9, n_draws=200)
    assert not interval.isna().any()
    model = SBG()
    model.params_ = pd.Series({"alpha": 5.0, "beta": 5.0})
    model.covariance_ = pd.DataFrame(np.diag([0.01, 0.02]), index=["alpha", "beta"],
                                     columns=["alpha", "beta"])  # fmt: skip
    assert model.expected_lifetime() == pytest.approx(9 / 4)
    # = sum_t S(t) = DEL at d = 0
    assert model.discounted_expected_lifetime(0.0) == pytest.approx(2.25, rel=1e-12)
    assert model.survival(list(range(0, 3000))).sum() == pytest.approx(2.25, rel=1e-9)
    both = model.expected_lifetime(interval=0.9, n_draws=300)
    assert both["lower"] < 2.25 < both["upper"]


def _direct_derl(d, renewals, alpha, beta, horizon):
    """sum_{t >= n} S(t) / S(n - 1) / (1 + d)^(t - n), n = renewals + 1 (FH 2010)."""
    n = renewals + 1
    t = np.arange(n, n + horizon, dtype=np.float64)
    log_s = log_rising(beta, t) - log_rising(alpha + beta, t)
    log_s0 = log_rising(beta, n - 1.0) - log_rising(alpha + beta, n - 1.0)
    return math.fsum(np.exp(log_s - log_s0 - (t - n) * math.log1p(d)))


@pytest.mark.parametrize("alpha", [0.05, 0.704, 1.0, 2.5, 40.0])
@pytest.mark.parametrize("beta", [0.02, 1.182, 3.806, 50.0])
def test_derl_and_del_against_direct_sums(alpha, beta):
    for d in (0.02, 0.1, 1.0):
        horizon = int(45 / math.log1p(d)) + 10  # remaining terms below e^-45
        for renewals in (0, 1, 5, 30):
            ours = float(discounted_expected_residual_lifetime(d, renewals, alpha, beta))
            direct = _direct_derl(d, renewals, alpha, beta, horizon)
            assert ours == pytest.approx(direct, rel=1e-10)
        t = np.arange(horizon, dtype=np.float64)
        log_s = log_rising(beta, t) - log_rising(alpha + beta, t)
        direct_del = math.fsum(np.exp(log_s - t * math.log1p(d)))
        del_ = float(discounted_expected_lifetime(d, alpha, beta))
        assert del_ == pytest.approx(direct_del, rel=1e-10)
        derl0 = float(discounted_expected_residual_lifetime(d, 0, alpha, beta))
        assert del_ == pytest.approx(1 + derl0 / (1 + d), rel=1e-12)


def test_del_and_derl_with_tiny_discount_rates_are_fast_and_accurate():
    # alpha = 2, beta = 1000: scipy's hyp2f1 returns NaN, and summing the series takes
    # about 1/d terms (seconds at d = 1e-7, minutes at 1e-9). The Beta-mixture integral
    # costs the same at any d.
    alpha, beta = 2.0, 1000.0
    start = time.perf_counter()
    del_ = float(discounted_expected_lifetime(1e-9, alpha, beta))
    derl = discounted_expected_residual_lifetime(1e-9, np.arange(5), alpha, beta)
    assert time.perf_counter() - start < 1.0
    # (1 + d) E[1 / (theta + d)], theta ~ Beta(2, 1000), by mpmath (30 digits)
    assert del_ == pytest.approx((1 + 1e-9) * 1000.9867479519888, rel=1e-12)
    assert del_ == pytest.approx(1 + derl[0] / (1 + 1e-9), rel=1e-12)
    assert np.all(np.diff(derl) > 0)
    # d -> 0: Gauss's (alpha + beta - 1) / (alpha - 1)
    assert float(discounted_expected_lifetime(1e-15, alpha, beta)) == pytest.approx(1001, rel=1e-9)
    # the same route at a moderate rate, against the defining sum
    d = 1e-3
    horizon = int(45 / math.log1p(d)) + 10
    for renewals in (0, 3, 40):
        ours = float(discounted_expected_residual_lifetime(d, renewals, alpha, beta))
        assert ours == pytest.approx(_direct_derl(d, renewals, alpha, beta, horizon), rel=1e-10)


def test_citations_make_no_unverified_claims():
    assert "from memory" not in sbg.__doc__
    assert "not checked" not in sbg.__doc__


def test_derl_individual_level_limit():
    # with almost no heterogeneity (alpha, beta huge, theta = alpha/(alpha+beta)) DERL
    # tends to FH 2010's individual-level (1 - theta)(1 + d) / (d + theta)
    theta, d = 0.2, 0.1
    scale = 1e9
    ours = float(discounted_expected_residual_lifetime(d, 3, theta * scale, (1 - theta) * scale))
    assert ours == pytest.approx((1 - theta) * (1 + d) / (d + theta), rel=1e-6)


def test_derl_grows_with_tenure(models):
    derl = models["regular_pct_alive"].discounted_expected_residual_lifetime(
        0.1, n_renewals=list(range(10))
    )
    assert derl.is_monotonic_increasing


# ------------------------------------------------------------------ the gradient


@pytest.mark.parametrize("params", [(0.704, 1.182), (1e-3, 1e3), (1e5, 1e6), (3.0, 0.01)])
def test_gradient_matches_finite_differences(params):
    t = np.array([1, 2, 7, 7, 100, 1])
    c = np.array([0, 0, 0, 1, 1, 1])
    p = np.array(params)
    _, grad = log_likelihood(t, c, *p, gradient=True)
    assert grad.shape == (6, 2)
    step = 1e-5
    numeric = np.empty_like(grad)
    for j in range(2):
        up, down = p.copy(), p.copy()
        up[j] *= math.exp(step)
        down[j] *= math.exp(-step)
        difference = log_likelihood(t, c, *up)[0] - log_likelihood(t, c, *down)[0]
        numeric[:, j] = difference / (2 * step)
    np.testing.assert_allclose(grad * p, numeric, rtol=1e-6, atol=1e-7)


def test_log_likelihood_is_the_papers():
    alpha, beta = 0.704, 1.182
    ll, _ = log_likelihood(np.array([1, 3, 7]), np.array([0, 0, 1]), alpha, beta)
    from scipy.special import betaln

    expected = [
        betaln(alpha + 1, beta + 0) - betaln(alpha, beta),
        betaln(alpha + 1, beta + 2) - betaln(alpha, beta),
        betaln(alpha, beta + 7) - betaln(alpha, beta),
    ]
    np.testing.assert_allclose(ll, expected, rtol=1e-12)


# ---------------------------------------------------------- recovery, stability


def test_parameter_recovery_from_simulated_cohort():
    truth = dict(alpha=0.7, beta=2.5)
    sim = simulate_sbg(100_000, **truth, n_periods=10, random_state=4)
    model = SBG().fit(sim)
    table = model.summary()
    for name, value in truth.items():
        assert table.loc[name, "lower"] < value < table.loc[name, "upper"], table
    # the same cohort as counts per period gives the same fit
    lost = sbg_lost_per_period(sim, 10)
    counts = [len(sim), *lost["active"]]
    from_counts = SBG().fit(SBG.data_from_counts(counts))
    np.testing.assert_allclose(from_counts.params_, model.params_, rtol=1e-6)
    assert from_counts.log_likelihood_ == pytest.approx(model.log_likelihood_, rel=1e-10)


@pytest.mark.parametrize("alpha", [1e-8, 1.0, 1e8])
@pytest.mark.parametrize("beta", [1e-8, 1.0, 1e8])
def test_extreme_parameters_stay_finite(alpha, beta):
    t = np.array([1.0, 2, 50, 1000])
    for c in (np.zeros(4), np.ones(4)):
        ll, grad = log_likelihood(t, c, alpha, beta, gradient=True)
        # (absolute accuracy of a log-likelihood term is ~1e-14 per period)
        assert np.all(np.isfinite(ll)) and np.all(ll <= 1e-10)
        assert np.all(np.isfinite(grad))
    for d in (0.01, 0.5):
        assert np.isfinite(discounted_expected_residual_lifetime(d, 10, alpha, beta))
        assert np.isfinite(discounted_expected_lifetime(d, alpha, beta))


def test_customer_level_data_and_persistence(tmp_path):
    data = pd.DataFrame(
        {"lifetime": [1, 3, 3, 2, 5, 5], "censored": [False, False, True, False, True, True]},
        index=pd.Index(list("abcdef"), name="customer_id"),
    )
    model = SBG().fit(data)
    path = model.save(tmp_path / "sbg.json")
    state = json.loads(path.read_text())
    assert state["kind"] == "sbg"
    loaded = SBG._from_state(state)
    pd.testing.assert_series_equal(loaded.params_, model.params_)
    assert loaded.survival(4) == model.survival(4)
    renamed = data.rename(columns={"lifetime": "tenure", "censored": "active"})
    other = SBG(columns={"lifetime": "tenure", "censored": "active"}).fit(renamed)
    np.testing.assert_allclose(other.params_, model.params_, rtol=1e-12)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("column", "value", "pattern"),
    [
        ("lifetime", 0, r"column 'lifetime': 1 of 4 rows are below 1 \(e\.g\. customer 'c'\)"),
        ("lifetime", 2.5, r"column 'lifetime': 1 of 4 rows are not whole numbers"),
        ("censored", 2, r"column 'censored': 1 of 4 rows are not True/False"),
        ("lifetime", np.nan, r"column 'lifetime': 1 of 4 rows are NaN or infinite"),
    ],
)
def test_bad_data_is_reported(column, value, pattern):
    data = pd.DataFrame(
        {"lifetime": [1.0, 2.0, 3.0, 3.0], "censored": [0, 0, 0, 1]},
        index=pd.Index(list("abcd"), name="customer_id"),
    )
    data.loc["c", column] = value
    with pytest.raises(InvalidDataError, match=pattern):
        SBG().fit(data)


def test_bad_arguments_are_reported(models):
    model = models["regular_pct_alive"]
    with pytest.raises(InvalidDataError, match="whole numbers"):
        model.survival(1.5)
    with pytest.raises(InvalidDataError, match=">= 1"):
        model.retention_rate(0)
    with pytest.raises(InvalidDataError, match=">= 1"):
        model.probability_churn([0, 1])
    with pytest.raises(InvalidDataError, match="discount_rate"):
        model.discounted_expected_lifetime(-0.1)
    with pytest.raises(InvalidDataError, match="discount_rate"):
        model.discounted_expected_residual_lifetime([0.1, 0.2])
    with pytest.raises(InvalidDataError, match="n_renewals"):
        model.discounted_expected_residual_lifetime(0.1, n_renewals=-1)
    with pytest.raises(InvalidDataError, match="interval"):
        model.survival(3, interval=0)
    with pytest.raises(InvalidDataError, match="censored"):
        SBG().fit(pd.DataFrame({"lifetime": [1, 2]}))
