"""Pareto/NBD with time-varying covariates (Bachmann, Meierer & Näf 2021): the
likelihood against an independent quadrature at fixed parameters, its gradient, the
plain model as the special case, the covariate history from a log and a table, recovery
by simulation, predictions and their refusals."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import gammaln

import clvmodels
from clvmodels.data.dynamic import Segments
from clvmodels.exceptions import InvalidDataError
from clvmodels.models import pnbd

PARAMS = {"r": 0.6, "alpha": 3.0, "s": 0.8, "beta": 5.0}


def _segments(seed: int = 0):
    """Six customers, weekly pieces offset by their first purchase, two purchase and
    one dropout covariate per piece."""
    rng = np.random.default_rng(seed)
    T = np.array([10.3, 5.0, 20.0, 7.5, 3.2, 15.0])
    x = np.array([3, 0, 5, 1, 2, 0.0])
    t_x = np.array([8.1, 0, 19.5, 2.0, 3.2, 0.0])
    rows = []
    for i in range(len(T)):
        edges = [0.0, *np.arange(1 - rng.uniform(), T[i] + 3, 1.0), T[i] + 3.0]
        for j in range(len(edges) - 1):
            rows.append((i, edges[j], edges[j + 1], rng.normal(), rng.integers(0, 2),
                         rng.normal()))  # fmt: skip
    table = np.array(rows, dtype=float)
    seg = Segments(table[:, 0].astype(int), table[:, 1], table[:, 2], table[:, 3:5],
                   table[:, 5:6])  # fmt: skip
    return x, t_x, T, rng.normal(size=(len(T), 2)), seg


def _quadrature(i, x, t_x, T, S, seg, r, alpha, s, beta, g_p, g_d):
    """log L of customer i written from the model (no J, no integration by parts):
    prod a(t_j) Gamma(r+x) alpha^r beta^s / Gamma(r) [ (alpha+A(T))^-(r+x) (beta+B(T))^-s
    + s int_{t_x}^T b (alpha+A)^-(r+x) (beta+B)^-(s+1) ], the integral by adaptive
    quadrature on every piece."""
    mine = seg.customer == i
    start, end, z, w = seg.start[mine], seg.end[mine], seg.z[mine], seg.w[mine]
    a, b = np.exp(z @ g_p), np.exp(w @ g_d)

    def A(t):
        return float(np.sum(a * np.clip(np.minimum(t, end) - start, 0, None)))

    def B(t):
        return float(np.sum(b * np.clip(np.minimum(t, end) - start, 0, None)))

    p = r + x[i]
    total = 0.0
    cuts = [t_x[i], *[v for v in start if t_x[i] < v < T[i]], T[i]]
    for lo, hi in itertools.pairwise(cuts):
        k = np.searchsorted(start, (lo + hi) / 2, side="right") - 1
        value, _ = integrate.quad(lambda t, k=k: b[k] * (alpha + A(t)) ** -p
                                  * (beta + B(t)) ** -(s + 1), lo, hi, epsabs=0,
                                  epsrel=1e-13)  # fmt: skip
        total += value
    bracket = (alpha + A(T[i])) ** -p * (beta + B(T[i])) ** -s + s * total
    return (S[i] @ g_p + gammaln(p) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
            + np.log(bracket))  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_likelihood_equals_an_independent_quadrature(seed) -> None:
    x, t_x, T, S, seg = _segments(seed)
    g_p, g_d = np.array([0.3, -0.5]), np.array([0.4])
    ll, _ = pnbd.dynamic_log_likelihood(x, t_x, T, S, seg, **PARAMS, g_p=g_p, g_d=g_d)
    for i in range(len(T)):
        expected = _quadrature(i, x, t_x, T, S, seg, **PARAMS, g_p=g_p, g_d=g_d)
        assert ll[i] == pytest.approx(expected, rel=1e-10, abs=1e-8)


def test_gradient_matches_finite_differences() -> None:
    x, t_x, T, S, seg = _segments(3)
    theta = np.array([*PARAMS.values(), 0.3, -0.5, 0.4])

    def total(v):
        ll, _ = pnbd.dynamic_log_likelihood(x, t_x, T, S, seg, *v[:4], v[4:6], v[6:])
        return ll.sum()

    _, grad = pnbd.dynamic_log_likelihood(x, t_x, T, S, seg, *theta[:4], theta[4:6],
                                          theta[6:], gradient=True)  # fmt: skip
    for j in range(len(theta)):
        step = np.zeros_like(theta)
        step[j] = 1e-6
        numeric = (total(theta + step) - total(theta - step)) / 2e-6
        assert grad[:, j].sum() == pytest.approx(numeric, rel=1e-6, abs=1e-6)


def test_constant_covariates_give_the_plain_model() -> None:
    x, t_x, T, S, seg = _segments(4)
    zero = Segments(seg.customer, seg.start, seg.end, np.zeros_like(seg.z), np.zeros_like(seg.w))
    g_p, g_d = np.array([0.7, 0.2]), np.array([-0.3])
    ll, _ = pnbd.dynamic_log_likelihood(x, t_x, T, S, zero, **PARAMS, g_p=g_p, g_d=g_d)
    plain, _ = pnbd.log_likelihood(x, t_x, T, **PARAMS)
    np.testing.assert_allclose(ll - S @ g_p, plain, rtol=1e-12, atol=1e-12)
    alive = pnbd.dynamic_probability_alive(x, t_x, T, 2.0, zero, **PARAMS, g_p=g_p, g_d=g_d)
    np.testing.assert_allclose(alive, pnbd.probability_alive(x, t_x, T, **PARAMS, t=2.0),
                               rtol=1e-12)  # fmt: skip
    expected = pnbd.dynamic_expected_purchases(x, t_x, T, 2.5, zero, **PARAMS, g_p=g_p,
                                               g_d=g_d)  # fmt: skip
    np.testing.assert_allclose(expected, pnbd.expected_purchases(2.5, x, t_x, T, **PARAMS),
                               rtol=1e-12)  # fmt: skip


def test_expected_purchases_equal_a_quadrature_of_the_future() -> None:
    x, t_x, T, _S, seg = _segments(5)
    g_p, g_d = np.array([0.3, -0.5]), np.array([0.4])
    horizon = 2.0
    values = pnbd.dynamic_expected_purchases(x, t_x, T, horizon, seg, **PARAMS, g_p=g_p,
                                             g_d=g_d)  # fmt: skip
    alive = pnbd.dynamic_probability_alive(x, t_x, T, 0.0, seg, **PARAMS, g_p=g_p, g_d=g_d)
    for i in range(len(T)):
        mine = seg.customer == i
        start, end = seg.start[mine], seg.end[mine]
        a, b = np.exp(seg.z[mine] @ g_p), np.exp(seg.w[mine] @ g_d)

        def B(t, start=start, end=end, b=b):
            return float(np.sum(b * np.clip(np.minimum(t, end) - start, 0, None)))

        def integrand(t, start=start, a=a, B=B, i=i):
            k = np.searchsorted(start, t, side="right") - 1
            return a[k] * ((PARAMS["beta"] + B(T[i])) / (PARAMS["beta"] + B(t))) ** PARAMS["s"]

        cuts = [T[i], *[v for v in start if T[i] < v < T[i] + horizon], T[i] + horizon]
        integral = sum(integrate.quad(integrand, lo, hi, epsrel=1e-12)[0]
                       for lo, hi in itertools.pairwise(cuts))  # fmt: skip
        A_T = float(np.sum(a * np.clip(np.minimum(T[i], end) - start, 0, None)))
        expected = alive[i] * (PARAMS["r"] + x[i]) / (PARAMS["alpha"] + A_T) * integral
        assert values[i] == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------- from a log


def _log_and_table(n: int, seed: int, truth: dict, g_p: float, g_d: float):
    """A transaction log simulated from the model with one weekly covariate common to
    every customer, by inverting A and B (a Poisson process of rate lambda a(t) is one
    of rate lambda in the clock A(t); death at B^-1(E / mu), E ~ Exp(1))."""
    rng = np.random.default_rng(seed)
    weeks = 80
    start = pd.Timestamp("2020-01-06")
    promo = (rng.uniform(size=weeks + 60) < 0.3) * 1.0
    table = pd.DataFrame({"date": start + pd.to_timedelta(7 * np.arange(weeks + 60), "D"),
                          "promo": promo})  # fmt: skip
    a, b = np.exp(g_p * promo), np.exp(g_d * promo)
    A = np.r_[0, np.cumsum(a)]
    B = np.r_[0, np.cumsum(b)]
    first = rng.integers(0, 20 * 7, n)  # days after start, whole days
    lam = rng.gamma(truth["r"], 1 / truth["alpha"], n)
    mu = rng.gamma(truth["s"], 1 / truth["beta"], n)
    rows = []
    end = weeks * 7.0  # days of the calibration period
    for i in range(n):
        t0 = first[i] / 7.0  # weeks since start
        A0, B0 = np.interp(t0, np.arange(len(A)), A), np.interp(t0, np.arange(len(B)), B)
        death = np.interp(B0 + rng.exponential() / mu[i], B, np.arange(len(B)))
        stop = min(death, end / 7.0)
        A1 = np.interp(stop, np.arange(len(A)), A)
        count = rng.poisson(lam[i] * max(A1 - A0, 0.0))
        clocks = np.sort(rng.uniform(A0, A1, count))
        times = np.interp(clocks, A, np.arange(len(A)))
        days = np.floor(np.r_[t0, times] * 7.0).astype(int)
        rows += [(i, start + pd.Timedelta(days=int(d))) for d in days]
    log = pd.DataFrame(rows, columns=["customer_id", "date"])
    return log, table, start + pd.Timedelta(days=int(end) - 1)


@pytest.fixture(scope="module")
def simulated():
    truth = {"r": 0.8, "alpha": 6.0, "s": 0.7, "beta": 8.0}
    log, table, end = _log_and_table(6000, 1, truth, g_p=0.6, g_d=0.5)
    history = clvmodels.covariate_history(log, table, calibration_end=end, time_unit="W",
                                          duplicates="keep")  # fmt: skip
    model = clvmodels.ParetoNBD(purchase_covariates=["promo"],
                                dropout_covariates=["promo"]).fit(history)  # fmt: skip
    return truth, log, table, end, history, model


def test_history_agrees_with_the_summary(simulated) -> None:
    _, log, _, end, history, _ = simulated
    summary = clvmodels.summarize(log, observation_end=end, time_unit="W", duplicates="keep")
    pd.testing.assert_frame_equal(history.frame, summary)
    # the covariate summed at the repeat purchases, by hand for a few customers
    dates = pd.to_datetime(log["date"]).dt.normalize()
    promo = simulated[2].set_index("date")["promo"]
    for customer in history.frame.index[:30]:
        days = np.sort(dates[log["customer_id"] == customer].unique())[1:]
        weeks = pd.DatetimeIndex(days) - pd.to_timedelta(
            (pd.DatetimeIndex(days) - pd.Timestamp("2020-01-06")).days % 7, "D")
        expected = promo.reindex(weeks).sum()
        row = history.frame.index.get_loc(customer)
        assert history.purchase_values[row, 0] == pytest.approx(expected)


def test_recovery_by_simulation(simulated) -> None:
    truth, _, _, _, _, model = simulated
    table = model.summary()
    expected = {**truth, "purchase.promo": 0.6, "dropout.promo": 0.5}
    for name, value in expected.items():
        assert abs(table.loc[name, "estimate"] - value) < 4 * table.loc[name, "std_error"], name


def test_predictions_need_the_future_covariates(simulated) -> None:
    _, _log, _table, _end, history, model = simulated
    values = model.expected_purchases(history, 20)
    assert values.index.equals(history.frame.index) and np.all(values >= 0)
    interval = model.expected_purchases(history, 20, interval=0.9, n_draws=40)
    assert (interval["lower"] <= interval["estimate"]).all()
    alive = model.probability_alive(history)
    assert np.all((alive > 0) & (alive <= 1))
    with pytest.raises(InvalidDataError, match="Extend the covariate table"):
        model.expected_purchases(history, 200)
    with pytest.raises(InvalidDataError, match="time-varying covariates"):
        model.expected_purchases(history.frame, 20)
    with pytest.raises(InvalidDataError, match="time-varying covariates"):
        clvmodels.predictive_clv(model, None, history.frame, horizon=20, discount_rate=0.1,
                                 time_unit="W")  # fmt: skip


def test_save_and_load(simulated, tmp_path) -> None:
    history, model = simulated[4], simulated[5]
    loaded = clvmodels.load(model.save(tmp_path / "m.json"))
    assert loaded.time_varying_
    pd.testing.assert_series_equal(loaded.expected_purchases(history, 10),
                                   model.expected_purchases(history, 10))  # fmt: skip


@pytest.mark.filterwarnings("ignore::clvmodels.exceptions.EndDateWarning")
def test_missing_periods_are_named() -> None:
    log = pd.DataFrame({"customer_id": ["a", "a", "b"],
                        "date": ["2020-01-08", "2020-02-10", "2020-01-20"]})  # fmt: skip
    weeks = pd.date_range("2020-01-06", periods=10, freq="7D")
    full = pd.DataFrame({"customer_id": ["a"] * 10 + ["b"] * 10, "date": list(weeks) * 2,
                         "promo": np.arange(20) % 2 * 1.0})  # fmt: skip
    ok = clvmodels.covariate_history(log, full, calibration_end="2020-03-01")
    assert ok.purchase_values[0, 0] == 1.0  # a's repeat purchase in week 6 (odd)
    late = full[~((full["customer_id"] == "b") & (full["date"] < "2020-01-27"))]
    with pytest.raises(InvalidDataError, match=r"customer 'b' has no covariate values for the "
                                               r"period starting 2020-01-20"):
        clvmodels.covariate_history(log, late, calibration_end="2020-03-01")
    gap = full.drop(index=[3])
    with pytest.raises(InvalidDataError, match=r"customer 'a' .* 2020-01-27"):
        clvmodels.covariate_history(log, gap, calibration_end="2020-03-01")
    history = clvmodels.covariate_history(log, full, calibration_end="2020-03-01")
    with pytest.raises(InvalidDataError, match="'a' has no covariate values for the period "
                                               "starting 2020-03-16"):
        history.segments(["promo"], ["promo"], history.T + 5.0, "a 5-week prediction")
    text = full.assign(promo="x")
    with pytest.raises(InvalidDataError, match="time-varying covariates are numbers"):
        clvmodels.covariate_history(log, text, calibration_end="2020-03-01")
    twice = pd.concat([full, full.iloc[:1]])
    with pytest.raises(InvalidDataError, match="repeat a period"):
        clvmodels.covariate_history(log, twice, calibration_end="2020-03-01")


def test_only_pareto_nbd_takes_a_history(simulated) -> None:
    history = simulated[4]
    with pytest.raises(InvalidDataError, match="does not take time-varying"):
        clvmodels.BGNBD(purchase_covariates=["promo"]).fit(history)
    with pytest.raises(InvalidDataError, match="name the time-varying covariates"):
        clvmodels.ParetoNBD().fit(history)
    with pytest.raises(InvalidDataError, match="not columns of the covariate table"):
        clvmodels.ParetoNBD(purchase_covariates=["price"]).fit(history)


@pytest.mark.parametrize("seed", range(4))
def test_quadrature_pieces_agree_with_the_exact_tails(seed, monkeypatch) -> None:
    # many weekly pieces, frequencies to 300, alpha and beta from 0.05 to 500: the
    # Gauss-Legendre route (where it applies) against the tails of every piece
    rng = np.random.default_rng(seed)
    n = 300
    T = rng.uniform(2, 60, n)
    x = np.floor(rng.exponential(1.0, n) ** 3 * 10).clip(0, 300)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, n), 0.0)
    rows = []
    for i in range(n):
        edges = [0.0, *np.arange(1 - rng.uniform(), T[i], 1.0), T[i] + 1.0]
        rows += [(i, lo, hi, rng.normal(), rng.normal())
                 for lo, hi in itertools.pairwise(edges)]  # fmt: skip
    table = np.array(rows)
    seg = Segments(table[:, 0].astype(int), table[:, 1], table[:, 2], table[:, 3:4],
                   table[:, 4:5])  # fmt: skip
    S = rng.normal(size=(n, 1))
    r, alpha, s, beta = np.exp(rng.uniform(np.log([0.1, 0.05, 0.1, 0.05]),
                                           np.log([5.0, 500.0, 5.0, 500.0])))  # fmt: skip
    arguments = (x, t_x, T, S, seg, r, alpha, s, beta, [0.4], [-0.3])
    quick, quick_grad = pnbd.dynamic_log_likelihood(*arguments, gradient=True)
    monkeypatch.setattr(pnbd, "_GL_REACH", -1.0)  # every piece by its tails
    exact, exact_grad = pnbd.dynamic_log_likelihood(*arguments, gradient=True)
    np.testing.assert_allclose(quick, exact, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(quick_grad, exact_grad, rtol=1e-9, atol=1e-9)
