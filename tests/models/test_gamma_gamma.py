"""Gamma-Gamma: the published CDNOW fit, lifetimes as oracle, the shrinkage formula."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.exceptions import InvalidDataError
from clvmodels.models import gamma_gamma
from clvmodels.simulate import simulate_gamma_gamma


@pytest.fixture(scope="module")
def model(cdnow_calibration: pd.DataFrame) -> clvmodels.GammaGamma:
    return clvmodels.GammaGamma().fit(cdnow_calibration)


def test_matches_fader_hardie_2013(model) -> None:
    published = {"p": 6.2496, "q": 3.7442, "gamma": 15.4435}
    for name, value in published.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-3)
    assert model.n_customers_ == 946  # repeat buyers only


def test_expected_spend_equals_lifetimes(model, cdnow_calibration) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    oracle = lifetimes.GammaGammaFitter()
    oracle.params_ = pd.Series(model.params_.to_numpy(), index=["p", "q", "v"])
    theirs = oracle.conditional_expected_average_profit(
        cdnow_calibration["frequency_cal"], cdnow_calibration["monetary_value_cal"]
    )
    ours = model.expected_spend(cdnow_calibration)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    # customers without repeat purchases get the population mean
    zero = cdnow_calibration["frequency_cal"] == 0
    np.testing.assert_allclose(ours[zero], model.mean_spend(), rtol=1e-12)


def test_spend_is_a_weighted_mean_of_own_and_population_mean(model) -> None:
    p, q, _ = model.params_
    frame = pd.DataFrame({"frequency": [1, 5, 50], "monetary_value": [10.0, 10.0, 10.0]})
    weight = p * frame["frequency"] / (p * frame["frequency"] + q - 1)
    expected = weight * 10.0 + (1 - weight) * model.mean_spend()
    np.testing.assert_allclose(model.expected_spend(frame), expected, rtol=1e-12)


def test_gradient_is_exact(numeric_derivative) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(1, 30, 100).astype(float)
    z = rng.gamma(2, 20, 100)
    params = np.array([6.2, 3.7, 15.4])
    _, grad = gamma_gamma.log_likelihood(x, z, *params, gradient=True)
    for j in range(3):
        numeric = numeric_derivative(lambda p: gamma_gamma.log_likelihood(x, z, *p)[0],
                                        params, j)  # fmt: skip
        np.testing.assert_allclose(grad[:, j], numeric, rtol=1e-7, atol=1e-9)


def test_parameter_recovery() -> None:
    truth = {"p": 6.0, "q": 3.5, "gamma": 15.0}
    frequency = np.random.default_rng(2).integers(1, 10, 100_000)
    customers = simulate_gamma_gamma(frequency, **truth, random_state=3)
    summary = clvmodels.GammaGamma().fit(customers).summary()
    for name, value in truth.items():
        assert summary.loc[name, "lower"] < value < summary.loc[name, "upper"]


def test_zero_value_repeat_buyers_are_refused() -> None:
    frame = pd.DataFrame({"frequency": [0, 2, 3], "monetary_value": [0.0, 0.0, 5.0]},
                         index=pd.Index(["a", "b", "c"], name="customer_id"))  # fmt: skip
    with pytest.raises(InvalidDataError, match=r"1 of 3 rows are 0 for repeat buyers.*'b'"):
        clvmodels.GammaGamma().fit(frame)
    with pytest.raises(InvalidDataError, match="frequency > 0"):
        clvmodels.GammaGamma().fit(frame.iloc[:1])


def _uncertain(model: clvmodels.GammaGamma) -> clvmodels.GammaGamma:
    """A copy of ``model`` whose q is so uncertain that many draws have q <= 1."""
    copy = clvmodels.GammaGamma()
    copy.params_ = model.params_.copy()
    cov = model.covariance_.copy()
    cov.loc["q", "q"] = (1.2 * model.params_["q"]) ** 2  # sd of log q 1.2: 13% below 1
    copy.covariance_ = cov
    return copy


def test_infinite_means_are_inf_not_negative(model, cdnow_calibration) -> None:
    p = np.array([2.0, 2.0, 2.0])
    q = np.array([0.5, 0.5, 3.0])
    values = gamma_gamma.expected_spend(np.array([0.0, 1.0, 0.0]), 10.0, p, q, 5.0)
    assert values[0] == np.inf  # p x + q - 1 < 0
    assert values[1] == pytest.approx(2 * (5 + 10) / (2 + 0.5 - 1))
    assert values[2] == pytest.approx(2 * 5 / 2)
    assert gamma_gamma.mean_spend(2.0, 1.0, 5.0) == np.inf
    uncertain = _uncertain(model)
    assert (uncertain.parameter_draws(1000)[:, 1] <= 1).mean() > 0.1
    mean = uncertain.mean_spend(interval=0.9)
    assert mean["estimate"] == pytest.approx(model.mean_spend())
    assert 0 < mean["lower"] < mean["estimate"] < mean["upper"]
    frame = cdnow_calibration.iloc[:300]
    spend = uncertain.expected_spend(frame, interval=0.9)
    assert not spend.isna().any().any()
    assert (spend["lower"] > 0).all() and (spend["upper"] >= spend["estimate"]).all()
    assert np.isinf(spend["upper"]).any()
    bgnbd = clvmodels.BGNBD().fit(cdnow_calibration)
    clv = clvmodels.predictive_clv(bgnbd, uncertain, frame, horizon="1Y", discount_rate=0.1,
                                   interval=0.9, n_draws=300)  # fmt: skip
    assert not clv.isna().any().any()
    assert (clv["lower"] >= 0).all() and (clv["upper"] >= clv["estimate"]).all()


def test_point_estimates_need_a_finite_mean(model, cdnow_calibration) -> None:
    broken = _uncertain(model)
    broken.params_["q"] = 0.9
    for call in (lambda: broken.mean_spend(), lambda: broken.expected_spend(cdnow_calibration),
                 lambda: broken.mean_spend(interval=0.9)):  # fmt: skip
        with pytest.raises(InvalidDataError, match=re.escape("q = 0.9 <= 1")):
            call()


def test_missing_values_of_customers_without_repeat_purchases(model, cdnow_calibration) -> None:
    # the mean repeat value of a customer without repeat purchases is never used
    gaps = cdnow_calibration.copy()
    gaps.loc[gaps["frequency_cal"] == 0, "monetary_value_cal"] = np.nan
    pd.testing.assert_series_equal(clvmodels.GammaGamma().fit(gaps).params_, model.params_)
    frame = pd.DataFrame({"frequency": [0, 2, 3, 0], "monetary_value": [np.nan, 20.0, 35.0, 0.0]},
                         index=pd.Index(["a", "b", "c", "d"], name="customer_id"))  # fmt: skip
    spend = model.expected_spend(frame)
    assert spend["a"] == pytest.approx(model.mean_spend()) == pytest.approx(spend["d"])
    # but it is for repeat buyers
    with pytest.raises(InvalidDataError, match=r"column 'monetary_value': 1 of 4 .*NaN.*'b'"):
        model.expected_spend(frame.assign(monetary_value=[0.0, np.nan, 35.0, 0.0]))
    gaps.loc[gaps["frequency_cal"] > 0, "monetary_value_cal"] = np.nan
    with pytest.raises(InvalidDataError, match=r"column 'monetary_value_cal'.*NaN"):
        clvmodels.GammaGamma().fit(gaps)


def test_drop_zero_values(cdnow_master) -> None:
    frame = clvmodels.summarize(cdnow_master, amount="amount", time_unit="W")
    with pytest.raises(InvalidDataError, match=r"0 for repeat buyers.*10244.*drop_zero_values"):
        clvmodels.GammaGamma().fit(frame)
    recipe = frame[(frame["frequency"] == 0) | (frame["monetary_value"] > 0)]
    expected = clvmodels.GammaGamma().fit(recipe)
    with pytest.warns(UserWarning, match=r"1 repeat buyers .*10244.* left out") as record:
        model = clvmodels.GammaGamma(drop_zero_values=True).fit(frame)
    assert record[0].filename == __file__
    pd.testing.assert_series_equal(model.params_, expected.params_)
    assert model.n_customers_ == expected.n_customers_
    assert "drop_zero_values=True" in repr(model)
    with pytest.raises(InvalidDataError, match="drop_zero_values='yes'"):
        clvmodels.GammaGamma(drop_zero_values="yes").fit(frame)
    only_zero = pd.DataFrame({"frequency": [1, 0], "monetary_value": [0.0, 5.0]})
    with pytest.warns(UserWarning), pytest.raises(InvalidDataError, match="nothing to fit"):
        clvmodels.GammaGamma(drop_zero_values=True).fit(only_zero)


@pytest.mark.parametrize("factor", [1e-80, 1e-3, 1e6, 1e80])
def test_fit_is_scale_equivariant(model, cdnow_calibration, factor) -> None:
    # Amounts in other units (cents, millions of a small currency) give the same fit in
    # those units: gamma times the factor, p, q and standard errors of p, q unchanged,
    # and no IdentificationWarning from the size of gamma (pytest turns it into an error).
    scaled = cdnow_calibration.assign(
        monetary_value_cal=cdnow_calibration["monetary_value_cal"] * factor
    )
    fitted = clvmodels.GammaGamma().fit(scaled)
    expected = model.params_ * np.array([1.0, 1.0, factor])
    np.testing.assert_allclose(fitted.params_, expected, rtol=1e-5)
    np.testing.assert_allclose(
        np.sqrt(np.diag(fitted.covariance_)) / expected,
        np.sqrt(np.diag(model.covariance_)) / model.params_, rtol=1e-3,
    )  # fmt: skip
    # each mean value's density is divided by the factor
    shift = model.n_customers_ * np.log(factor)
    assert fitted.log_likelihood_ == pytest.approx(model.log_likelihood_ - shift, rel=1e-8)
    spend = fitted.expected_spend(scaled, interval=0.9).to_numpy() / factor
    reference = model.expected_spend(cdnow_calibration, interval=0.9).to_numpy()
    np.testing.assert_allclose(spend, reference, rtol=1e-4)


@pytest.mark.parametrize("factor", [1e-150, 1e150])
def test_values_beyond_the_float_range_of_gamma_are_refused(cdnow_calibration, factor) -> None:
    scaled = cdnow_calibration.assign(
        monetary_value_cal=cdnow_calibration["monetary_value_cal"] * factor
    )
    with pytest.raises(InvalidDataError, match=r"monetary_value_cal of repeat buyers.*units"):
        clvmodels.GammaGamma().fit(scaled)
