"""NUTS on CDNOW (2,357 customers, 39 calibration weeks) with the default priors and
settings (4 chains x (1000 tune + 1000 draws)): with this much data the weakly
informative priors hardly matter, so the posterior sits on the maximum-likelihood
estimate; the sampler converges; LOO, diagnostics and predictions are consistent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels.bayes._base import hdi_bounds
from clvmodels.bayes._compat import arviz_major
from clvmodels.exceptions import SamplingWarning

NUTS_MODELS = ["BGNBD", "ParetoNBD", "GammaGamma"]


@pytest.mark.parametrize("name", NUTS_MODELS)
def test_posterior_mean_within_half_a_posterior_sd_of_the_mle(name, nuts_cdnow, mle_fit):
    model, _ = nuts_cdnow(name)
    mle = mle_fit(name)
    assert model.method_ == "mcmc"
    assert model.posterior_samples().shape == (4000, len(model.param_names))
    summary = model.summary()
    np.testing.assert_allclose(summary["mle"], mle.params_, rtol=1e-6)
    distance = (summary["estimate"] - mle.params_).abs() / summary["std_error"]
    assert (distance <= 0.5).all(), distance.round(3).to_dict()
    # the MLE lies inside every 94 % interval
    assert ((summary["lower"] < mle.params_) & (mle.params_ < summary["upper"])).all()
    # params_ / covariance_ are the posterior mean and covariance
    samples = model.posterior_samples()
    np.testing.assert_allclose(model.params_, samples.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.covariance_, np.cov(samples, rowvar=False), rtol=1e-10)


@pytest.mark.parametrize("name", NUTS_MODELS)
def test_nuts_converges_without_divergences(name, nuts_cdnow):
    """Pareto/NBD is the fragile one: its posterior has a long tail along the s-beta
    ridge (s up to 8, beta up to 330), and a chain that wanders there raises r_hat of s
    and beta (1.014, tail ESS 86, one divergence, in an earlier run from a start
    differing in the 13th digit)."""
    model, caught = nuts_cdnow(name)
    diagnostics = model.diagnostics()
    assert (diagnostics["r_hat"] <= 1.01).all(), diagnostics.round(3).to_dict()
    assert model.divergences() == 0
    assert not [w for w in caught if issubclass(w.category, SamplingWarning)]


def test_diagnostics_table(nuts_cdnow):
    model, _ = nuts_cdnow("BGNBD")
    table = model.diagnostics()
    assert list(table.columns) == ["r_hat", "ess_bulk", "ess_tail"]
    assert list(table.index) == list(model.param_names)
    assert table.attrs["divergences"] == model.divergences() == 0
    assert (table["ess_bulk"] > 400).all() and (table["ess_tail"] > 400).all()
    stats = model.idata_.sample_stats
    assert int(stats["diverging"].sum()) == 0
    summary = model.summary()
    assert list(summary.columns) == [
        "estimate", "std_error", "lower", "upper", "r_hat", "ess_bulk", "ess_tail", "mle"
    ]  # fmt: skip
    assert summary.attrs["hdi_prob"] == 0.94
    narrow = model.summary(level=0.5)
    assert narrow.attrs["hdi_prob"] == 0.5
    assert ((narrow["upper"] - narrow["lower"])
            < (summary["upper"] - summary["lower"])).all()  # fmt: skip
    low, high = hdi_bounds(model.posterior_samples(), 0.94)
    np.testing.assert_array_equal(summary["lower"], low)
    np.testing.assert_array_equal(summary["upper"], high)


def test_loo_of_bgnbd(nuts_cdnow):
    model, _ = nuts_cdnow("BGNBD")
    loo = model.loo()
    assert list(loo.index) == ["elpd_loo", "se", "p_loo", "n_customers", "max_pareto_k"]
    assert loo["n_customers"] == 2357
    # about one effective parameter per parameter
    assert 3.0 <= loo["p_loo"] <= 6.0, loo.to_dict()
    # elpd_loo = lppd - p_loo, and the lppd is close to the log-likelihood at the mean
    assert loo["elpd_loo"] == pytest.approx(model.log_likelihood_ - loo["p_loo"], abs=1.0)
    assert loo["max_pareto_k"] < 0.7
    assert 0 < loo["se"] < 1000


def test_loo_weights_patterns_like_customers(map_bgnbd):
    """The weighted PSIS-LOO over patterns equals ArviZ's LOO over every customer."""
    import arviz as az

    loo = map_bgnbd.loo()
    table = map_bgnbd.idata_.log_likelihood["patterns"].values  # (chain, draw, pattern)
    weights = map_bgnbd.idata_.constant_data["pattern_weight"].values
    per_customer = np.repeat(table, weights.astype(int), axis=-1)
    assert per_customer.shape[-1] == 2357
    groups = {
        "posterior": {"r": map_bgnbd.idata_.posterior["r"].values},
        "log_likelihood": {"customers": per_customer},
    }
    if arviz_major() >= 1:
        reference = az.loo(az.from_dict(groups))
        # ArviZ 1.x's standard error has the n - 1 of Vehtari et al.'s sample variance,
        # loo() (as ArviZ 0.x) the n
        elpd, p_loo, se = reference.elpd, reference.p, reference.se * np.sqrt(2356 / 2357)
    else:
        reference = az.loo(az.from_dict(**groups))
        elpd, p_loo, se = reference["elpd_loo"], reference["p_loo"], reference["se"]
    assert loo["elpd_loo"] == pytest.approx(float(elpd), rel=1e-10)
    assert loo["p_loo"] == pytest.approx(float(p_loo), rel=1e-8)
    assert loo["se"] == pytest.approx(float(se), rel=1e-8)


def test_predictions_summarise_the_posterior(nuts_cdnow, mle_fit, cdnow_calibration):
    model, _ = nuts_cdnow("BGNBD")
    mle = mle_fit("BGNBD")
    frame = cdnow_calibration
    # the contract of the maximum-likelihood twin: a Series of point predictions (the
    # posterior means), or with interval= estimate, lower, upper (and sd)
    means = model.expected_purchases(frame, 39)
    assert isinstance(means, pd.Series) and means.index.equals(frame.index)
    result = model.expected_purchases(frame, 39, interval=0.94)
    assert list(result.columns) == ["estimate", "lower", "upper", "sd"]
    assert result.index.equals(frame.index)
    assert result.attrs["hdi_prob"] == 0.94
    np.testing.assert_array_equal(result["estimate"], means)
    assert (result["lower"] <= result["estimate"]).all()
    assert (result["estimate"] <= result["upper"]).all()
    assert (result["sd"] > 0).all()
    point = mle.expected_purchases(frame, 39)
    inside = (result["lower"] <= point) & (point <= result["upper"])
    assert inside.mean() > 0.99
    # the expected total over the holdout is the maximum-likelihood one (to 1 %)
    assert means.sum() == pytest.approx(point.sum(), rel=0.01)
    narrow = model.expected_purchases(frame, 39, interval=0.5)
    assert narrow.attrs["hdi_prob"] == 0.5
    assert (narrow["upper"] - narrow["lower"] <= result["upper"] - result["lower"]).all()
    np.testing.assert_array_equal(narrow["estimate"], result["estimate"])
    alive = model.probability_alive(frame, interval=0.94)
    assert ((alive["lower"] >= 0) & (alive["upper"] <= 1)).all()
    new = model.expected_purchases_new_customer(39, interval=0.94)
    assert list(new.index) == ["estimate", "lower", "upper", "sd"]
    assert new["lower"] < mle.expected_purchases_new_customer(39) < new["upper"]
    assert isinstance(model.expected_purchases_new_customer(39), float)


def test_predictions_use_prediction_draws_evenly_thinned(nuts_cdnow, cdnow_calibration):
    model, _ = nuts_cdnow("BGNBD")
    rows = cdnow_calibration.iloc[:25]
    draws = model.parameter_draws(model.prediction_draws)
    assert len(draws) == min(model.prediction_draws, 4000)
    values = model.twin_class._f_expected_purchases(
        t=39.0, x=rows["frequency_cal"].to_numpy(), t_x=rows["recency_cal"].to_numpy(),
        T=rows["T_cal"].to_numpy(), **model._param_dict(draws[:, None, :]),
    )  # fmt: skip
    result = model.expected_purchases(rows, 39, interval=0.94)
    np.testing.assert_allclose(result["estimate"], values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(result["sd"], values.std(axis=0, ddof=1), rtol=1e-9)
    low, high = hdi_bounds(values, 0.94)
    np.testing.assert_array_equal(result["lower"], low)
    np.testing.assert_array_equal(result["upper"], high)


def test_predictive_clv_posterior(nuts_cdnow, mle_fit, cdnow_calibration):
    purchase, _ = nuts_cdnow("BGNBD")
    spend, _ = nuts_cdnow("GammaGamma")
    rows = cdnow_calibration.iloc[:40]
    clv = clvmodels.predictive_clv(
        purchase, spend, rows, horizon="52W", discount_rate=0.1, n_draws=200, interval=0.94
    )
    assert list(clv.columns) == ["estimate", "lower", "upper", "sd"]
    assert clv.index.equals(rows.index)
    assert clv.attrs["hdi_prob"] == 0.94
    # the same from the thinned draws, one maximum-likelihood model per draw
    p_draws, s_draws = purchase.parameter_draws(200), spend.parameter_draws(200)
    values = []
    for p, s in zip(p_draws, s_draws, strict=True):
        point_p, point_s = clvmodels.BGNBD(), clvmodels.GammaGamma()
        point_p.params_ = pd.Series(p, index=purchase.param_names)
        point_p.time_unit_ = "W"
        point_s.params_ = pd.Series(s, index=spend.param_names)
        values.append(clvmodels.predictive_clv(
            point_p, point_s, rows, horizon="52W", discount_rate=0.1
        ).to_numpy())  # fmt: skip
    values = np.array(values)
    np.testing.assert_allclose(clv["estimate"], values.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(clv["sd"], values.std(axis=0, ddof=1), rtol=1e-6)
    low, high = hdi_bounds(values, 0.94)
    np.testing.assert_allclose(clv["lower"], low, rtol=1e-7)
    np.testing.assert_allclose(clv["upper"], high, rtol=1e-7)
    means = clvmodels.predictive_clv(purchase, spend, rows, horizon="52W", discount_rate=0.1,
                                     n_draws=200)  # fmt: skip
    pd.testing.assert_series_equal(means, clv["estimate"].rename("clv"))
    # close to the maximum-likelihood CLV
    point = clvmodels.predictive_clv(
        mle_fit("BGNBD"), mle_fit("GammaGamma"), rows, horizon="52W", discount_rate=0.1
    )
    assert ((clv["lower"] <= point) & (point <= clv["upper"])).all()
    # a maximum-likelihood partner contributes draws of its asymptotic distribution
    mixed = clvmodels.predictive_clv(
        purchase, mle_fit("GammaGamma"), rows, horizon="52W", discount_rate=0.1, n_draws=200,
        interval=0.94,
    )
    assert list(mixed.columns) == list(clv.columns)
    assert (mixed["sd"] > 0).all()
    with pytest.raises(clvmodels.exceptions.InvalidDataError, match="interval"):
        clvmodels.predictive_clv(purchase, spend, rows, horizon="52W", discount_rate=0.1,
                                 interval=1.5)  # fmt: skip


def test_pareto_discounted_expected_transactions(nuts_cdnow, mle_fit, cdnow_calibration):
    model, _ = nuts_cdnow("ParetoNBD")
    rows = cdnow_calibration.iloc[:50]
    dert = model.discounted_expected_transactions(rows, 0.0027, interval=0.94)
    point = mle_fit("ParetoNBD").discounted_expected_transactions(rows, 0.0027)
    assert list(dert.columns) == ["estimate", "lower", "upper", "sd"]
    assert ((dert["lower"] <= point) & (point <= dert["upper"])).all()
