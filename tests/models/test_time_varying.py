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
from clvmodels.simulate import simulate_transactions

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


@pytest.mark.parametrize("delta, params", [
    (0.0, PARAMS), (0.05, PARAMS), (1.5, PARAMS),
    (0.02, {"r": 0.6, "alpha": 3.0, "s": 4.0, "beta": 0.05})])  # fmt: skip
def test_expected_purchases_equal_a_quadrature_of_the_future(delta, params) -> None:
    # undiscounted (closed form per piece) and discounted (Gauss-Legendre per piece,
    # with a rate and a dropout prior that make the integrand steep)
    x, t_x, T, _S, seg = _segments(5)
    g_p, g_d = np.array([0.3, -0.5]), np.array([0.4])
    horizon = 2.0
    if delta == 0:
        values = pnbd.dynamic_expected_purchases(x, t_x, T, horizon, seg, **params,
                                                 g_p=g_p, g_d=g_d)  # fmt: skip
    else:
        values = pnbd.dynamic_discounted_purchases(x, t_x, T, horizon, delta, seg, **params,
                                                   g_p=g_p, g_d=g_d)  # fmt: skip
    alive = pnbd.dynamic_probability_alive(x, t_x, T, 0.0, seg, **params, g_p=g_p, g_d=g_d)
    for i in range(len(T)):
        mine = seg.customer == i
        start, end = seg.start[mine], seg.end[mine]
        a, b = np.exp(seg.z[mine] @ g_p), np.exp(seg.w[mine] @ g_d)

        def B(t, start=start, end=end, b=b):
            return float(np.sum(b * np.clip(np.minimum(t, end) - start, 0, None)))

        def integrand(t, start=start, a=a, B=B, i=i):
            k = np.searchsorted(start, t, side="right") - 1
            survival = ((params["beta"] + B(T[i])) / (params["beta"] + B(t))) ** params["s"]
            return a[k] * survival * np.exp(-delta * (t - T[i]))

        cuts = [T[i], *[v for v in start if T[i] < v < T[i] + horizon], T[i] + horizon]
        integral = sum(integrate.quad(integrand, lo, hi, epsrel=1e-12)[0]
                       for lo, hi in itertools.pairwise(cuts))  # fmt: skip
        A_T = float(np.sum(a * np.clip(np.minimum(T[i], end) - start, 0, None)))
        expected = alive[i] * (params["r"] + x[i]) / (params["alpha"] + A_T) * integral
        assert values[i] == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------- from a log


TRUTH = {"r": 0.8, "alpha": 6.0, "s": 0.7, "beta": 8.0}
EFFECTS = {"purchase.promo": 0.6, "dropout.promo": 0.5}
START = pd.Timestamp("2020-01-06")
# observation ends at noon: with hourly windows T ends exactly where the simulation does
END = "2021-07-19 12:00"


def _log_and_table(n: int, seed: int):
    """A log from the model with one weekly covariate common to every customer
    (clvmodels.simulate, exact in continuous time), and the calendar."""
    rng = np.random.default_rng(seed)
    weeks = 140
    promo = (rng.uniform(size=weeks) < 0.3) * 1.0
    table = pd.DataFrame({"date": START + pd.to_timedelta(7 * np.arange(weeks), "D"),
                          "promo": promo})  # fmt: skip
    log = simulate_transactions(
        "pnbd", n, params=TRUTH, start=START, acquisition_end=START + pd.Timedelta(weeks=20),
        observation_end=END, time_unit="W", covariates=table,
        purchase_coefficients={"promo": EFFECTS["purchase.promo"]},
        dropout_coefficients={"promo": EFFECTS["dropout.promo"]}, random_state=seed,
    )  # fmt: skip
    return log, table


def _fit(n: int, seed: int):
    log, table = _log_and_table(n, seed)
    # hourly windows: daily ones merge same-day purchases and move each to its day's
    # start, which the model does not know about (biased at 100k customers)
    history = clvmodels.covariate_history(log, table, calibration_end=END, time_unit="W",
                                          granularity="h")  # fmt: skip
    model = clvmodels.ParetoNBD(purchase_covariates=["promo"],
                                dropout_covariates=["promo"]).fit(history)  # fmt: skip
    return log, table, history, model


@pytest.fixture(scope="module")
def simulated():
    log, table, history, model = _fit(6000, 1)
    return TRUTH, log, table, END, history, model


def test_history_agrees_with_the_summary(simulated) -> None:
    _, log, table, end, history, _ = simulated
    summary = clvmodels.summarize(log, observation_end=end, time_unit="W", granularity="h")
    pd.testing.assert_frame_equal(history.frame, summary)
    # the covariate summed at the repeat purchases, by hand for a few customers
    hours = pd.to_datetime(log["date"]).dt.floor("h")
    promo = table.set_index("date")["promo"]
    for customer in history.frame.index[:30]:
        times = pd.DatetimeIndex(np.sort(hours[log["customer_id"] == customer].unique())[1:])
        weeks = START + pd.to_timedelta((times - START).days // 7 * 7, "D")
        expected = promo.reindex(weeks).sum()
        row = history.frame.index.get_loc(customer)
        assert history.purchase_values[row, 0] == pytest.approx(expected)


def _assert_recovered(model) -> None:
    table = model.summary()
    for name, value in {**TRUTH, **EFFECTS}.items():
        assert abs(table.loc[name, "estimate"] - value) < 4 * table.loc[name, "std_error"], name


def test_recovery_by_simulation(simulated) -> None:
    _assert_recovered(simulated[5])


@pytest.mark.slow
def test_recovery_at_scale() -> None:
    # 100k customers: standard errors of a few per cent, small enough to show a bias of
    # the likelihood or of the simulator (a day-floored simulator was 2-8 SE off here)
    _assert_recovered(_fit(100_000, 2)[3])


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


# ------------------------------------------------------------- CLV on a history


def test_clv_undiscounted_is_the_expected_purchases(simulated) -> None:
    history, model = simulated[4], simulated[5]
    clv = clvmodels.predictive_clv(model, None, history, horizon=20.0, discount_rate=0.0)
    expected = model.expected_purchases(history, 20.0)
    np.testing.assert_allclose(clv.to_numpy(), expected.to_numpy(), rtol=1e-10, atol=1e-14)
    assert clv.index.equals(history.frame.index)


def test_clv_with_constant_covariates_is_the_plain_models(simulated) -> None:
    # oracle: zero coefficients make the time-varying model the plain Pareto/NBD, whose
    # CLV integrates E[X(t)] by Gauss-Legendre in time (clvmodels.clv)
    import copy

    history, model = simulated[4], simulated[5]
    plain = clvmodels.ParetoNBD().fit(history.frame)
    zero = copy.deepcopy(model)
    zero.params_ = pd.Series({**plain.params_, "purchase.promo": 0.0, "dropout.promo": 0.0},
                             name="estimate")  # fmt: skip
    options = {"horizon": "26W", "discount_rate": 0.15}
    ours = clvmodels.predictive_clv(zero, None, history, **options)
    theirs = clvmodels.predictive_clv(plain, None, history.frame, **options)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-9)
    # and the covariates matter at the fitted coefficients
    fitted = clvmodels.predictive_clv(model, None, history, **options)
    assert np.max(np.abs(fitted.to_numpy() / theirs.to_numpy() - 1)) > 0.05


def test_clv_with_spend_and_interval() -> None:
    calendar = pd.DataFrame({"date": pd.date_range("2021-01-04", periods=110, freq="7D"),
                             "promo": np.arange(110) % 3 == 0})  # fmt: skip
    log = simulate_transactions(
        "pnbd", 1500, params=TRUTH, start="2021-01-04", acquisition_end="2021-03-01",
        observation_end="2021-12-31", time_unit="W", covariates=calendar,
        purchase_coefficients={"promo": 0.5}, spend={"p": 6.0, "q": 4.0, "gamma": 15.0},
        random_state=4,
    )  # fmt: skip
    history = clvmodels.covariate_history(log, calendar, calibration_end="2021-12-31",
                                          time_unit="W", amount="amount")  # fmt: skip
    model = clvmodels.ParetoNBD(purchase_covariates=["promo"]).fit(history)
    spend = clvmodels.GammaGamma().fit(history.frame)
    clv = clvmodels.predictive_clv(model, spend, history, horizon="12M", discount_rate=0.1,
                                   margin=0.3, interval=0.9, n_draws=30)  # fmt: skip
    assert list(clv.columns) == ["estimate", "lower", "upper"]
    assert (clv["lower"] <= clv["estimate"]).all() and (clv["estimate"] <= clv["upper"]).all()
    counted = clvmodels.predictive_clv(model, None, history, horizon="12M", discount_rate=0.1)
    per_purchase = spend.expected_spend(history.frame)
    np.testing.assert_allclose(clv["estimate"], 0.3 * counted * per_purchase, rtol=1e-12)
    with pytest.raises(InvalidDataError, match="Extend the covariate table"):
        clvmodels.predictive_clv(model, spend, history, horizon="2Y", discount_rate=0.1)
    with pytest.raises(InvalidDataError, match="needs a ParetoNBD fitted on one"):
        clvmodels.predictive_clv(clvmodels.BGNBD().fit(history.frame), spend, history,
                                 horizon="12M", discount_rate=0.1)  # fmt: skip


@pytest.mark.parametrize("s, delta", [(4.0, 0.3), (0.2, 2.0), (3.0, 1e-4)])
def test_discounted_purchases_on_steep_pieces(s, delta) -> None:
    # observed for 0.05 units with beta = 0.001: the first future pieces multiply
    # beta + B by hundreds, where one Gauss-Legendre rule per piece would not do
    starts = np.array([0.0, 0.5, 1.5, 2.5, 3.5, 4.5])
    promo = np.array([[0.0], [1.0], [0.0], [1.0], [0.0], [1.0]])
    seg = Segments(np.zeros(6, dtype=int), starts, starts + np.r_[0.5, np.ones(5)], promo,
                   1.0 - promo)  # fmt: skip
    r, alpha, beta, T = 0.6, 3.0, 0.001, 0.05
    g_p, g_d = np.array([0.5]), np.array([0.8])
    zero = np.zeros(1)
    value = pnbd.dynamic_discounted_purchases(zero, zero, np.array([T]), 5.0, delta, seg, r,
                                              alpha, s, beta, g_p, g_d)[0]  # fmt: skip
    alive = pnbd.dynamic_probability_alive(zero, zero, np.array([T]), 0.0, seg, r, alpha, s,
                                           beta, g_p, g_d)[0]  # fmt: skip
    a, b = np.exp(seg.z @ g_p), np.exp(seg.w @ g_d)

    def clock(rate, t):
        return float(np.sum(rate * np.clip(np.minimum(t, seg.end) - seg.start, 0, None)))

    def integrand(t):
        k = np.searchsorted(starts, t, side="right") - 1
        survival = ((beta + clock(b, T)) / (beta + clock(b, t))) ** s
        return a[k] * survival * np.exp(-delta * (t - T))

    cuts = [T, *starts[1:], T + 5.0]
    integral = sum(integrate.quad(integrand, lo, hi, epsrel=1e-13, epsabs=0, limit=200)[0]
                   for lo, hi in itertools.pairwise(cuts))  # fmt: skip
    assert value == pytest.approx(alive * r / (alpha + clock(a, T)) * integral, rel=1e-10)


def test_no_purchase_probability(simulated) -> None:
    # oracle 1: zero coefficients give the plain Pareto/NBD's P(X(T, T + t) = 0)
    x, t_x, T, _S, seg = _segments(7)
    expected = pnbd.probability_purchases(2.0, 0.0, x, t_x, T, **PARAMS)
    ours = pnbd.dynamic_probability_no_purchase(x, t_x, T, 2.0, seg, **PARAMS,
                                                g_p=np.zeros(2), g_d=np.zeros(1))  # fmt: skip
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
    # oracle 2: the model's integral by adaptive quadrature, with covariates
    g_p, g_d = np.array([0.3, -0.5]), np.array([0.4])
    ours = pnbd.dynamic_probability_no_purchase(x, t_x, T, 2.0, seg, **PARAMS, g_p=g_p, g_d=g_d)
    alive = pnbd.dynamic_probability_alive(x, t_x, T, 0.0, seg, **PARAMS, g_p=g_p, g_d=g_d)
    r, alpha, s, beta = PARAMS.values()
    for i in range(len(T)):
        mine = seg.customer == i
        start, end = seg.start[mine], seg.end[mine]
        a, b = np.exp(seg.z[mine] @ g_p), np.exp(seg.w[mine] @ g_d)

        def clock(rate, t, start=start, end=end):
            return float(np.sum(rate * np.clip(np.minimum(t, end) - start, 0, None)))

        A_T, B_T = clock(a, T[i]), clock(b, T[i])

        def g(t, a=a, A_T=A_T, i=i):
            return ((alpha + A_T) / (alpha + clock(a, t))) ** (r + x[i])

        def density(t, start=start, b=b, B_T=B_T):
            k = np.searchsorted(start, t, side="right") - 1
            return s * b[k] * (beta + B_T) ** s * (beta + clock(b, t)) ** (-s - 1)

        cuts = [T[i], *[v for v in start if T[i] < v < T[i] + 2.0], T[i] + 2.0]
        ended = sum(integrate.quad(lambda t: density(t) * g(t), lo, hi, epsrel=1e-12)[0]
                    for lo, hi in itertools.pairwise(cuts))  # fmt: skip
        survive = ((beta + B_T) / (beta + clock(b, T[i] + 2.0))) ** s * g(T[i] + 2.0)
        assert ours[i] == pytest.approx(1 - alive[i] + alive[i] * (survive + ended), rel=1e-10)
    # through the model, and only n = 0
    history, model = simulated[4], simulated[5]
    none = model.probability_purchases(history, 10.0, 0)
    assert ((none > 0) & (none < 1)).all()
    with pytest.raises(InvalidDataError, match="only n=0"):
        model.probability_purchases(history, 10.0, 1)


def test_a_covariate_without_variation_in_calibration_is_flagged() -> None:
    # a December flag on CDNOW: calibration (Jan-Sep 1997) has December only in its
    # first week, where almost nobody buys again, so the purchase coefficient runs
    # toward -infinity; the fit says so by name instead of reporting -10 +- 139
    from clvmodels.exceptions import IdentificationWarning

    weeks = pd.date_range("1996-12-30", "1998-12-28", freq="7D")
    table = pd.DataFrame({"date": weeks, "december": (weeks.month == 12) * 1.0})
    history = clvmodels.covariate_history(clvmodels.datasets.load_cdnow(), table,
                                          calibration_end="1997-09-30", time_unit="W",
                                          duplicates="keep", after_end="drop")  # fmt: skip
    with pytest.warns(IdentificationWarning, match=r"purchase\.december .* -infinity"):
        clvmodels.ParetoNBD(purchase_covariates=["december"]).fit(history)
