"""With the posterior collapsed onto the maximum-likelihood estimate (every draw equal
to it), every Bayesian prediction is the twin's point prediction with sd 0 and a
degenerate interval: the posterior machinery adds nothing but the summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels import bayes

# Each model's public predictions: name -> (args, kwargs) after the data argument when
# the prediction is per customer (first element True), or its only arguments.
PURCHASE_CALLS = {
    "expected_purchases": [(True, (39,), {}), (True, (0.5,), {})],
    "probability_alive": [(True, (), {}), (True, (), {"t": 10})],
    "probability_purchases": [(True, (39, 0), {}), (True, (39, [0, 1, 2, 5]), {})],
    "expected_purchases_new_customer": [(False, (39,), {}), (False, ([1, 10, 52],), {})],
    "probability_purchases_new_customer": [(False, (39, 1), {}), (False, (39, [0, 2, 4]), {})],
}
CALLS = {
    "BGNBD": PURCHASE_CALLS,
    "MBGNBD": PURCHASE_CALLS,
    "ParetoNBD": {
        **PURCHASE_CALLS,
        "discounted_expected_transactions": [(True, (0.0027,), {})],
    },
    "BGBB": {
        "expected_purchases": [(True, (5,), {})],
        "probability_alive": [(True, (), {}), (True, (), {"t": 2})],
        "probability_purchases": [(True, (5, 1), {}), (True, (5, [0, 1, 3]), {})],
        "expected_purchases_new_customer": [(False, (6,), {}), (False, ([1, 6, 10],), {})],
        "probability_purchases_new_customer": [(False, (6, 2), {}), (False, (6, [0, 3, 6]), {})],
    },
    "ShiftedBetaGeometric": {
        "survival": [(False, (3,), {}), (False, ([0, 1, 5, 12],), {})],
        "retention_rate": [(False, (2,), {}), (False, ([1, 2, 8],), {})],
        "probability_churn": [(False, (1,), {}), (False, ([1, 4],), {})],
        "expected_lifetime": [(False, (), {})],
        "discounted_expected_lifetime": [(False, (0.1,), {})],
        "discounted_expected_residual_lifetime": [
            (False, (0.1,), {}), (False, (0.1,), {"n_renewals": 4}),
            (False, (0.1,), {"n_renewals": [0, 1, 4]}),
        ],
    },
    "GammaGamma": {"expected_spend": [(True, (), {})], "mean_spend": [(False, (), {})]},
}
STATISTICS = ["mean", "sd", "hdi_lower", "hdi_upper"]


def _collapsed(mle, chains: int = 2, draws: int = 60):
    """The Bayesian twin of ``mle`` whose every posterior draw is the estimate."""
    cls = getattr(bayes, type(mle).__name__)
    samples = {k: np.full((chains, draws), v) for k, v in mle.params_.items()}
    return cls.from_samples(samples, time_unit=getattr(mle, "time_unit_", None))


def _assert_collapsed(bayesian, point) -> None:
    """``bayesian`` (posterior summary) is ``point`` (the twin's prediction) exactly."""
    if isinstance(point, float):
        assert isinstance(bayesian, pd.Series)
        assert list(bayesian.index) == STATISTICS
        np.testing.assert_allclose(bayesian["mean"], point, rtol=1e-12, atol=1e-300)
        if np.isinf(point):  # documented: an unbounded quantity has sd NaN
            assert np.isnan(bayesian["sd"])
        else:
            assert bayesian["sd"] == 0
        assert bayesian["hdi_lower"] == bayesian["mean"] == bayesian["hdi_upper"]
        return
    assert isinstance(bayesian, pd.DataFrame)
    if isinstance(point, pd.DataFrame):  # several counts n: columns (n, statistic)
        assert list(bayesian.columns.get_level_values(0).unique()) == list(point.columns)
        for n in point.columns:
            _assert_collapsed(bayesian[n], point[n])
        return
    assert list(bayesian.columns) == STATISTICS
    assert bayesian.index.equals(point.index)
    np.testing.assert_allclose(bayesian["mean"], point.to_numpy(), rtol=1e-12, atol=1e-300)
    assert (bayesian["sd"] == 0).all()
    assert (bayesian["hdi_lower"] == bayesian["mean"]).all()
    assert (bayesian["hdi_upper"] == bayesian["mean"]).all()


def test_every_prediction_of_a_collapsed_posterior_is_the_point_prediction(
    model_name, mle_fit, model_data
):
    mle = mle_fit(model_name)
    data = model_data(model_name)
    bayesian = _collapsed(mle)
    calls = CALLS[model_name]
    # the table covers every prediction the model has
    available = {p for p in bayes.BayesianModel._PREDICTIONS if hasattr(bayesian, p)}
    assert set(calls) == available
    for method, cases in calls.items():
        for per_customer, args, kwargs in cases:
            leading = (data,) if per_customer else ()
            point = getattr(mle, method)(*leading, *args, **kwargs)
            result = getattr(bayesian, method)(*leading, *args, **kwargs)
            _assert_collapsed(result, point)


PURCHASE_MODELS = ["BGNBD", "MBGNBD", "ParetoNBD", "BGBB"]


@pytest.mark.parametrize("purchase_name", PURCHASE_MODELS)
def test_collapsed_predictive_clv_is_the_point_clv(purchase_name, mle_fit, model_data):
    purchase = mle_fit(purchase_name)
    data = model_data(purchase_name)
    if purchase_name == "BGBB":  # donations: one opportunity a year, no spend model
        spend, settings = None, {"time_unit": "Y", "horizon": "5Y"}
    else:
        spend, settings = mle_fit("GammaGamma"), {"horizon": "52W"}
    point = clvmodels.predictive_clv(purchase, spend, data, discount_rate=0.1, **settings)
    both = clvmodels.predictive_clv(
        _collapsed(purchase), None if spend is None else _collapsed(spend), data,
        discount_rate=0.1, **settings,
    )  # fmt: skip
    # the draws may use fewer quadrature nodes, exact to 1e-9 (relative)
    assert list(both.columns) == STATISTICS
    assert both.index.equals(point.index)
    np.testing.assert_allclose(both["mean"], point, rtol=1e-8)
    assert (both["sd"] == 0).all()
    assert (both["hdi_lower"] == both["mean"]).all() and (both["hdi_upper"] == both["mean"]).all()


def test_collapsed_finite_expected_lifetime():
    """The regular cohort has alpha < 1 (infinite mean lifetime); at alpha > 1 it is
    finite and the collapsed posterior gives it with sd 0."""
    from clvmodels.models import sbg

    model = bayes.ShiftedBetaGeometric.from_samples(
        {"alpha": np.full(50, 1.5), "beta": np.full(50, 2.0)}
    )
    result = model.expected_lifetime()
    assert result["mean"] == pytest.approx(float(sbg.expected_lifetime(1.5, 2.0)), rel=1e-14)
    assert result["mean"] == pytest.approx(5.0, rel=1e-14)
    assert result["sd"] == 0 and result["hdi_lower"] == result["hdi_upper"] == result["mean"]
