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
    "probability_repurchase_new_customer": [(False, (10, 4), {}), (False, ([0, 10, 20], 4), {})],
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
def _collapsed(mle, chains: int = 2, draws: int = 60):
    """The Bayesian twin of ``mle`` whose every posterior draw is the estimate."""
    cls = getattr(bayes, type(mle).__name__)
    samples = {k: np.full((chains, draws), v) for k, v in mle.params_.items()}
    return cls.from_samples(samples, time_unit=getattr(mle, "time_unit_", None))


def _same_shape(bayesian, twin) -> None:
    """One contract: the Bayesian output has the twin's type and labels, plus ``sd``
    beside ``estimate, lower, upper``."""
    assert type(bayesian) is type(twin), (type(bayesian), type(twin))
    if isinstance(twin, pd.DataFrame):
        assert bayesian.index.equals(twin.index)
        if isinstance(twin.columns, pd.MultiIndex):  # several counts n
            for n in twin.columns.get_level_values(0).unique():
                _same_shape(bayesian[n], twin[n])
            return
        extra = ["sd"] if "estimate" in twin.columns else []
        assert list(bayesian.columns) == [*twin.columns, *extra]
    elif isinstance(twin, pd.Series):
        labels = list(twin.index)
        if labels == ["estimate", "lower", "upper"]:
            labels.append("sd")
            assert list(bayesian.index) == labels
        else:
            assert bayesian.index.equals(twin.index)


def _assert_collapsed(plain, summary, point) -> None:
    """A collapsed posterior's prediction is ``point`` exactly; its interval is that
    point, with sd 0 (NaN for an unbounded quantity, as documented)."""
    np.testing.assert_allclose(np.asarray(plain, dtype=float), np.asarray(point, dtype=float),
                               rtol=1e-12, atol=1e-300)  # fmt: skip
    if isinstance(summary, pd.DataFrame) and isinstance(summary.columns, pd.MultiIndex):
        for n in summary.columns.get_level_values(0).unique():
            _assert_collapsed(plain[n], summary[n], point[n])
        return
    estimate = np.asarray(summary["estimate"], dtype=float)
    np.testing.assert_allclose(estimate, np.asarray(point, dtype=float), rtol=1e-12,
                               atol=1e-300)  # fmt: skip
    assert np.array_equal(np.asarray(summary["lower"], dtype=float), estimate)
    assert np.array_equal(np.asarray(summary["upper"], dtype=float), estimate)
    sd = np.asarray(summary["sd"], dtype=float)
    assert np.all(np.where(np.isinf(estimate), np.isnan(sd), sd == 0))


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
            # the same user code on both families: the same shapes, the same numbers
            point = getattr(mle, method)(*leading, *args, **kwargs)
            plain = getattr(bayesian, method)(*leading, *args, **kwargs)
            _same_shape(plain, point)
            twin_interval = getattr(mle, method)(*leading, *args, interval=0.9, **kwargs)
            summary = getattr(bayesian, method)(*leading, *args, interval=0.9, **kwargs)
            _same_shape(summary, twin_interval)
            _assert_collapsed(plain, summary, point)


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
    collapsed = (_collapsed(purchase), None if spend is None else _collapsed(spend))
    plain = clvmodels.predictive_clv(*collapsed, data, discount_rate=0.1, **settings)
    both = clvmodels.predictive_clv(*collapsed, data, discount_rate=0.1, interval=0.9,
                                    **settings)  # fmt: skip
    _same_shape(plain, point)
    _same_shape(both, clvmodels.predictive_clv(purchase, spend, data, discount_rate=0.1,
                                               interval=0.9, n_draws=50, **settings))  # fmt: skip
    # the draws may use fewer quadrature nodes, exact to 1e-9 (relative)
    np.testing.assert_allclose(plain, point, rtol=1e-8)
    np.testing.assert_allclose(both["estimate"], point, rtol=1e-8)
    assert (both["sd"] == 0).all()
    assert (both["lower"] == both["estimate"]).all()
    assert (both["upper"] == both["estimate"]).all()


def test_collapsed_finite_expected_lifetime():
    """The regular cohort has alpha < 1 (infinite mean lifetime); at alpha > 1 it is
    finite and the collapsed posterior gives it with sd 0."""
    from clvmodels.models import sbg

    model = bayes.ShiftedBetaGeometric.from_samples(
        {"alpha": np.full(50, 1.5), "beta": np.full(50, 2.0)}
    )
    assert model.expected_lifetime() == pytest.approx(5.0, rel=1e-14)
    result = model.expected_lifetime(interval=0.9)
    assert result["estimate"] == pytest.approx(float(sbg.expected_lifetime(1.5, 2.0)), rel=1e-14)
    assert result["sd"] == 0 and result["lower"] == result["upper"] == result["estimate"]


def test_draws_have_one_shape_in_both_families(model_name, mle_fit, model_data):
    """``draws`` of every per-customer prediction: (chain, draw, customer) from both
    families. A collapsed posterior's draws are the point prediction; the
    maximum-likelihood draws are the point prediction at each parameter draw."""
    import copy

    from clvmodels.models._base import CUSTOMER_PREDICTIONS

    mle = mle_fit(model_name)
    data = model_data(model_name).iloc[:40]
    bayesian = _collapsed(mle)
    single = [
        (method, args, kwargs)
        for method, cases in CALLS[model_name].items() if method in CUSTOMER_PREDICTIONS
        for per_customer, args, kwargs in cases
        if per_customer and all(np.ndim(a) == 0 for a in args)
    ]  # fmt: skip
    offered = {p for p in CUSTOMER_PREDICTIONS if hasattr(mle, p)}
    assert {method for method, _, _ in single} == offered
    parameter_draws = mle.parameter_draws(5, random_state=3)
    for method, args, kwargs in single:
        point = getattr(mle, method)(data, *args, **kwargs)
        ml = mle.draws(method, data, *args, n_draws=5, random_state=3, **kwargs)
        posterior = bayesian.draws(method, data, *args, **kwargs)
        assert ml.dims == posterior.dims == ("chain", "draw", "customer")
        assert ml.shape == (1, 5, len(data)) and posterior.shape == (2, 60, len(data))
        assert list(ml["customer"].values) == list(posterior["customer"].values)
        assert list(ml["customer"].values) == list(data.index)
        np.testing.assert_allclose(posterior.values, np.broadcast_to(point, posterior.shape),
                                   rtol=1e-12, atol=1e-300)  # fmt: skip
        for k in (0, 4):
            at_draw = copy.deepcopy(mle)
            at_draw.params_ = pd.Series(parameter_draws[k], index=mle.params_.index)
            np.testing.assert_allclose(
                ml.values[0, k], getattr(at_draw, method)(data, *args, **kwargs),
                rtol=1e-10, atol=1e-300,
            )
