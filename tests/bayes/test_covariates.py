"""Static covariates in the Bayesian purchase models: the log posterior against PyMC's,
the posterior against the maximum-likelihood fit on a large sample, predictions through
the twin at each customer's covariates, priors on coefficients, save and load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvmodels
from clvmodels import bayes
from clvmodels.bayes._density import log_posterior
from clvmodels.exceptions import InvalidDataError
from clvmodels.models._base import point_estimate
from clvmodels.simulate import simulate_bgnbd, simulate_pnbd

SETTINGS = {"purchase_covariates": ["female", "channel"], "dropout_covariates": ["female"]}


def _data(n: int, seed: int = 5, simulate=simulate_pnbd, **truth) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    female = rng.integers(0, 2, n).astype(float)
    channel = rng.choice(["email", "search", "social"], n)
    z = pd.DataFrame({"female": female, "social": (channel == "social") * 1.0})
    params = truth or {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}
    T = np.round(rng.uniform(20, 52, n))
    frame = simulate(n, **params, T=T, random_state=seed, covariates=z,
                     purchase_coefficients={"female": 0.4, "social": -0.3},
                     dropout_coefficients={"female": -0.4})  # fmt: skip
    return frame.drop(columns=["social"]).assign(channel=channel)


@pytest.fixture(scope="module")
def data():
    return _data(3000)


@pytest.fixture(scope="module")
def mle(data):
    return clvmodels.ParetoNBD(**SETTINGS).fit(data)


@pytest.fixture(scope="module")
def laplace(data):
    return bayes.ParetoNBD(**SETTINGS).fit(data, method="map", draws=400)


@pytest.mark.parametrize("name", ["BGNBD", "MBGNBD", "ParetoNBD"])
def test_log_posterior_equals_pymcs(name, data) -> None:
    cls = getattr(bayes, name)
    model = cls(**SETTINGS, priors={"purchase.female": ("Normal", {"mu": 0.2, "sigma": 0.7})})
    twin = model._fitting_twin()
    twin.fit(data)
    model.covariates_, model.param_names = twin.covariates_, twin.param_names
    arrays, weights = twin._patterns
    density = log_posterior(model._twin(), arrays, weights, model.prior_specs())
    assert density is not None and density.names == list(twin.param_names)
    pymc_model = model._build(arrays, weights)
    reference = pymc_model.logp_dlogp_function(ravel_inputs=True)
    reference.set_extra_values({})
    center = density.working(twin.params_.to_numpy())
    rng = np.random.default_rng(1)
    for u in [center, *(center + rng.normal(0, 0.3, center.size) for _ in range(4))]:
        value, gradient = density(u)
        expected, expected_gradient = reference(u)
        assert value == pytest.approx(float(expected), rel=1e-8, abs=1e-6)
        scale = max(1.0, float(np.max(np.abs(expected_gradient))))
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-7, atol=1e-7 * scale)


@pytest.mark.filterwarnings("ignore::clvmodels.exceptions.SamplingWarning")
def test_posterior_mean_near_the_mle_on_a_large_sample() -> None:
    data = _data(20000, seed=11)
    mle = clvmodels.ParetoNBD(**SETTINGS).fit(data)
    model = bayes.ParetoNBD(**SETTINGS).fit(data, draws=300, tune=300, chains=2,
                                            random_seed=3)  # fmt: skip
    table = model.summary()
    assert list(table.index) == list(mle.params_.index)
    se = mle.summary()["std_error"]
    # with 20,000 customers the weak priors move the posterior mean by a small part
    # of a standard error; a tenth of one is sampling noise of 600 draws
    assert np.all(np.abs(table["estimate"] - mle.params_) < 0.5 * se)
    np.testing.assert_allclose(table["std_error"], se, rtol=0.3)


def test_predictions_use_each_customers_covariates(laplace, data) -> None:
    rows = data.iloc[:5]
    # by hand: the twin's prediction (each customer at their own covariates) at every
    # posterior draw the prediction uses, averaged
    twin = laplace._twin()
    expected = []
    for draw in laplace._prediction_samples():
        twin.params_ = pd.Series(draw, index=laplace.param_names)
        expected.append(twin.expected_purchases(rows, 10.0).to_numpy())
    mean = laplace.expected_purchases(rows, 10.0)
    assert isinstance(mean, pd.Series)
    np.testing.assert_allclose(mean, np.mean(expected, axis=0), rtol=1e-10)
    interval = laplace.expected_purchases(rows, 10.0, interval=0.9)
    assert list(interval.columns) == ["estimate", "lower", "upper", "sd"]
    draws = laplace.draws("expected_purchases", rows, 10.0)
    assert draws.shape == (1, 400, 5)
    clv = clvmodels.predictive_clv(laplace, None, rows, horizon=52, discount_rate=0.1,
                                   time_unit="W")  # fmt: skip
    assert np.all(np.isfinite(clv))
    profile = {"female": 1, "channel": "search"}
    new = laplace.expected_purchases_new_customer(10.0, covariates=profile)
    assert float(point_estimate(new)) > 0


def test_summary_names_and_coefficient_priors(laplace, data) -> None:
    table = laplace.summary()
    assert "purchase.channel[search]" in table.index and "dropout.female" in table.index
    assert "mle" in table.columns
    specs = laplace.prior_specs()
    assert specs["purchase.female"] == ("Normal", {"mu": 0.0, "sigma": 2.0})
    tight = bayes.ParetoNBD(**SETTINGS, priors={
        "purchase.female": ("Normal", {"mu": 0.0, "sigma": 0.01})}).fit(data, method="map",
                                                                        draws=100)  # fmt: skip
    assert abs(tight.params_["purchase.female"]) < 0.05 < abs(laplace.params_["purchase.female"])
    with pytest.raises(InvalidDataError, match="not a parameter"):
        bayes.ParetoNBD(**SETTINGS, priors={"purchase.income": ("Normal", {"mu": 0, "sigma": 1})}
                        ).fit(data, method="map", draws=50)  # fmt: skip
    with pytest.raises(InvalidDataError, match="no mass on one sign"):
        bayes.ParetoNBD(**SETTINGS, priors={"purchase.female": ("HalfNormal", {"sigma": 1.0})}
                        ).fit(data, method="map", draws=50)  # fmt: skip


def test_save_and_load_keep_the_covariates(laplace, data, tmp_path) -> None:
    path = laplace.save(tmp_path / "model.nc")
    loaded = bayes.load(path)
    assert list(loaded.param_names) == list(laplace.param_names)
    pd.testing.assert_series_equal(loaded.params_, laplace.params_)
    rows = data.iloc[:4]
    pd.testing.assert_series_equal(loaded.expected_purchases(rows, 5.0),
                                   laplace.expected_purchases(rows, 5.0))  # fmt: skip


def test_prior_predictive_simulates_with_covariates(data) -> None:
    check = bayes.BGNBD(**SETTINGS).prior_predictive(data, n_draws=5, max_customers=300)
    assert "purchase.female" in check.columns and "mean_frequency" in check.columns
    # the coefficients move the simulated customers: a prior far on one side of 0 and
    # then on the other buys less and then more than the same draws at 0
    frequencies = []
    for mu in (-3.0, 0.0, 3.0):
        priors = {name: ("Normal", {"mu": mu, "sigma": 0.01})
                  for name in ("purchase.female", "purchase.channel[search]",
                               "purchase.channel[social]")}  # fmt: skip
        table = bayes.BGNBD(**SETTINGS, priors=priors).prior_predictive(
            data, n_draws=30, max_customers=500, random_state=1)
        frequencies.append(table["mean_frequency"].median())
    assert frequencies[0] < frequencies[1] < frequencies[2]


@pytest.mark.filterwarnings("ignore::clvmodels.exceptions.SamplingWarning")
def test_pymc_sampler_treats_coefficients_as_real(data) -> None:
    # a negative coefficient: a log-scale start would be NaN
    negative = _data(1500, seed=7)
    model = bayes.ParetoNBD(purchase_covariates=["female"]).fit(
        negative.assign(female=1.0 - negative["female"]), sampler="pymc", draws=40, tune=40,
        chains=1, random_seed=2)  # fmt: skip
    assert model.params_["purchase.female"] < 0


def test_from_samples_refuses_covariates() -> None:
    with pytest.raises(InvalidDataError, match="fit it"):
        bayes.BGNBD.from_samples({"r": [0.2], "alpha": [4.0], "a": [0.8], "b": [2.4]},
                                 purchase_covariates=["female"])  # fmt: skip


@pytest.mark.filterwarnings("ignore::clvmodels.exceptions.SamplingWarning")
def test_bgnbd_with_covariates_samples(data) -> None:
    small = _data(1500, seed=2, simulate=simulate_bgnbd, r=0.24, alpha=4.41, a=0.79, b=2.43)
    model = bayes.BGNBD(shared_covariates=["female"]).fit(small, draws=200, tune=200,
                                                           chains=2, random_seed=1)  # fmt: skip
    assert list(model.params_.index) == ["r", "alpha", "a", "b", "shared.female"]
    assert model.diagnostics()["r_hat"].max() < 1.1
