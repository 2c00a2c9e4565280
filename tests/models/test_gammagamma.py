"""Gamma-Gamma: the published CDNOW fit, lifetimes as oracle, the shrinkage formula."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.exceptions import InvalidDataError
from clvmodels.models import gammagamma
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
    _, grad = gammagamma.log_likelihood(x, z, *params, gradient=True)
    for j in range(3):
        numeric = numeric_derivative(lambda p: gammagamma.log_likelihood(x, z, *p)[0],
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
