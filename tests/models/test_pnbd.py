"""Pareto/NBD: the published CDNOW fit, lifetimes as oracle at the same parameters,
independent closed forms and integrals, exact gradients, numerical stability and
parameter recovery."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

import clvmodels
from clvmodels.exceptions import InvalidDataError
from clvmodels.models import pnbd as pnbd
from clvmodels.models.pnbd import ParetoNBD
from clvmodels.simulate import simulate_pnbd

# CDNOW sample, 39 calibration weeks: the published Pareto/NBD estimates (as quoted in
# the issue; cf. Fader, Hardie & Lee 2005, "Counting your customers the easy way",
# Marketing Science 24(2), who compare BG/NBD with this fit).
PUBLISHED = {"r": 0.5533, "alpha": 10.578, "s": 0.6062, "beta": 11.669}
PUBLISHED_LL = -9594.98
NAMES = ["r", "alpha", "s", "beta"]


@pytest.fixture(scope="module")
def fitted(cdnow_calibration: pd.DataFrame) -> ParetoNBD:
    return ParetoNBD().fit(cdnow_calibration)


@pytest.fixture(scope="module")
def oracle(fitted):
    lifetimes = pytest.importorskip("lifetimes")
    fitter = lifetimes.ParetoNBDFitter()
    fitter.params_ = pd.Series(fitted.params_.to_numpy(), index=NAMES)
    return fitter


def _xtT(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(frame[c].to_numpy(float) for c in ("frequency_cal", "recency_cal", "T_cal"))


def _relative(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert np.all(np.isfinite(ours))
    return float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-300)))


# ------------------------------------------------------------------ published values


def test_matches_the_published_cdnow_fit(fitted) -> None:
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-3)
    assert fitted.log_likelihood_ == pytest.approx(PUBLISHED_LL, abs=0.01)
    assert fitted.n_customers_ == 2357
    assert fitted.converged_
    assert fitted.kind == "pnbd"


def test_fit_in_days_is_the_fit_in_weeks_rescaled(cdnow_sample, fitted) -> None:
    days = clvmodels.calibration_holdout(
        cdnow_sample, calibration_end="1997-09-30", holdout_end="1998-06-30", time_unit="D"
    )
    model = ParetoNBD().fit(days)
    weekly = fitted.params_
    np.testing.assert_allclose(model.params_[["r", "s"]], weekly[["r", "s"]], rtol=1e-5)
    np.testing.assert_allclose(model.params_[["alpha", "beta"]], 7 * weekly[["alpha", "beta"]],
                               rtol=1e-5)  # fmt: skip
    assert model.time_unit_ == "D"


# -------------------------------------------------------------------- lifetimes oracle


def test_predictions_equal_lifetimes(fitted, oracle, cdnow_calibration) -> None:
    frame = cdnow_calibration
    x, t_x, T = _xtT(frame)
    for t in (1.0, 39.0, 520.0):
        ours = fitted.expected_purchases(frame, t)
        theirs = oracle.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)
        assert _relative(ours, theirs) < 1e-6
    ours = fitted.probability_alive(frame)
    assert _relative(ours, oracle.conditional_probability_alive(x, t_x, T)) < 1e-6
    for n in (0, 1, 2, 5):
        ours = fitted.probability_purchases(frame, 39.0, n)
        theirs = oracle.conditional_probability_of_n_purchases_up_to_time(n, 39.0, x, t_x, T)
        assert _relative(ours, theirs) < 1e-6
    times = np.array([1.0, 39.0, 78.0, 520.0])
    ours = fitted.expected_purchases_new_customer(times)
    assert _relative(ours, oracle.expected_number_of_purchases_up_to_time(times)) < 1e-6
    # lifetimes 0.11.3's ParetoNBDFitter has no probability_of_n_purchases_up_to_time; its
    # conditional PMF (FH 2024 note 028) for a customer observed for no time is P(X(t) = n).
    for n in (0, 1, 2, 5, 10):
        ours = fitted.probability_purchases_new_customer(39.0, n)
        theirs = oracle.conditional_probability_of_n_purchases_up_to_time(n, 39.0, 0.0, 0.0, 0.0)
        assert _relative(ours, theirs) < 1e-6


def test_log_likelihood_equals_lifetimes(fitted, oracle, cdnow_calibration) -> None:
    x, t_x, T = _xtT(cdnow_calibration)
    params = fitted.params_.to_numpy()
    ours, _ = pnbd.log_likelihood(x, t_x, T, *params)
    theirs = oracle._conditional_log_likelihood(params, x, t_x, T)
    assert _relative(ours, theirs) < 1e-10
    assert ours.sum() == pytest.approx(fitted.log_likelihood_, rel=1e-12)


def test_lifetimes_fails_for_a_heavy_buyer_seen_at_the_end(fitted, oracle) -> None:
    # lifetimes writes the likelihood with the difference of two 2F1 terms (FH 2005) and
    # takes its log: at recency == T the difference is 0 and, for large frequencies, its
    # log-sum turns into NaN, which spreads to P(alive) and the predictions. The exact
    # answer is simple: purchasing at T proves the customer alive at T.
    r, alpha, s, beta = params = fitted.params_.to_numpy()
    x, t_x, T = np.array([1000.0]), np.array([39.0]), np.array([39.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(oracle.conditional_probability_alive(x, t_x, T)).all()
        assert np.isnan(oracle._conditional_log_likelihood(params, x, t_x, T)).all()
        assert np.isnan(
            oracle.conditional_expected_number_of_purchases_up_to_time(39.0, x, t_x, T)
        ).all()
    assert pnbd.probability_alive(x, t_x, T, *params) == pytest.approx(1.0, abs=1e-12)
    # L = Gamma(r+x) alpha^r beta^s / (Gamma(r) (alpha+T)^(r+x) (beta+T)^s) when t_x = T
    exact = (
        special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        - (r + x) * np.log(alpha + T) - s * np.log(beta + T)
    )  # fmt: skip
    assert pnbd.log_likelihood(x, t_x, T, *params)[0] == pytest.approx(exact, rel=1e-13)
    alive_mean = (
        (r + x)
        / (alpha + T)
        * (beta + T)
        / (s - 1)
        * (1 - ((beta + T) / (beta + T + 39.0)) ** (s - 1))
    )
    assert pnbd.expected_purchases(39.0, x, t_x, T, *params) == pytest.approx(alive_mean)


# ------------------------------------------------------ independent closed forms


def _fh2005_log_likelihood(x, t_x, T, r, alpha, s, beta):
    """FH (2005) section 3 as printed: alive term + s/(r+s+x) A0, A0 the difference of two
    2F1 terms, with the branch alpha >= beta or alpha < beta (needs t_x < T)."""
    m = r + s + x
    if alpha >= beta:
        big, second = alpha, s + 1
    else:
        big, second = beta, r + x

    def log_term(t):
        return np.log(special.hyp2f1(m, second, m + 1, abs(alpha - beta) / (big + t))) - m * np.log(
            big + t
        )

    upper, lower = log_term(t_x), log_term(T)
    log_a0 = upper + np.log(-np.expm1(lower - upper))
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    rest = np.log(s) - np.log(m) + log_a0
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return common + np.logaddexp(alive, rest)


@pytest.mark.parametrize(
    "params",
    [[0.5533, 10.578, 0.6062, 11.669], [0.5533, 11.669, 0.6062, 10.578], [2.0, 3.0, 0.3, 30.0],
     [0.2, 40.0, 1.5, 2.0], [1.0, 5.0, 1.0, 5.0]],
)  # fmt: skip
def test_likelihood_is_the_fader_hardie_closed_form(params) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 60, 300).astype(float)
    T = rng.uniform(5, 80, 300)
    t_x = np.where(x > 0, rng.uniform(0, 0.95, 300) * T, 0.0)
    ours, _ = pnbd.log_likelihood(x, t_x, T, *params)
    theirs = _fh2005_log_likelihood(x, t_x, T, *params)
    np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize(
    ("p", "q", "t", "alpha", "beta"),
    [(1.5, 1.6, 0.0, 10.0, 12.0), (3.5, 0.6, 20.0, 12.0, 10.0), (0.6, 1.6, 0.0, 50.0, 1.0),
     (40.0, 0.5, 3.0, 0.5, 20.0), (2.0, 2.0, 1.0, 7.0, 7.0), (1.01, 0.05, 0.0, 100.0, 0.1)],
)  # fmt: skip
def test_tail_integral_equals_numerical_integration(p, q, t, alpha, beta) -> None:
    def integrand(tau):
        return (alpha + tau) ** -p * (beta + tau) ** -q

    scale = min(alpha, beta) + t
    points = [t, t + scale, t + 10 * scale, t + 100 * scale]
    pieces = [integrate.quad(integrand, a, b, epsabs=0, epsrel=1e-13, limit=200)[0]
              for a, b in itertools.pairwise(points)]  # fmt: skip
    pieces.append(integrate.quad(integrand, points[-1], np.inf, epsabs=0, epsrel=1e-13)[0])
    log_j, grads = pnbd._log_tail(p, q, t, alpha, beta, gradient=True)
    assert float(log_j) == pytest.approx(np.log(sum(pieces)), rel=1e-10, abs=1e-10)
    # d/dalpha J = -p J(p + 1, q) and d/dbeta J = -q J(p, q + 1): differentiation under
    # the integral sign; checks the gradient in alpha, beta on both routes.
    upper_p, _ = pnbd._log_tail(p + 1, q, t, alpha, beta)
    upper_q, _ = pnbd._log_tail(p, q + 1, t, alpha, beta)
    assert float(grads[2]) == pytest.approx(-p * np.exp(upper_p - log_j), rel=1e-11)
    assert float(grads[3]) == pytest.approx(-q * np.exp(upper_q - log_j), rel=1e-11)


def test_series_and_quadrature_agree() -> None:
    """The two routes for 2F1(a, 1; m+1; z) (series for z <= 1/2, trapezoidal rule in log u
    beyond) are independent; where both converge they must agree, derivatives included.
    With a = m + 1 - b: log Q = (1 - b) log(1 - z) - log m + log S."""
    rng = np.random.default_rng(2)
    m = 10 ** rng.uniform(-2.5, 4, 400)
    b = np.minimum(10 ** rng.uniform(-3, 3, 400), m + 0.999)
    a = m + 1 - b
    z = rng.uniform(0.05, 0.9, 400)
    log_s, ds_a, ds_m, ds_z = pnbd._series(a, m, z, True)
    log_q, dq_m, dq_b, dq_z = pnbd._quadrature(m, b, z, 1 - z, True)
    np.testing.assert_allclose(log_q, (1 - b) * np.log1p(-z) - np.log(m) + log_s,
                               rtol=1e-12, atol=1e-12)  # fmt: skip
    expected = -1 / m + ds_a + ds_m
    assert np.all(np.abs(dq_m - expected) <= 1e-10 * np.abs(expected) + 1e-12 / m)
    np.testing.assert_allclose(dq_b, -np.log1p(-z) - ds_a, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dq_z, -(1 - b) / (1 - z) + ds_z, rtol=1e-10, atol=1e-12)
    # values alone come from scipy's hyp2f1 (z <= 1/2): the same numbers
    np.testing.assert_allclose(np.log(special.hyp2f1(a, 1.0, m + 1, z)), log_s, rtol=1e-13,
                               atol=1e-14)  # fmt: skip


# ------------------------------------------------------------------ the gradient


@pytest.mark.parametrize(
    "params",
    [[0.5533, 10.578, 0.6062, 11.669],  # CDNOW, alpha < beta
     [0.5533, 11.669, 0.6062, 10.578],  # alpha > beta
     [1.3, 6.0, 0.8, 6.0],  # alpha == beta exactly
     [0.4, 300.0, 2.0, 0.5],  # alpha >> beta: z near 1, the quadrature route
     [3.0, 0.02, 0.05, 40.0],  # beta >> alpha, tiny s
     [1e-3, 1e-3, 1e-3, 1e-3],
     [1e3, 1e3, 1e3, 1e3],
     [1e-3, 1e3, 1e3, 1e-3],
     [50.0, 2.0, 1e-3, 1e3]],
)  # fmt: skip
def test_gradient_is_exact(params, numeric_derivative) -> None:
    rng = np.random.default_rng(3)
    n = 120
    x = np.concatenate([rng.integers(0, 60, n - 6), [0, 1, 1e4, 1e4, 300, 2]]).astype(float)
    T = np.concatenate([rng.uniform(0.5, 100, n - 6), [1e4, 1e-2, 39.0, 1e4, 1e4, 3.0]])
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    t_x[-4:] = T[-4:]  # purchases at the end of observation
    t_x[-1] = T[-1] * (1 - 1e-9)
    params = np.array(params)
    ll, grad = pnbd.log_likelihood(x, t_x, T, *params, gradient=True)
    assert grad.shape == (n, 4)
    for j in range(4):
        numeric = numeric_derivative(lambda p: pnbd.log_likelihood(x, t_x, T, *p)[0], params, j)
        # the stencil's rounding error is about 1e-16 |ll| / (1e-3 param)
        tolerance = 2e-7 * np.abs(numeric) + 1e-10 * (1 + np.abs(ll)) / params[j]
        worst = np.argmax(np.abs(grad[:, j] - numeric) - tolerance)
        assert np.all(np.abs(grad[:, j] - numeric) <= tolerance), (
            j,
            x[worst],
            t_x[worst],
            T[worst],
            grad[worst, j],
            numeric[worst],
        )


def test_gradient_broadcasts_over_parameter_draws() -> None:
    x, t_x, T = np.array([0.0, 2, 7]), np.array([0.0, 5, 30]), np.array([39.0, 39, 30])
    draws = np.array([[0.5, 10.0, 0.6, 11.0], [0.7, 9.0, 0.4, 30.0]])
    ll, grad = pnbd.log_likelihood(x, t_x, T, *(draws[:, None, j] for j in range(4)),
                                   gradient=True)  # fmt: skip
    assert ll.shape == (2, 3) and grad.shape == (2, 3, 4)
    for d in range(2):
        single, g = pnbd.log_likelihood(x, t_x, T, *draws[d], gradient=True)
        np.testing.assert_allclose(ll[d], single, rtol=1e-15)
        np.testing.assert_allclose(grad[d], g, rtol=1e-15)


def test_grouped_evaluation_equals_row_by_row(cdnow_calibration) -> None:
    # Fitting evaluates each hypergeometric term once per distinct (x, t_x) / (x, T)
    # pair (ParetoNBD._prepare); predictions evaluate every row.
    model = ParetoNBD()
    arrays, _ = model._read(cdnow_calibration)
    prepared = model._prepare(arrays)
    params = np.array([0.55, 10.6, 0.61, 11.7])
    grouped = model._loglik(params, prepared, True)
    plain = pnbd.log_likelihood(*_xtT(cdnow_calibration), *params, gradient=True)
    np.testing.assert_array_equal(grouped[0], plain[0])
    np.testing.assert_array_equal(grouped[1], plain[1])


def test_non_finite_parameters_give_nan_not_a_hang() -> None:
    x, t_x, T = np.array([0.0, 3, 10]), np.array([0.0, 2, 5]), np.full(3, 39.0)
    for params in ([0.5, np.inf, 0.6, 10.0], [np.nan, 10.0, 0.6, 10.0], [0.5, 10, 0.6, np.inf]):
        with np.errstate(all="ignore"):
            ll, grad = pnbd.log_likelihood(x, t_x, T, *params, gradient=True)
        assert not np.isfinite(ll).any() and not np.isfinite(grad).all()


# ------------------------------------------------------------------ stability


def test_stable_for_extreme_customers_and_parameters() -> None:
    frame = pd.DataFrame(
        {
            "frequency": [0, 0, 1, 10_000, 10_000, 10_000, 500, 3, 1],
            "recency": [0.0, 0.0, 1e4, 1e4, 5.0, 39.0, 1e4, 2.0, 1e-9],
            "T": [1e-3, 1e4, 1e4, 1e4, 39.0, 39.0, 1e4, 2.0, 1.0],
        }
    )
    x, t_x, T = (frame[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    grid = [1e-3, 1.0, 1e3]
    param_sets = [[r, a, s, b] for r in grid for a in grid for s in grid for b in grid]
    param_sets += [[0.5, 10.0, 0.6, 10.0], [1e-3, 1e3, 1e-3, 1e3 * (1 + 1e-15)]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for params in param_sets:
            ll, grad = pnbd.log_likelihood(x, t_x, T, *params, gradient=True)
            assert np.all(np.isfinite(ll)) and np.all(np.isfinite(grad)), params
            alive = pnbd.probability_alive(x, t_x, T, *params)
            later = pnbd.probability_alive(x, t_x, T, *params, t=1e3)
            assert np.all((alive >= 0) & (alive <= 1)) and np.all(later <= alive), params
            assert np.all(alive[t_x == T] == 1.0)
            for t in (1.0, 1e4):
                expected = pnbd.expected_purchases(t, x, t_x, T, *params)
                assert np.all(np.isfinite(expected) & (expected >= 0)), params
            for n in (0.0, 1.0, 20.0):
                prob = pnbd.probability_purchases(39.0, n, x, t_x, T, *params)
                assert np.all((prob >= 0) & (prob <= 1 + 1e-12)), (params, n)
            dert = pnbd.discounted_expected_transactions(x, t_x, T, *params, 0.0027)
            assert np.all(np.isfinite(dert) & (dert >= 0)), params
        model = ParetoNBD()
        model.params_ = pd.Series([1e-3, 1e3, 1e3, 1e-3], index=NAMES)
        assert np.all(np.isfinite(model.expected_purchases(frame, 52.0)))
        assert np.all(np.isfinite(model.probability_purchases(frame, 52.0, [0, 1, 50])))


def test_log_likelihood_is_continuous_across_alpha_equals_beta() -> None:
    x, t_x, T = np.array([0.0, 1, 7, 1e4]), np.array([0.0, 3, 30, 20]), np.full(4, 39.0)
    r, s, beta = 0.55, 0.61, 11.0
    steps = np.array([-1e-6, -1e-9, -1e-13, 0.0, 1e-13, 1e-9, 1e-6]) * beta
    ll = np.array([pnbd.log_likelihood(x, t_x, T, r, beta + h, s, beta, gradient=True)[0]
                   for h in steps])  # fmt: skip
    grads = np.array([pnbd.log_likelihood(x, t_x, T, r, beta + h, s, beta, gradient=True)[1]
                      for h in steps])  # fmt: skip
    slope = grads[3][:, 1]
    for k, h in enumerate(steps):
        # first-order Taylor expansion around alpha = beta, on both branches
        np.testing.assert_allclose(ll[k], ll[3] + slope * h, rtol=1e-13, atol=h**2 + 1e-13)
        np.testing.assert_allclose(grads[k], grads[3], rtol=1e-5, atol=1e-9)


def test_expected_purchases_at_s_equal_one() -> None:
    x, t_x, T = np.array([0.0, 4.0]), np.array([0.0, 20.0]), np.array([39.0, 39.0])
    at_one = pnbd.expected_purchases(52.0, x, t_x, T, 0.5, 10.0, 1.0, 12.0)
    near = [pnbd.expected_purchases(52.0, x, t_x, T, 0.5, 10.0, 1.0 + h, 12.0)
            for h in (-1e-7, 1e-7)]  # fmt: skip
    np.testing.assert_allclose(at_one, (near[0] + near[1]) / 2, rtol=1e-12)
    alive = pnbd.probability_alive(x, t_x, T, 0.5, 10.0, 1.0, 12.0)
    limit = alive * (0.5 + x) / (10.0 + T) * (12.0 + T) * np.log1p(52.0 / (12.0 + T))
    np.testing.assert_allclose(at_one, limit, rtol=1e-14)


# ------------------------------------------------------------- internal consistency


def test_purchase_distribution_sums_to_one_and_to_the_mean(fitted, cdnow_calibration) -> None:
    frame = cdnow_calibration.iloc[::12]
    counts = np.arange(0, 160)
    probabilities = fitted.probability_purchases(frame, 39.0, counts)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-10)
    mean = probabilities.to_numpy() @ counts
    np.testing.assert_allclose(mean, fitted.expected_purchases(frame, 39.0), rtol=1e-9)
    new = fitted.probability_purchases_new_customer(52.0, np.arange(0, 300))
    assert new.sum() == pytest.approx(1.0, abs=1e-10)
    assert new.to_numpy() @ np.arange(300) == pytest.approx(
        fitted.expected_purchases_new_customer(52.0), rel=1e-9
    )


def test_new_customer_pmf_matches_simulation(fitted) -> None:
    params = fitted.params_.to_dict()
    customers = simulate_pnbd(400_000, **params, T=39.0, random_state=4)
    observed = np.bincount(customers["frequency"].to_numpy(), minlength=6)[:6] / 400_000
    expected = fitted.probability_purchases_new_customer(39.0, np.arange(6)).to_numpy()
    se = np.sqrt(expected * (1 - expected) / 400_000)
    assert np.all(np.abs(observed - expected) < 4.5 * se)


def test_new_customer_is_the_customer_observed_for_no_time(fitted) -> None:
    nobody = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [0.0]})
    assert float(fitted.expected_purchases(nobody, 39.0).iloc[0]) == pytest.approx(
        fitted.expected_purchases_new_customer(39.0), rel=1e-12
    )
    r, alpha, s, beta = fitted.params_
    # FH (2005) section 4: E[X(t)] = r beta / (alpha (s - 1)) [1 - (beta / (beta + t))^(s-1)]
    mean = r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + 39.0)) ** (s - 1))
    assert fitted.expected_purchases_new_customer(39.0) == pytest.approx(mean, rel=1e-13)


def test_probability_alive_decreases_in_the_future(fitted, cdnow_calibration) -> None:
    horizons = [0.0, 1.0, 13.0, 52.0, 520.0]
    alive = pd.concat([fitted.probability_alive(cdnow_calibration, t) for t in horizons],
                      axis=1)  # fmt: skip
    assert (alive.diff(axis=1).iloc[:, 1:] < 0).all().all()
    _, _, s, beta = fitted.params_
    T = cdnow_calibration["T_cal"]
    np.testing.assert_allclose(alive.iloc[:, 3], alive.iloc[:, 0] * ((beta + T) / (beta + T + 52))
                               ** s, rtol=1e-13)  # fmt: skip


def test_dert_is_the_discounted_integral_of_expected_purchases(fitted, cdnow_calibration) -> None:
    frame = cdnow_calibration.iloc[[0, 1, 5, 20, 100, 1000]]
    delta = np.log(1.15) / 52
    dert = fitted.discounted_expected_transactions(frame, delta)
    x, t_x, T = _xtT(frame)
    params = fitted.params_.to_numpy()
    for i in range(len(frame)):
        # int_0^inf e^(-delta t) dE(t) = delta int_0^inf e^(-delta t) E(t) dt (by parts)
        def discounted(t, i=i):
            return np.exp(-delta * t) * pnbd.expected_purchases(t, x[i], t_x[i], T[i], *params)

        value = sum(
            integrate.quad(discounted, a, b, epsabs=0, epsrel=1e-12, limit=200)[0]
            for a, b in ((0, 52), (52, 1000), (1000, 20_000), (20_000, np.inf))
        )
        assert dert.iloc[i] == pytest.approx(delta * value, rel=1e-9)
    # FHL (2005) eq. (2) as printed, with scipy's Tricomi U (reliable at these values)
    r, alpha, s, beta = params
    alive = fitted.probability_alive(frame).to_numpy()
    printed = (alive * (r + x) / (alpha + T) * (beta + T) ** s * delta ** (s - 1)
               * special.hyperu(s, s, delta * (beta + T)))  # fmt: skip
    np.testing.assert_allclose(dert, printed, rtol=1e-9)


def test_dert_method(fitted, cdnow_calibration) -> None:
    frame = cdnow_calibration.iloc[:300]
    dert = fitted.discounted_expected_transactions(frame, 0.0027)
    assert dert.name == "discounted_expected_transactions"
    assert dert.index.equals(frame.index)
    # more discounting, less value; always below the undiscounted purchases ahead
    assert (fitted.discounted_expected_transactions(frame, 0.01) < dert).all()
    band = fitted.discounted_expected_transactions(frame, 0.0027, interval=0.9, n_draws=200)
    assert list(band.columns) == ["estimate", "lower", "upper"]
    assert (band["lower"] <= band["estimate"]).all() and (band["estimate"] <= band["upper"]).all()
    again = fitted.discounted_expected_transactions(frame, 0.0027, interval=0.9, n_draws=200)
    pd.testing.assert_frame_equal(band, again)
    for bad in (0.0, -0.1):
        with pytest.raises(InvalidDataError, match="discount_rate"):
            fitted.discounted_expected_transactions(frame, bad)


def test_intervals_contain_the_estimate(fitted, cdnow_calibration) -> None:
    frame = cdnow_calibration.iloc[::20]
    for band in (
        fitted.expected_purchases(frame, 39.0, interval=0.9, n_draws=200),
        fitted.probability_alive(frame, interval=0.9, n_draws=200),
        fitted.probability_purchases(frame, 39.0, 1, interval=0.9, n_draws=200),
    ):
        assert (band["lower"] <= band["estimate"] + 1e-15).all()
        assert (band["estimate"] <= band["upper"] + 1e-15).all()
        assert (band["upper"] > band["lower"]).all()


# --------------------------------------------------------------------- fitting


def test_compressed_fit_equals_expanded_fit(cdnow_calibration, fitted) -> None:
    compressed = ParetoNBD().fit(clvmodels.compress(cdnow_calibration))
    np.testing.assert_allclose(compressed.params_, fitted.params_, rtol=1e-6)
    assert compressed.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-10)
    assert compressed.n_customers_ == fitted.n_customers_ == 2357


def test_parameter_recovery() -> None:
    truth = {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}
    customers = simulate_pnbd(100_000, **truth, T=39.0, random_state=7)
    # Whole days (in weeks) keep the number of distinct patterns small. Over seeds 0-11
    # the z-scores of the estimates have mean ~0 and sd ~1 (calibrated intervals).
    customers["recency"] = np.round(customers["recency"] * 7) / 7
    summary = ParetoNBD().fit(clvmodels.compress(customers)).summary()
    for parameter, value in truth.items():
        row = summary.loc[parameter]
        assert row["lower"] < value < row["upper"], (parameter, row.to_dict())


def test_initial_values_are_data_driven() -> None:
    frame = pd.DataFrame({"frequency": [0, 2, 4], "recency": [0.0, 5, 9], "T": [10.0, 10, 10]})
    model = ParetoNBD()
    arrays, _ = model._read(frame)
    start = model._initial_values(arrays, np.ones(3))
    np.testing.assert_allclose(start, [1.0, 5.0, 1.0, 5.0])


# ------------------------------------------------------------- boundary parameters
# A fit that runs to the boundary ends at s, beta -> infinity with s / beta fixed
# (exponential dropout at a known rate). P(alive) references: mpmath, 40 digits, of
# 1 / [s J(R, s+1; t_x) (alpha+T)^R (beta+T)^s + R J(R+1, s; T) (alpha+T)^R (beta+T)^s]
# (FH 2005 section 5) with both integrals by mpmath.quad on the integrand written
# relative to T; r = 0.5, alpha = 5.
BOUNDARY_CUSTOMERS = np.array([(0, 0, 30), (3, 20, 30), (10, 29, 30), (1, 2, 40)], float)
BOUNDARY_ALIVE = {
    (1e12, 1e13): [0.028613422382277878, 0.22306145068887112, 0.89035087702966009,
                   0.0033425125329425707],
    (1e15, 1e16): [0.02861342238214614, 0.22306145068816436, 0.89035087702935728,
                   0.0033425125329149332],
    (1e12, 1e11): [1.964924214722224e-131, 1.1617647054180525e-44, 3.4517640275832167e-5,
                   5.8211543199404104e-167],
}  # fmt: skip


@pytest.mark.parametrize("key", sorted(BOUNDARY_ALIVE))
def test_probability_alive_at_boundary_parameters_matches_mpmath(key) -> None:
    """Before, -s log(beta + T) was subtracted from a log-likelihood term of its size:
    a relative error of 1e-3 at s = 1e12 and of 65 % at s = 1e14."""
    s, beta = key
    x, t_x, T = BOUNDARY_CUSTOMERS.T
    ours = pnbd.probability_alive(x, t_x, T, 0.5, 5.0, s, beta)
    np.testing.assert_allclose(ours, BOUNDARY_ALIVE[key], rtol=2e-12)
    # E[X | alive] is closed-form: the expectation inherits P(alive)'s accuracy
    expected = pnbd.expected_purchases(39.0, x, t_x, T, 0.5, 5.0, s, beta)
    rate = s / beta  # the limit of (beta+T) / (s-1) (1 - ((beta+T) / (beta+T+t))^(s-1))
    limit = np.array(BOUNDARY_ALIVE[key]) * (0.5 + x) / (5.0 + T) * -np.expm1(-rate * 39) / rate
    np.testing.assert_allclose(expected, limit, rtol=1e-9)


def test_probability_alive_is_continuous_in_s_up_to_the_boundary() -> None:
    """Relative to the exponential-dropout limit the error is of order 1 / s; it
    shrinks steadily instead of growing back beyond s = 1e9 (rounding)."""
    x, t_x, T = BOUNDARY_CUSTOMERS.T
    limit = np.array(BOUNDARY_ALIVE[(1e15, 1e16)])
    gaps = [
        np.max(np.abs(pnbd.probability_alive(x, t_x, T, 0.5, 5.0, s, 10 * s) / limit - 1))
        for s in (1e3, 1e6, 1e9, 1e12)
    ]
    assert all(later < earlier / 100 for earlier, later in itertools.pairwise(gaps))
