"""BG/NBD and MBG/NBD (their shared numerics; MBG/NBD's own published fit in
test_mbgnbd.py): published CDNOW fits, lifetimes as oracle at the same parameters,
internal consistency of the predictions, numerical stability and parameter recovery."""

from __future__ import annotations

import importlib.util
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln

import clvmodels
from clvmodels.models import _betageo, _purchase
from clvmodels.numerics.special import log_rising
from clvmodels.simulate import simulate_bgnbd, simulate_mbgnbd

MODELS = {"bgnbd": clvmodels.BGNBD, "mbgnbd": clvmodels.MBGNBD}
SHIFT = {"bgnbd": 0, "mbgnbd": 1}


@pytest.fixture(scope="module")
def fitted(cdnow_calibration: pd.DataFrame) -> dict[str, clvmodels.BGNBD]:
    return {name: cls().fit(cdnow_calibration) for name, cls in MODELS.items()}


def _relative(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert np.all(np.isfinite(ours))
    return float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-300)))


# ------------------------------------------------------------------ published values


def test_bgnbd_matches_fader_hardie_lee_2005(fitted) -> None:
    model = fitted["bgnbd"]
    published = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
    for name, value in published.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-3)
    assert model.log_likelihood_ == pytest.approx(-9582.43, abs=0.01)
    assert model.n_customers_ == 2357
    assert model.converged_


def test_bgnbd_expected_transactions_match_the_paper(fitted) -> None:
    # FHL (2005): a new customer is expected to make 1.87 repeat purchases in 78 weeks
    # (figure 2's cumulative curve) -- our value at the published parameters.
    model = fitted["bgnbd"]
    assert model.expected_purchases_new_customer(78) == pytest.approx(1.858, abs=0.01)


# -------------------------------------------------------------------- lifetimes oracle


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])
def test_predictions_equal_lifetimes(name: str, fitted, cdnow_calibration: pd.DataFrame) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    fitter_class = {"bgnbd": lifetimes.BetaGeoFitter, "mbgnbd": lifetimes.ModifiedBetaGeoFitter}
    model = fitted[name]
    oracle = fitter_class[name]()
    oracle.params_ = pd.Series(model.params_.to_numpy(), index=["r", "alpha", "a", "b"])
    x = cdnow_calibration["frequency_cal"]
    t_x = cdnow_calibration["recency_cal"]
    T = cdnow_calibration["T_cal"]
    for t in (1.0, 39.0, 520.0):
        ours = model.expected_purchases(cdnow_calibration, t)
        theirs = oracle.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)
        assert _relative(ours, theirs) < 1e-6
    ours = model.probability_alive(cdnow_calibration)
    assert _relative(ours, oracle.conditional_probability_alive(x, t_x, T)) < 1e-6
    times = np.array([1.0, 39.0, 78.0])
    ours = model.expected_purchases_new_customer(times)
    assert _relative(ours, oracle.expected_number_of_purchases_up_to_time(times)) < 1e-6
    for n in (0, 1, 2, 5):
        ours = model.probability_purchases_new_customer(39.0, n)
        assert _relative(ours, oracle.probability_of_n_purchases_up_to_time(39.0, n)) < 1e-6


def test_log_likelihood_equals_lifetimes(fitted, cdnow_calibration: pd.DataFrame) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    model = fitted["bgnbd"]
    arrays = {
        "x": cdnow_calibration["frequency_cal"].to_numpy(float),
        "t_x": cdnow_calibration["recency_cal"].to_numpy(float),
        "T": cdnow_calibration["T_cal"].to_numpy(float),
    }
    ll, _ = _betageo.log_likelihood(**arrays, **model.params_.to_dict(), shift=0)
    # lifetimes returns the mean negative log-likelihood over customers.
    theirs = lifetimes.BetaGeoFitter._negative_log_likelihood(
        np.log(model.params_.to_numpy()), arrays["x"], arrays["t_x"], arrays["T"],
        np.ones(len(ll)), 0.0,
    )  # fmt: skip
    assert -ll.mean() == pytest.approx(float(theirs), rel=1e-10)


# ------------------------------------------------------------- internal consistency


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])
def test_purchase_distribution_sums_to_one_and_to_the_mean(
    name: str, fitted, cdnow_calibration: pd.DataFrame
) -> None:
    model = fitted[name]
    frame = cdnow_calibration.iloc[::10]
    probabilities = model.probability_purchases(frame, 39.0, np.arange(0, 150))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)
    mean = probabilities.to_numpy() @ np.arange(0, 150)
    np.testing.assert_allclose(mean, model.expected_purchases(frame, 39.0), rtol=1e-8)
    new = model.probability_purchases_new_customer(39.0, np.arange(0, 400))
    assert new.sum() == pytest.approx(1.0, abs=1e-9)
    assert new.to_numpy() @ np.arange(400) == pytest.approx(
        model.expected_purchases_new_customer(39.0), rel=1e-8
    )


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])
def test_probability_alive_in_the_future(name: str, fitted, cdnow_calibration) -> None:
    model = fitted[name]
    now = model.probability_alive(cdnow_calibration)
    later = model.probability_alive(cdnow_calibration, t=52.0)
    much_later = model.probability_alive(cdnow_calibration, t=520.0)
    assert (later <= now + 1e-15).all() and (much_later <= later + 1e-15).all()
    assert (later < now).any()
    # Monte Carlo over the alive posterior: P(no dropout in t) = E[exp(-lambda p t)]
    r, alpha, a, b = model.params_
    row = cdnow_calibration.loc[4]
    x, T = row["frequency_cal"], row["T_cal"]
    rng = np.random.default_rng(5)
    lam = rng.gamma(r + x, 1 / (alpha + T), 400_000)
    p = rng.beta(a, b + x + SHIFT[name], 400_000)
    expected = now.loc[4] * np.exp(-lam * p * 52.0).mean()
    assert later.loc[4] == pytest.approx(expected, rel=5e-3)


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])
def test_new_customer_is_the_customer_observed_for_no_time(name: str, fitted) -> None:
    model = fitted[name]
    nobody = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [0.0]})
    assert float(model.expected_purchases(nobody, 39.0).iloc[0]) == pytest.approx(
        model.expected_purchases_new_customer(39.0), rel=1e-12
    )


@pytest.mark.parametrize("shift", [0, 1])
def test_gradient_is_exact(shift: int, numeric_derivative) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 50, 200).astype(float)
    T = rng.uniform(1, 100, 200)
    t_x = np.where(x > 0, rng.uniform(0, 1, 200) * T, 0.0)
    for params in ([0.24, 4.4, 0.79, 2.4], [3.0, 0.5, 5.0, 0.3], [0.01, 100.0, 0.05, 50.0]):
        params = np.array(params)
        _, grad = _betageo.log_likelihood(x, t_x, T, *params, shift=shift, gradient=True)
        grad = np.stack(np.broadcast_arrays(*grad), axis=-1)
        for j in range(4):
            numeric = numeric_derivative(
                lambda p: _betageo.log_likelihood(x, t_x, T, *p, shift=shift)[0], params, j
            )
            np.testing.assert_allclose(grad[:, j], numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("prefix_limit", [4096, 0])
@pytest.mark.parametrize("shift", [0, 1])
def test_weighted_sum_layout_equals_the_per_row_likelihood(shift: int, prefix_limit: int,
                                                           monkeypatch) -> None:  # fmt: skip
    # the fitted objective (and the Bayesian Op) use the per-distinct-value layout; it
    # must be the same number as weighting the per-row formula, gradient included, both
    # with prefix sums and with the closed forms used for long ranges of frequencies
    monkeypatch.setattr(_betageo, "_PREFIX_LIMIT", prefix_limit)
    rng = np.random.default_rng(11 + shift)
    n = 3000
    x = rng.integers(0, 40, n).astype(float)
    x[rng.random(n) < 0.5] = 0.0
    T = rng.integers(1, 60, n) / 7.0  # few distinct T, as summaries of daily data have
    t_x = np.where(x > 0, np.floor(rng.random(n) * T * 7) / 7.0, 0.0)
    w = rng.integers(1, 20, n).astype(float)
    patterns = _betageo.WeightedPatterns(x, t_x, T, w, shift=shift)
    for params in ([0.24, 4.4, 0.79, 2.4], [3.0, 0.5, 5.0, 0.3], [0.01, 100.0, 0.05, 50.0],
                   [50.0, 1e-3, 30.0, 1e-3]):  # fmt: skip
        ll, grad = _betageo.log_likelihood(x, t_x, T, *params, shift=shift, gradient=True)
        grad = np.stack(np.broadcast_arrays(*grad), axis=-1)
        total, gradient = _betageo.weighted_log_likelihood(patterns, *params)
        np.testing.assert_allclose(total, np.sum(w * ll), rtol=1e-12)
        np.testing.assert_allclose(gradient, (w[:, None] * grad).sum(axis=0), rtol=1e-9,
                                   atol=1e-9 * np.abs(grad).sum())  # fmt: skip


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])
def test_stable_for_extreme_customers_and_parameters(name: str) -> None:
    frame = pd.DataFrame(
        {
            "frequency": [0, 1, 10_000, 10_000, 500, 3],
            "recency": [0.0, 1e-9, 5_000.0, 5_000.0, 1e4, 2.0],
            "T": [1e-6, 1.0, 5_000.0, 1e4, 1e4, 2.0],
        }
    )
    model = MODELS[name]()
    for params in ([0.24, 4.4, 0.79, 2.4], [1e-3, 1e3, 1e-3, 1e3], [50.0, 1e-3, 30.0, 1e-3]):
        model.params_ = pd.Series(params, index=["r", "alpha", "a", "b"])
        model.covariance_ = pd.DataFrame(np.eye(4) * 1e-4, index=model.params_.index,
                                         columns=model.params_.index)  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ll, _ = model._loglik(np.array(params), model._read(frame)[0], True)
            assert np.all(np.isfinite(ll))
            for t in (1.0, 52.0, 1e4):
                assert np.all(np.isfinite(model.expected_purchases(frame, t)))
                assert np.all(np.isfinite(model.probability_alive(frame, t)))
                assert np.all(np.isfinite(model.probability_purchases(frame, t, [0, 1, 50])))


# --------------------------------------------------------------------- fitting


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])
def test_compressed_fit_equals_expanded_fit(name: str, cdnow_calibration: pd.DataFrame) -> None:
    expanded = MODELS[name]().fit(cdnow_calibration)
    compressed = MODELS[name]().fit(clvmodels.compress(cdnow_calibration))
    np.testing.assert_allclose(compressed.params_, expanded.params_, rtol=1e-6)
    assert compressed.log_likelihood_ == pytest.approx(expanded.log_likelihood_, rel=1e-10)
    assert compressed.n_customers_ == expanded.n_customers_ == 2357
    # identical rows are collapsed inside fit either way
    patterns = len(clvmodels.compress(cdnow_calibration))
    assert compressed.n_patterns_ == expanded.n_patterns_ == patterns


def test_fit_in_days_is_the_fit_in_weeks_rescaled(cdnow_sample, fitted) -> None:
    days = clvmodels.calibration_holdout(
        cdnow_sample, calibration_end="1997-09-30", holdout_end="1998-06-30", time_unit="D"
    )
    model = clvmodels.BGNBD().fit(days)
    weekly = fitted["bgnbd"].params_
    np.testing.assert_allclose(model.params_[["r", "a", "b"]], weekly[["r", "a", "b"]],
                               rtol=1e-5)  # fmt: skip
    assert model.params_["alpha"] == pytest.approx(7 * weekly["alpha"], rel=1e-5)
    assert model.time_unit_ == "D"


SIMULATORS = {
    "bgnbd": (simulate_bgnbd, {"r": 0.3, "alpha": 5.0, "a": 0.8, "b": 2.5}),
    "mbgnbd": (simulate_mbgnbd, {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6}),
}


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])
def test_parameter_recovery(name: str) -> None:
    simulate, truth = SIMULATORS[name]
    customers = simulate(100_000, **truth, T=52.0, random_state=11)
    # Whole days (in weeks) keep the number of distinct patterns small.
    customers["recency"] = np.round(customers["recency"] * 7) / 7
    summary = MODELS[name]().fit(clvmodels.compress(customers)).summary()
    for parameter, value in truth.items():
        row = summary.loc[parameter]
        assert row["lower"] < value < row["upper"], (parameter, row.to_dict())


def test_intervals_contain_the_estimate_and_are_reproducible(fitted, cdnow_calibration):
    model = fitted["bgnbd"]
    first = model.expected_purchases(cdnow_calibration, 39.0, interval=0.9, n_draws=300)
    again = model.expected_purchases(cdnow_calibration, 39.0, interval=0.9, n_draws=300)
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == ["estimate", "lower", "upper"]
    assert (first["lower"] <= first["estimate"]).all()
    assert (first["estimate"] <= first["upper"]).all()
    assert (first["upper"] > first["lower"]).all()
    wider = model.expected_purchases(cdnow_calibration, 39.0, interval=0.99, n_draws=300)
    assert (wider["upper"] - wider["lower"] >= first["upper"] - first["lower"] - 1e-12).all()
    new = model.expected_purchases_new_customer(39.0, interval=0.9)
    assert new["lower"] < new["estimate"] < new["upper"]


# ------------------------------------------------------- corners of the closed forms

HISTORIES = {  # x, t_x, T
    "x": np.array([0.0, 1.0, 2.0, 5.0, 30.0]),
    "t_x": np.array([0.0, 1.0, 30.0, 20.0, 37.0]),
    "T": np.full(5, 38.0),
}


@pytest.mark.parametrize("shift", [0, 1])
def test_expected_purchases_are_continuous_at_a_one(shift: int) -> None:
    # c / (a - 1) * (1 - tail) is 0 / 0 at a = 1: it used to give 0 at a = 1 exactly
    # and noise of either sign within ~1e-10 of it. The expectation is smooth in a.
    def expected(a, t):
        return _betageo.expected_purchases(t, **HISTORIES, r=0.24, alpha=4.4, a=a, b=2.4,
                                           shift=shift)  # fmt: skip

    h = 1e-3
    for t in (1.0, 39.0):
        below, above = expected(1 - h, t), expected(1 + h, t)
        for a in (1 - 1e-11, 1.0, 1 + 1e-12, 1 - 1e-7, 1 + 1e-7, 1 + 5e-4, 1 - 9e-4):
            line = below + (a - (1 - h)) / (2 * h) * (above - below)
            np.testing.assert_allclose(expected(a, t), line, rtol=1e-5)
    # parameters drawn for an interval (shape (draws, 1)) against customers (n,)
    a = np.array([[1.0], [1 + 1e-9], [0.8]])
    both = expected(a, 39.0)
    assert both.shape == (3, 5)
    for row in range(3):
        np.testing.assert_allclose(both[row], expected(float(a[row, 0]), 39.0), rtol=1e-12)


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])
def test_expected_purchases_next_to_a_one_equal_lifetimes(
    name: str, cdnow_calibration: pd.DataFrame
) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    fitter_class = {"bgnbd": lifetimes.BetaGeoFitter, "mbgnbd": lifetimes.ModifiedBetaGeoFitter}
    params = {"r": 0.24, "alpha": 4.4, "a": 1.001, "b": 2.4}
    oracle = fitter_class[name]()
    oracle.params_ = pd.Series(params)
    frame = cdnow_calibration.iloc[::7]
    theirs = oracle.conditional_expected_number_of_purchases_up_to_time(
        39.0, frame["frequency_cal"], frame["recency_cal"], frame["T_cal"]
    )
    model = MODELS[name]()
    model.params_ = pd.Series(params)
    assert _relative(model.expected_purchases(frame, 39.0), theirs) < 1e-8
    # and a fit with a = 1 exactly (as a fit on all-zero frequencies returns) is next to
    # it: P(alive) moves by about 0.1% with a (its odds are proportional to a)
    model.params_ = pd.Series({**params, "a": 1.0})
    at_one = model.expected_purchases(frame, 39.0)
    assert np.all(at_one > 0)
    assert _relative(at_one, theirs) < 3e-3


def test_expected_purchases_where_a_plus_b_is_one() -> None:
    # a new BG/NBD customer with a + b = 1 has c = a + b - 1 = 0 in the closed form,
    # a removable 0 * inf (it gave NaN); the expectation is smooth in b there
    def expected(b):
        return float(_betageo.expected_purchases(39.0, 0.0, 0.0, 0.0, 0.24, 4.4, 0.3, b,
                                                 shift=0))  # fmt: skip

    value = expected(0.7)
    assert np.isfinite(value)
    assert value == pytest.approx((expected(0.7 - 1e-6) + expected(0.7 + 1e-6)) / 2, rel=1e-8)


# Parameters of one-customer fits and other corners where scipy's hyp2f1 returns NaN or
# loses its digits: (r, alpha, a, b)
EXTREME = [
    (4e8, 1e9, 1e-3, 1e3),
    (4.1e7, 3.2e8, 9.6e-4, 1.8e6),
    (8.9e5, 5.2e6, 3.1e9, 3.3e-10),
    (1e-3, 1e-3, 1e-3, 1e3),
    (1e-3, 1e-3, 0.8, 2.4),
    (0.24, 4.4, 3e9, 2.4),
]


def _log_nb(n, R, s):
    """log P(N = n) for the negative binomial of the Poisson-gamma mixture (mean R s)."""
    return log_rising(R, n) - gammaln(n + 1) - R * np.log1p(s) + n * (np.log(s) - np.log1p(s))


@pytest.mark.parametrize("params", EXTREME)
@pytest.mark.parametrize("shift", [0, 1])
def test_predictions_at_extreme_parameters(params, shift: int) -> None:
    r, alpha, a, b = params
    x, t_x, T = HISTORIES["x"][:4], HISTORIES["t_x"][:4], HISTORIES["T"][:4]
    n = np.arange(25_000.0)[:, None]
    for t in (39.0, 1e4):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            expected = _betageo.expected_purchases(t, x, t_x, T, r, alpha, a, b, shift=shift)
            alive = _betageo.probability_alive(x, t_x, T, r, alpha, a, b, shift=shift, t=t)
            now = _betageo.probability_alive(x, t_x, T, r, alpha, a, b, shift=shift)
            distribution = _betageo.probability_purchases(t, n, x, t_x, T, r, alpha, a, b,
                                                          shift=shift)  # fmt: skip
        assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
        assert np.all((distribution >= 0) & (distribution <= 1))
        np.testing.assert_allclose(distribution.sum(axis=0), 1.0, atol=1e-9)
        # the mean of the distribution (no 2F1 involved) is the expectation
        np.testing.assert_allclose((distribution * n).sum(axis=0), expected, rtol=1e-8)
        # alive at T + t: alive at T and survived each of the N purchases, N ~ NB
        R, b_post = r + x, b + x + shift
        log_survive = log_rising(b_post, n) - log_rising(a + b_post, n)  # E[(1 - p)^n]
        survive = np.exp(_log_nb(n, R, t / (alpha + T)) + log_survive).sum(axis=0)
        np.testing.assert_allclose(alive, now * survive, rtol=1e-9, atol=1e-15)


def test_probability_purchases_stay_probabilities_for_huge_r() -> None:
    # r = 2e10: log Gamma(r + x + n) - log Gamma(r + x) lost ten digits and pushed
    # P(X = 1) above 1. With b tiny, p ~ 1: one purchase, then dropout.
    r, alpha, a, b = 2e10, 6e-5, 4.8e-5, 5e-12
    probability = _betageo.probability_purchases(1178.0, np.arange(4.0), 0.0, 0.0, 38.0,
                                                 r, alpha, a, b, shift=0)  # fmt: skip
    assert np.all((probability >= 0) & (probability <= 1))
    assert probability[1] == pytest.approx(a / (a + b), rel=1e-12)


def test_docstrings_cite_what_exists() -> None:
    assert "Computing P(alive) using the BG/NBD model" in _betageo.__doc__
    assert "eq. (2)" in _betageo.__doc__
    # modules named in the prediction API's docstring exist
    named = re.findall(r"``(_\w+)``", _purchase.__doc__)
    for module in named:
        assert importlib.util.find_spec(f"clvmodels.models.{module}") is not None, module
    assert "_numerics" not in _purchase.__doc__


@pytest.mark.parametrize("shift", [0, 1])
def test_weighted_likelihood_has_no_cancellation_for_huge_parameters(shift: int) -> None:
    """Where (a, b) or (r, alpha) are huge, the likelihood tends to its limits (a fixed
    drop-out probability p = a / (a + b); Poisson purchases at rate r / alpha). Taken
    as differences of betaln / gammaln values it was off by thousands of log-units
    there, a spurious mode that NUTS found (simulation-based calibration, seed 1006)."""
    from scipy.special import betaln, gammaln

    rng = np.random.default_rng(5)
    n = 300
    x = rng.integers(0, 30, n).astype(float)
    T = rng.integers(10, 40, n).astype(float)
    t_x = np.where(x > 0, np.round(rng.random(n) * T), 0.0)
    w = rng.integers(1, 5, n).astype(float)
    y = x + shift
    dead_possible = (x > 0) | (shift > 0)
    patterns = _betageo.WeightedPatterns(x, t_x, T, w, shift=shift)

    # a fixed drop-out probability p: B(a, b+y)/B(a, b) -> (1-p)^y
    r, alpha, p = 0.24, 4.4, 1e-8
    a, b = 1e16, 1e16 * (1 - p) / p
    nbd = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = y * np.log1p(-p) - (r + x) * np.log(alpha + T)
    dead = np.where(dead_possible, np.log(p) + (y - 1) * np.log1p(-p), -np.inf)
    dead = dead - (r + x) * np.log(alpha + t_x)
    expected = np.sum(w * (nbd + np.logaddexp(alive, dead)))
    total, gradient = _betageo.weighted_log_likelihood(patterns, r, alpha, a, b)
    np.testing.assert_allclose(total, expected, rtol=1e-10)
    assert np.all(np.isfinite(gradient))

    # Poisson purchases at rate lam: the NBD part -> x log(lam) - lam T
    lam, a, b = 0.1, 0.79, 2.43
    r, alpha = 1e15, 1e16
    log_b = betaln(a, b)
    alive = betaln(a, b + y) - log_b - lam * T
    dead = np.where(dead_possible, betaln(a + 1, np.maximum(b + y - 1, 1e-300)) - log_b, -np.inf)
    dead = dead - lam * t_x
    expected = np.sum(w * (x * np.log(lam) + np.logaddexp(alive, dead)))
    total, gradient = _betageo.weighted_log_likelihood(patterns, r, alpha, a, b)
    np.testing.assert_allclose(total, expected, rtol=1e-9)
    assert np.all(np.isfinite(gradient))

    # the gradient there against central differences in the log parameters
    for params in ([0.24, 4.4, 1e16, 1e24], [1e15, 1e16, 0.79, 2.43], [2.0, 1e200, 1e180, 1e190]):
        _, gradient = _betageo.weighted_log_likelihood(patterns, *params)
        for k in range(4):
            h = 1e-5
            up, down = np.array(params), np.array(params)
            up[k] *= np.exp(h)
            down[k] *= np.exp(-h)
            numeric = (_betageo.weighted_log_likelihood(patterns, *up)[0]
                       - _betageo.weighted_log_likelihood(patterns, *down)[0]) / (2 * h)
            assert gradient[k] * params[k] == pytest.approx(numeric, rel=1e-4, abs=1e-3), k


def test_weighted_likelihood_cost_does_not_grow_with_the_frequency() -> None:
    """One customer with ten million repeat purchases: the closed forms at the distinct
    frequencies, not prefix sums over every count up to the largest (0.16 s and 240 MB
    of arrays at 1e6; out of memory further up)."""
    x = np.array([0.0, 3.0, 1e7, 4e13])
    t_x = np.array([0.0, 20.0, 30.0, 38.0])
    T = np.full(4, 39.0)
    w = np.array([100.0, 20.0, 1.0, 1.0])
    params = (0.24, 4.4, 0.79, 2.43)
    patterns = _betageo.WeightedPatterns(x, t_x, T, w, shift=0)
    total, gradient = _betageo.weighted_log_likelihood(patterns, *params)
    ll, grad = _betageo.log_likelihood(x, t_x, T, *params, shift=0, gradient=True)
    np.testing.assert_allclose(total, np.sum(w * ll), rtol=1e-12)
    grad = np.stack(np.broadcast_arrays(*grad), axis=-1)
    np.testing.assert_allclose(gradient, (w[:, None] * grad).sum(axis=0), rtol=1e-8)


@pytest.mark.parametrize("shift", [0, 1])
def test_objective_refuses_parameters_that_under_or_overflow(shift: int) -> None:
    """A line search may try log r = -800 (r = 0) or log a = 800 (a = inf): the
    objective is +inf there, quietly (RuntimeWarnings from clvmodels fail the tests)."""
    from clvmodels.simulate import simulate_bgnbd

    data = simulate_bgnbd(200, r=0.24, alpha=4.41, a=0.79, b=2.43, T=39.0, random_state=2)
    model = clvmodels.MBGNBD() if shift else clvmodels.BGNBD()
    model._keep_patterns = True
    model.fit(data)
    arrays, weights = model._patterns
    patterns = model._weighted_patterns(arrays, weights)
    total = weights.sum()
    finite = model._objective(np.log([0.24, 4.41, 0.79, 2.43]), patterns, total)
    assert np.isfinite(finite[0]) and np.all(np.isfinite(finite[1]))
    for log_params in ([-800.0, 1.5, 0.0, 0.0], [-1.0, 1.5, 800.0, 0.0],
                       [-1.0, -800.0, 0.0, 0.0], [-1.0, 1.5, -800.0, -800.0]):  # fmt: skip
        value, gradient = model._objective(np.array(log_params), patterns, total)
        assert value == np.inf and np.all(gradient == 0.0)


# ------------------------------------------------------------- boundary parameters
# A fit that runs to the boundary (customers who never drop out) ends at a and b of
# about 1e12 with a / (a + b) fixed. Reference values: mpmath, 40 digits, of
# P(alive at T) c / (a - 1) (1 - (1 - w)^R 2F1(R, b'; c; w)) and
# P(alive at T) (1 - w)^R 2F1(R, b'; a + b'; w) (see _betageo._nb_series), r = 0.5,
# alpha = 5, t = 39, for the customers (x, t_x, T) below.

BOUNDARY_CUSTOMERS = np.array([(0, 0, 30), (3, 20, 30), (10, 29, 30), (1, 2, 40)], float)
BOUNDARY_MPMATH = {  # (shift, a, b): (expected purchases, P(alive at T + t))
    (0, 1e6, 1e6): (
        [0.3972500863715894, 0.37099044075040255, 0.8408703134708851, 0.04823914777582199],
        [0.8013749844440898, 0.049979965768426345, 0.004059106965473178, 0.03368590397390149],
    ),
    (0, 1e12, 1e12): (
        [0.3972500695836897, 0.37098943225520575, 0.8408615325268785, 0.04823913586199172],
        [0.8013749652081827, 0.04997977026918071, 0.004058994008419339, 0.033685893449350836],
    ),
    (0, 1e12, 3e12): (
        [0.4624914868728793, 1.1081887591645287, 2.5462756696241535, 0.15846205146042014],
        [0.8843771282817946, 0.20320295637675137, 0.05217277316641156, 0.11582970607545309],
    ),
    (0, 1e12, 1e16): (
        [0.5570963048962806, 3.8977570095796303, 11.69092285128595, 1.2977439497585612],
        [0.9999442959399164, 0.9992856941935083, 0.998695466048164, 0.9982429506150754],
    ),
    (1, 1e6, 1e6): (
        [0.10896249023506707, 0.37099084728679144, 0.8408712025778673, 0.048239202069887584],
        [0.2198106748791588, 0.04998003527401722, 0.0040591169262338194, 0.033685943350655057],
    ),
    (1, 1e12, 1e12): (
        [0.10896247047299135, 0.3709894322556123, 0.8408615325277676, 0.048239135862046006],
        [0.2198106499409709, 0.04997977026925022, 0.0040589940084293, 0.033685893449390214],
    ),
    (1, 1e12, 3e12): (
        [0.24575550430276866, 1.1081887591648427, 2.546275669624935, 0.1584620514604734],
        [0.469934157327445, 0.2032029563768253, 0.05217277316644681, 0.11582970607549344],
    ),
    (1, 1e12, 1e16): (
        [0.5569489500548002, 3.8977570095796303, 11.69092285128595, 1.2977439497585612],
        [0.9996798055243054, 0.9992856941935083, 0.998695466048164, 0.9982429506150754],
    ),
}


@pytest.mark.parametrize("key", sorted(BOUNDARY_MPMATH))
def test_predictions_at_boundary_parameters_match_mpmath(key) -> None:
    shift, a, b = key
    x, t_x, T = BOUNDARY_CUSTOMERS.T
    expected, alive = BOUNDARY_MPMATH[key]
    ours = _betageo.expected_purchases(39.0, x, t_x, T, 0.5, 5.0, a, b, shift=shift)
    assert _relative(ours, expected) < 1e-13
    ours = _betageo.probability_alive(x, t_x, T, 0.5, 5.0, a, b, shift=shift, t=39.0)
    assert _relative(ours, alive) < 1e-13


@pytest.mark.parametrize("shift", [0, 1])
def test_boundary_predictions_take_the_cheap_path(shift, monkeypatch) -> None:
    """At a, b = 1e12 on 1,000 customers neither scipy's hyp2f1 nor the quadrature is
    called, and the series takes the same (few) terms as at a = b = 1,000: the cost
    does not depend on how far the fit ran (timings: benchmarks/bench_models.py)."""
    rng = np.random.default_rng(3)
    T = rng.uniform(1, 60, 1000)
    x = rng.poisson(3, 1000).astype(float)
    t_x = np.where(x > 0, rng.uniform(0, 1, 1000) * T, 0.0)

    def refuse(*args, **kwargs):
        raise AssertionError("the slow path was taken")

    def predict(a, b):
        for t in (0.5, 39.0, 104.0):
            values = _betageo.expected_purchases(t, x, t_x, T, 0.5, 5.0, a, b, shift=shift)
            assert np.all(np.isfinite(values) & (values > 0))
            alive = _betageo.probability_alive(x, t_x, T, 0.5, 5.0, a, b, shift=shift, t=t)
            assert np.all(np.isfinite(alive) & (alive > 0) & (alive <= 1))

    monkeypatch.setattr(_betageo, "beta_expectation", refuse)
    monkeypatch.setattr(_betageo, "hyp2f1", refuse)
    predict(1e6, 1e6)  # the series
    monkeypatch.setattr(_betageo, "_nb_series", refuse)
    for a, b in [(1e12, 1e12), (1e12, 3e12), (1e12, 1e16)]:
        predict(a, b)  # the limit model's closed forms with their corrections
    monkeypatch.undo()
    # the terms per customer: as many at a + b' = 2e3 as at 2e24
    w = 39.0 / (5.0 + T + 39.0)

    def terms(a, b, expected):
        return _betageo._nb_series(w, 0.5 + x, a, b + x + shift, expected=expected,
                                   count_terms=True)[1]  # fmt: skip

    for expected in (False, True):
        for small, huge in [((1e3, 1e3), (1e12, 1e12)), ((1e3, 3e3), (1e16, 3e16))]:
            count = terms(*huge, expected)
            # about R w / (1 - w) + 40 / (1 - w), summed in blocks of 16, 32, 64, ...
            assert np.median(count) <= 112 and count.max() <= 496
            assert count.sum() <= 1.1 * terms(*small, expected).sum()


@pytest.mark.parametrize("shift", [0, 1])
def test_predictions_are_continuous_across_the_series_threshold(shift) -> None:
    """scipy's hyp2f1 below a + b' = _LARGE, the series from there on: they agree."""
    x, t_x, T = BOUNDARY_CUSTOMERS.T
    b = 100.0
    a_low = _betageo._LARGE - b - shift - x - 1e-9  # a + b' just below the threshold
    a_high = a_low + 2e-9
    for t in (0.01, 5.0, 39.0, 300.0):
        below = _betageo.expected_purchases(t, x, t_x, T, 0.5, 5.0, a_low, b, shift=shift)
        above = _betageo.expected_purchases(t, x, t_x, T, 0.5, 5.0, a_high, b, shift=shift)
        assert _relative(below, above) < 1e-10
        below = _betageo.probability_alive(x, t_x, T, 0.5, 5.0, a_low, b, shift=shift, t=t)
        above = _betageo.probability_alive(x, t_x, T, 0.5, 5.0, a_high, b, shift=shift, t=t)
        assert _relative(below, above) < 1e-10


@pytest.mark.parametrize("expected", [False, True])
def test_moment_form_and_series_agree_at_its_threshold(expected) -> None:
    """_moment_form is used where eps = (R + 3)^2 sigma^2 m2 <= 1e-8, the series
    beyond: at the threshold both are exact, so they agree to rounding."""
    R = np.array([0.5, 3.5, 30.5, 300.5])
    s = np.array([0.3, 1.0, 2.0, 0.1])
    mu = 0.3
    sigma = s / (1 + mu * s)
    n = (R + 3) ** 2 * sigma**2 * mu * (1 - mu) / _betageo._MOMENT_EPS  # eps at the limit
    for scale in (1 - 1e-6, 1 + 1e-6):
        a, b = mu * n * scale + expected, (1 - mu) * n * scale
        moments = _betageo._moment_form(s, R, a, b, expected=expected)
        assert np.all(np.isnan(moments)) if scale < 1 else np.all(np.isfinite(moments))
        series = _betageo._nb_series(s / (1 + s), R, a, b, expected=expected)
        if scale > 1:
            assert _relative(moments, series) < 1e-13
        loose = _betageo._moment_form(s, R, a, b, expected=expected, eps_max=1.1e-8)
        assert _relative(loose, series) < 1e-13


@pytest.mark.parametrize("shift", [0, 1])
def test_boundary_predictions_tend_to_the_fixed_dropout_limit(shift) -> None:
    """As a, b -> infinity with a / (a + b) -> mu, the dropout probability is mu for
    everyone: E[X | alive] -> (1 - (1 + mu s)^-R) / mu and survival -> (1 + mu s)^-R
    (s = t / (alpha + T)); the error is of order 1 / (a + b)."""
    x, t_x, T = BOUNDARY_CUSTOMERS.T
    a, b = 1e15, 3e15
    mu = a / (a + b)
    s = 39.0 / (5.0 + T)
    R = 0.5 + x
    alive_now = _betageo.probability_alive(x, t_x, T, 0.5, 5.0, a, b, shift=shift)
    limit = alive_now * -np.expm1(-R * np.log1p(mu * s)) / mu
    ours = _betageo.expected_purchases(39.0, x, t_x, T, 0.5, 5.0, a, b, shift=shift)
    assert _relative(ours, limit) < 1e-12
    ours = _betageo.probability_alive(x, t_x, T, 0.5, 5.0, a, b, shift=shift, t=39.0)
    assert _relative(ours, alive_now * np.exp(-R * np.log1p(mu * s))) < 1e-12


def test_boundary_clv_is_cheap_and_finite(monkeypatch) -> None:
    """predictive_clv of a BG/NBD at the boundary, with an interval: no slow path."""
    model = clvmodels.BGNBD()
    model.params_ = pd.Series([0.5, 5.0, 1e12, 3e12], index=list(model.param_names))
    model.covariance_ = pd.DataFrame(
        np.diag([0.01, 0.1, 1e22, 9e22]), index=model.param_names, columns=model.param_names
    )
    model.time_unit_ = "W"
    frame = pd.DataFrame(BOUNDARY_CUSTOMERS, columns=["frequency", "recency", "T"])
    monkeypatch.setattr(_betageo, "beta_expectation", None)  # would fail if called
    value = clvmodels.predictive_clv(model, None, frame, horizon="52W", discount_rate=0.1,
                                     interval=0.9, n_draws=200)  # fmt: skip
    assert np.all(np.isfinite(value.to_numpy()))
    assert np.all((value["lower"] <= value["estimate"]) & (value["estimate"] <= value["upper"]))
